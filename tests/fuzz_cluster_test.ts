/**
 * Fuzzing the cluster wire: the message decoder refuses anything malformed
 * with a `MessageDecodeError`, and a signed message altered in any way
 * (method, path, body, timestamp, nonce, signature) or signed with another
 * secret is never accepted.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { MessageDecodeError, parsePeerMessage } from "../lib/cluster/messages.ts";
import { AUTH_HEADERS, MessageAuth } from "../lib/cluster/transport_auth.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 200);
const SECRET = "fuzz-secret-0123456789abcdef";

Deno.test("fuzz: parsePeerMessage returns a message or a MessageDecodeError naming a field", () => {
  const field = fc.constantFrom(
    "type",
    "term",
    "from",
    "to",
    "candidate",
    "leader",
    "granted",
    "sentAt",
    "lastLeaderRecord",
    "success",
    "x",
  );
  const json = fc.dictionary(
    field,
    fc.oneof(
      fc.string({ maxLength: 10 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom("preVote", "vote", "heartbeat", "voteResponse", "timeoutNow"),
    ),
    { maxKeys: 8 },
  );
  const text = fc.oneof(
    json.map((o) => JSON.stringify(o)),
    fc.string({ maxLength: 40 }),
    fc.jsonValue().map((v) => JSON.stringify(v)),
  );
  fc.assert(
    fc.property(text, (body) => {
      try {
        const m = parsePeerMessage(body);
        assert.equal(typeof m.type, "string");
      } catch (error) {
        assert.ok(error instanceof MessageDecodeError, `${String(error)} for ${body}`);
        assert.ok(error.field.length > 0);
      }
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz: a mutated or foreign-signed message is never accepted", async () => {
  const now = 1_700_000_000_000;
  const auth = await MessageAuth.create(SECRET);
  const other = await MessageAuth.create(SECRET + "x");
  const mutation = fc.constantFrom(
    "method",
    "path",
    "body",
    "timestamp",
    "nonce",
    "signature",
    "secret",
  );
  await fc.assert(
    fc.asyncProperty(
      fc.string({ maxLength: 64 }),
      mutation,
      fc.string({ minLength: 1, maxLength: 4 }),
      fc.nat(63),
      async (body, what, extra, pos) => {
        const parts = { method: "POST", path: "/cluster/v1/vote", body };
        const signer = what === "secret" ? other : auth;
        const headers = await signer.sign(parts, now);
        const sent = { ...parts };
        const h: Record<string, string> = { ...headers };
        if (what === "method") sent.method = "PUT";
        if (what === "path") sent.path = parts.path + extra;
        if (what === "body") sent.body = body + extra;
        if (what === "timestamp") {
          h[AUTH_HEADERS.timestamp] = String(
            Number(h[AUTH_HEADERS.timestamp]) + 1 + (pos % 5),
          );
        }
        if (what === "nonce") {
          h[AUTH_HEADERS.nonce] = h[AUTH_HEADERS.nonce].slice(1) +
            (h[AUTH_HEADERS.nonce][0] === "A" ? "B" : "A");
        }
        if (what === "signature") {
          const sig = h[AUTH_HEADERS.signature];
          const flipped = sig[pos] === "0" ? "1" : "0";
          h[AUTH_HEADERS.signature] = sig.slice(0, pos) + flipped + sig.slice(pos + 1);
        }
        const result = await auth.verify(sent, h, now);
        assert.equal(result.ok, false, `a message with its ${what} changed was accepted`);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz: an unaltered message is accepted once, then refused as a replay", async () => {
  const now = 1_700_000_000_000;
  await fc.assert(
    fc.asyncProperty(fc.string({ maxLength: 64 }), async (body) => {
      const auth = await MessageAuth.create(SECRET);
      const parts = { method: "POST", path: "/cluster/v1/heartbeat", body };
      const headers = await auth.sign(parts, now);
      assert.equal((await auth.verify(parts, headers, now)).ok, true);
      const again = await auth.verify(parts, headers, now);
      assert.equal(again.ok, false);
    }),
    { numRuns: Math.ceil(RUNS / 4) },
  );
});
