/**
 * The Transfer-Encoding mutations of a public request-smuggling scanner
 * (defparam/smuggler's default scan, `tests/data/smuggler_te_mutations.json`),
 * each sent to an entrypoint inside a POST that also has a Content-Length.
 * Each one is either refused with 400 before anything reaches the upstream,
 * or, where the mutation leaves no Transfer-Encoding field at all, forwarded
 * framed by its Content-Length alone. Nothing the upstream receives can be
 * read as chunked.
 */

import assert from "node:assert/strict";
import { rawExchange, startRawBackend } from "./fixtures/raw_backend.ts";
import { startCatchAllProxy } from "./fixtures/proxy.ts";

interface Case {
  name: string;
  gadget: string;
  expect: "400" | "forward";
}

const corpus = JSON.parse(
  await Deno.readTextFile(new URL("./data/smuggler_te_mutations.json", import.meta.url)),
) as { cases: Case[] };

const BODY = "0\r\n\r\nG";

function latin1(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function request(gadget: string): Uint8Array {
  return latin1(
    `POST /?cb=1 HTTP/1.1\r\n${gadget}\r\nHost: smuggle.test\r\n` +
      `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
  );
}

/** "400", "forward", or what was unsafe about the exchange. */
function classify(answer: string, upstream: string): string {
  const status = answer.slice(9, 12);
  if (status === "400") return upstream.length === 0 ? "400" : "400 after bytes reached the upstream";
  const head = upstream.slice(0, upstream.indexOf("\r\n\r\n"));
  const body = upstream.slice(head.length + 4);
  const problems = [
    status !== "200" && `answered ${status}`,
    /^transfer-encoding\s*:/im.test(head) && "a Transfer-Encoding field went upstream",
    !new RegExp(`^content-length: ${BODY.length}$`, "im").test(head) && "no Content-Length upstream",
    body !== BODY && `upstream body ${JSON.stringify(body)}`,
  ].filter(Boolean);
  return problems.length ? problems.join("; ") : "forward";
}

Deno.test("smuggler corpus: every Transfer-Encoding mutation is refused, or forwarded by Content-Length alone", async () => {
  const backend = startRawBackend();
  const proxy = await startCatchAllProxy(`http://127.0.0.1:${backend.port}`);
  const wrong: string[] = [];
  const outcomes: Record<string, string> = {};
  try {
    assert.ok(corpus.cases.length >= 134, "the whole default scan is here");
    for (const tc of corpus.cases) {
      const before = backend.received().join("").length;
      const answer = await rawExchange(proxy.port(), request(tc.gadget));
      await new Promise((r) => setTimeout(r, 5));
      const upstream = backend.received().join("").slice(before);
      const outcome = classify(answer, upstream);
      outcomes[tc.name] = outcome;
      if (outcome !== tc.expect) wrong.push(`${tc.name}: expected ${tc.expect}, got ${outcome}`);
    }
    if (Deno.env.get("SMUGGLER_PRINT")) console.log(JSON.stringify(outcomes));
    assert.deepEqual(wrong, []);
  } finally {
    await proxy.close();
    backend.close();
  }
});
