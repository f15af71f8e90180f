/**
 * The rule of issue 21, for every leaf key of Traefik v3.7's reference files
 * (docs/content/reference/{static,dynamic}-configuration/file.toml at
 * traefik/traefik fd5a576d, extracted to tests/data/traefik_reference_keys.json
 * by scripts/traefik_docs_corpus.ts): each key, alone in the smallest config
 * that holds it (tests/fixtures/traefik_reference_walk.ts), is either accepted,
 * refused by a message naming the key, or reported as not enforced.
 *
 * What can be automated is asserted here: a refusal names the key and says
 * why; and the keys accepted are exactly the data file's `accepted` list, so a
 * key that starts being accepted is a conscious change, checked by a person
 * for being really enforced (nothing accepted and ignored). After such a
 * change: `deno run -A scripts/traefik_docs_corpus.ts --record-outcomes`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  keyOutcome,
  keyPattern,
  namesTheKey,
  type ReferenceKey,
  treeOf,
} from "./fixtures/traefik_reference_walk.ts";
import { checkSnippet } from "./fixtures/traefik_snippet_check.ts";

const data: {
  source: { repository: string; commit: string };
  keys: ReferenceKey[];
  accepted: string[];
} = JSON.parse(
  await Deno.readTextFile(new URL("./data/traefik_reference_keys.json", import.meta.url)),
);

const outcomes = new Map(data.keys.map((k) => [k.key, { key: k, ...keyOutcome(k) }]));

Deno.test("the key data is Traefik's reference files, one key per pattern", () => {
  assert.equal(data.source.repository, "https://github.com/traefik/traefik");
  assert.match(data.source.commit, /^[0-9a-f]{40}$/);
  const patterns = data.keys.map((k) => keyPattern(k.key));
  assert.equal(new Set(patterns).size, patterns.length, "a key pattern is listed twice");
  // Both files, every top-level section of the reference (spot checks of the extraction).
  for (
    const key of [
      "entryPoints.EntryPoint0.address",
      "tracing.otlp.http.endpoint",
      "http.middlewares.Middleware06.compress.encodings",
      "tls.options.Options0.minVersion",
      "tcp.serversTransports.TCPServersTransport0.tls.serverName",
    ]
  ) assert.ok(outcomes.has(key), `${key} is missing from the data`);
  assert.ok(data.keys.length > 600, `only ${data.keys.length} keys`);
});

Deno.test("the walk can tell the outcomes apart", () => {
  // A key Portico refuses, one it accepts, and a value it reports as not enforced.
  const refused = checkSnippet(treeOf("api.basePath", "/traefik"));
  assert.equal(refused.issues.length, 1);
  assert.ok(namesTheKey(refused.issues[0], "api.basePath"));
  assert.deepEqual(checkSnippet(treeOf("log.level", "DEBUG")).issues, []);
  const weak = keyOutcome({
    key: "tls.options.o.minVersion",
    file: "dynamic",
    line: 1,
    value: "VersionTLS13",
  });
  assert.equal(weak.outcome, "not-enforced");
  // A message about another key does not count as naming this one.
  assert.equal(
    namesTheKey(
      { source: "", path: "http.middlewares.m", message: "option status: is required" },
      "http.middlewares.m.errors.query",
    ),
    false,
  );
});

Deno.test("every refused reference key is refused by a message that names it and says why", () => {
  const unnamed: string[] = [];
  for (const [key, o] of outcomes) {
    if (o.outcome !== "refused") continue;
    const result = checkSnippet(treeOf(key, o.key.probe ?? o.key.value));
    if (!result.issues.some((i) => namesTheKey(i, key) && i.message.trim() !== "")) {
      unnamed.push(`${key}: ${o.messages!.join(" | ")}`);
    }
  }
  assert.deepEqual(unnamed, [], "refusals that do not name the key:\n" + unnamed.join("\n"));
});

Deno.test("the keys check accepts are exactly the reviewed `accepted` list", () => {
  const now = [...outcomes.values()].filter((o) => o.outcome === "accepted").map((o) => o.key.key);
  const added = now.filter((k) => !data.accepted.includes(k));
  const gone = data.accepted.filter((k) => !now.includes(k));
  const counts = Object.entries(Object.groupBy([...outcomes.values()], (o) => o.outcome))
    .map(([outcome, list]) => `${outcome} ${list!.length}`).join(", ");
  console.log(`${outcomes.size} reference keys: ${counts}`);
  assert.deepEqual(
    added,
    [],
    "accepted now but not listed; check each really works, then add it (--record-outcomes):\n" +
      added.join("\n"),
  );
  assert.deepEqual(
    gone,
    [],
    "listed as accepted but no longer accepted; remove:\n" + gone.join("\n"),
  );
});
