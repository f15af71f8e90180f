/** Tests for HMAC signing and verification of peer messages. @module */
import assert from "node:assert/strict";
import { constantTimeEqual } from "../lib/constant_time.ts";
import {
  AUTH_HEADERS,
  ClusterSecretError,
  MessageAuth,
  type SignedParts,
} from "../lib/cluster/transport_auth.ts";

const SECRET = "correct horse battery staple 42";
const T0 = 1_700_000_000_000;
const msg: SignedParts = {
  method: "POST",
  path: "/cluster/v1/vote",
  body: '{"type":"vote","term":3,"from":"a","to":"b"}',
};

let counter = 0;
const nonces = () => `nonce-${String(counter++).padStart(12, "0")}`;

Deno.test("a signed message verifies once, then is a replay", async () => {
  const auth = await MessageAuth.create(SECRET, { nonce: nonces });
  const headers = await auth.sign(msg, T0);
  assert.deepEqual(await auth.verify(msg, headers, T0 + 10), { ok: true });
  const again = await auth.verify(msg, headers, T0 + 20);
  assert.equal(again.ok, false);
  assert.equal(!again.ok && again.reason, "replayed");
  // Headers objects work too, with any case.
  const h2 = await auth.sign(msg, T0);
  assert.deepEqual(await auth.verify(msg, new Headers(h2), T0), { ok: true });
});

Deno.test("refusals: unauthenticated, malformed, stale, forged", async () => {
  const auth = await MessageAuth.create(SECRET, { nonce: nonces });
  const other = await MessageAuth.create("a different secret of enough length", { nonce: nonces });
  type Case = [
    string,
    () => Promise<[SignedParts, Record<string, string | undefined>, number]>,
    string,
  ];
  const good = async (at = T0) => await auth.sign(msg, at);
  const cases: Case[] = [
    ["no headers", () => Promise.resolve([msg, {}, T0]), "unauthenticated"],
    [
      "no signature",
      async () => [msg, { ...(await good()), [AUTH_HEADERS.signature]: undefined }, T0],
      "unauthenticated",
    ],
    [
      "timestamp not a number",
      async () => [msg, { ...(await good()), [AUTH_HEADERS.timestamp]: "soon" }, T0],
      "malformed",
    ],
    [
      "negative timestamp",
      async () => [msg, { ...(await good()), [AUTH_HEADERS.timestamp]: "-5" }, T0],
      "malformed",
    ],
    [
      "short nonce",
      async () => [msg, { ...(await good()), [AUTH_HEADERS.nonce]: "abc" }, T0],
      "malformed",
    ],
    [
      "signature not hex",
      async () => [msg, { ...(await good()), [AUTH_HEADERS.signature]: "z".repeat(64) }, T0],
      "malformed",
    ],
    ["signature truncated", async () => {
      const h = await good();
      return [msg, { ...h, [AUTH_HEADERS.signature]: h[AUTH_HEADERS.signature].slice(2) }, T0];
    }, "malformed"],
    ["too old", async () => [msg, await good(T0), T0 + 5001], "stale"],
    ["from the future", async () => [msg, await good(T0 + 5001), T0], "stale"],
    ["wrong secret", async () => [msg, await other.sign(msg, T0), T0], "forged"],
    [
      "tampered body",
      async () => [
        { ...msg, body: msg.body.toString().replace('"term":3', '"term":4') },
        await good(),
        T0,
      ],
      "forged",
    ],
    [
      "other path",
      async () => [{ ...msg, path: "/cluster/v1/heartbeat" }, await good(), T0],
      "forged",
    ],
    [
      "request replayed as reply",
      async () => [{ ...msg, method: "REPLY" }, await good(), T0],
      "forged",
    ],
    ["timestamp moved", async () => {
      const h = await good(T0);
      return [msg, { ...h, [AUTH_HEADERS.timestamp]: String(T0 + 1) }, T0];
    }, "forged"],
    ["nonce swapped", async () => {
      const h = await good(T0);
      return [msg, { ...h, [AUTH_HEADERS.nonce]: "x".repeat(20) }, T0];
    }, "forged"],
    ["flipped signature bit", async () => {
      const h = await good(T0);
      const s = h[AUTH_HEADERS.signature];
      const flipped = (parseInt(s[63], 16) ^ 1).toString(16);
      return [msg, { ...h, [AUTH_HEADERS.signature]: s.slice(0, 63) + flipped }, T0];
    }, "forged"],
  ];
  for (const [name, make, reason] of cases) {
    const [parts, headers, now] = await make();
    const result = await auth.verify(parts, headers, now);
    assert.equal(result.ok, false, name);
    assert.equal(!result.ok && result.reason, reason, name);
    assert.ok(!result.ok && !result.message.includes(SECRET), `${name}: message leaks secret`);
  }
  // Within the skew window the same message is fine.
  assert.deepEqual(await auth.verify(msg, await good(T0), T0 + 5000), { ok: true });
});

Deno.test("forged messages are not remembered, so they cannot block the real one", async () => {
  const auth = await MessageAuth.create(SECRET, { nonce: () => "fixed-nonce-0123456789" });
  const headers = await auth.sign(msg, T0);
  const tampered = await auth.verify({ ...msg, body: "{}" }, headers, T0);
  assert.equal(!tampered.ok && tampered.reason, "forged");
  assert.equal(auth.replayCacheEntries, 0);
  assert.deepEqual(await auth.verify(msg, headers, T0), { ok: true });
});

Deno.test("the replay cache is bounded and forgets entries once they are stale anyway", async () => {
  const auth = await MessageAuth.create(SECRET, {
    nonce: nonces,
    replayCacheSize: 3,
    maxSkewMs: 1000,
  });
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await auth.verify(msg, await auth.sign(msg, T0), T0), { ok: true });
  }
  const full = await auth.verify(msg, await auth.sign(msg, T0), T0);
  assert.equal(!full.ok && full.reason, "overloaded");
  // After the window the old signatures expire and room frees up.
  assert.deepEqual(await auth.verify(msg, await auth.sign(msg, T0 + 1500), T0 + 1500), {
    ok: true,
  });
  assert.equal(auth.replayCacheEntries, 1);
});

Deno.test("short secrets are refused without echoing them", async () => {
  for (const secret of ["", "short-secret"]) {
    await assert.rejects(MessageAuth.create(secret), (e: unknown) => {
      assert.ok(e instanceof ClusterSecretError);
      assert.match(e.message, /cluster\.secret/);
      if (secret) assert.ok(!e.message.includes(secret));
      return true;
    });
  }
});

Deno.test("constantTimeEqual", () => {
  const cases: [number[], number[], boolean][] = [
    [[], [], true],
    [[1, 2, 3], [1, 2, 3], true],
    [[1, 2, 3], [1, 2, 4], false],
    [[1, 2, 3], [1, 2], false],
    [[0], [128], false],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(constantTimeEqual(new Uint8Array(a), new Uint8Array(b)), want, `${a} vs ${b}`);
  }
});
