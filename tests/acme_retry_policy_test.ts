/**
 * The pure cores of issue 16, deterministic (time passed in): the retry
 * policy, the readiness wait, and the decoders of what the CA and peers send.
 */
import assert from "node:assert/strict";
import {
  afterFailure,
  backoffMs,
  classifyProblem,
  decodeRetryState,
  encodeRetryState,
  type Failure,
  MAX_FAILED_AUTHZ_PER_HOUR,
  mayAttempt,
  parseRetryAfter,
  REJECTED_RECHECK_MS,
  type RetryState,
} from "../lib/acme/retry_policy.ts";
import { awaitMembers, type GateClock } from "../lib/acme/readiness.ts";
import {
  AcmeResponseError,
  decodeAuthorization,
  decodeOrder,
  decodeProblem,
} from "../lib/acme/acme_wire.ts";
import {
  CheckDecodeError,
  decodeCheckReply,
  decodeCheckRequest,
} from "../lib/acme/challenge_check.ts";
import { decodeJournalEntry } from "../lib/acme/journal.ts";

const S = 1000;
const H = 3600_000;
const unreachable = (n = 1): Failure => ({
  kind: "unreachable",
  message: "connection refused",
  failedAuthorizations: n,
});

Deno.test("retry policy: unreachable challenge backs off 5, 10, 20, 40 s … capped at 1 h", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map(backoffMs), [5 * S, 10 * S, 20 * S, 40 * S, 80 * S]);
  assert.equal(backoffMs(12), H);
  assert.equal(backoffMs(400), H);
  let state: RetryState | undefined;
  let now = 0;
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    state = afterFailure(state, { ...unreachable(0), kind: "network" }, now);
    delays.push(state.nextAttempt - now);
    now = state.nextAttempt;
  }
  assert.deepEqual(delays, [5 * S, 10 * S, 20 * S, 40 * S]);
  assert.equal(mayAttempt(state, now - 1), false);
  assert.equal(mayAttempt(state, now), true);
  assert.equal(mayAttempt(undefined, 0), true);
});

Deno.test("retry policy: never more than 5 failed authorizations per domain in any hour", () => {
  // Simulate a challenge that never becomes reachable, retried as soon as allowed, for 5 hours.
  let state: RetryState | undefined;
  let now = 0;
  const failedAt: number[] = [];
  while (now < 5 * H) {
    state = afterFailure(state, unreachable(1), now);
    failedAt.push(now);
    now = state.nextAttempt;
  }
  for (const t of failedAt) {
    const inHour = failedAt.filter((x) => x >= t && x < t + H).length;
    assert.ok(inHour <= MAX_FAILED_AUTHZ_PER_HOUR, `${inHour} failures in the hour from ${t}`);
  }
  // The first five come quickly (5+10+20+40 s apart), the sixth waits for the first to leave the window.
  assert.deepEqual(failedAt.slice(0, 5), [0, 5 * S, 15 * S, 35 * S, 75 * S]);
  assert.equal(failedAt[5], H);
  // An order with 3 names that all fail counts 3.
  const multi = afterFailure(afterFailure(undefined, unreachable(3), 0), unreachable(3), 5 * S);
  assert.equal(multi.failedAuthzAt.length, 6);
  assert.ok(multi.nextAttempt >= H, "6 failed in the window: wait until the oldest leaves it");
});

Deno.test("retry policy: Retry-After (seconds and HTTP-date) is a floor", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  const seconds = parseRetryAfter("120", now)!;
  const date = parseRetryAfter("Thu, 01 Jan 2026 00:10:00 GMT", now)!;
  assert.equal(seconds, 120 * S);
  assert.equal(date, 600 * S);
  assert.equal(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now), 0, "a past date: no wait");
  assert.equal(parseRetryAfter("later", now), undefined);
  const t = now.getTime();
  const s1 = afterFailure(undefined, {
    kind: "rateLimited",
    message: "too many",
    failedAuthorizations: 0,
    retryAfterMs: date,
  }, t);
  assert.equal(s1.nextAttempt - t, 600 * S);
  // A short Retry-After does not shorten the backoff.
  const s2 = afterFailure(s1, { ...unreachable(0), retryAfterMs: 1 }, s1.nextAttempt);
  assert.equal(s2.nextAttempt - s1.nextAttempt, 10 * S);
});

Deno.test("retry policy: CA rejections are not retried in a loop", () => {
  const problem = { type: "urn:ietf:params:acme:error:rejectedIdentifier", detail: "blocked" };
  const s = afterFailure(undefined, {
    kind: classifyProblem(problem.type, 400),
    message: "blocked",
    failedAuthorizations: 0,
    problem,
  }, 0);
  assert.equal(s.kind, "rejected");
  assert.equal(s.nextAttempt, REJECTED_RECHECK_MS);
  assert.deepEqual(s.problem, problem);
});

Deno.test("classifyProblem: by ACME problem type and HTTP status", () => {
  const table: [string | undefined, number | undefined, string][] = [
    ["urn:ietf:params:acme:error:connection", 400, "unreachable"],
    ["dns", undefined, "unreachable"],
    ["urn:ietf:params:acme:error:incorrectResponse", 403, "unreachable"],
    ["urn:ietf:params:acme:error:rateLimited", 429, "rateLimited"],
    [undefined, 429, "rateLimited"],
    ["urn:ietf:params:acme:error:serverInternal", 500, "network"],
    [undefined, 503, "network"],
    [undefined, undefined, "network"],
    ["urn:ietf:params:acme:error:rejectedIdentifier", 400, "rejected"],
    ["urn:ietf:params:acme:error:caa", 403, "rejected"],
    ["urn:ietf:params:acme:error:unauthorized", 403, "rejected"],
    ["urn:ietf:params:acme:error:somethingNew", 400, "rejected"],
    [undefined, 403, "rejected"],
  ];
  for (const [type, status, kind] of table) {
    assert.equal(classifyProblem(type, status), kind, `${type} ${status}`);
  }
});

Deno.test("retry state round-trips through its KV encoding; bad values name the field", () => {
  const s = afterFailure(undefined, unreachable(2), 1000);
  assert.deepEqual(decodeRetryState("k", encodeRetryState(s)), s);
  assert.throws(() => decodeRetryState("KV key x", "{"), /KV key x: not valid JSON/);
  assert.throws(
    () => decodeRetryState("KV key x", JSON.stringify({ ...s, failedAuthzAt: "no" })),
    /KV key x: field "failedAuthzAt"/,
  );
  assert.throws(
    () => decodeRetryState("KV key x", JSON.stringify({ ...s, kind: "maybe" })),
    /field "kind"/,
  );
});

/** A clock that only moves when the code sleeps. */
function fakeClock(): GateClock & { slept: number[] } {
  let t = 1_000_000;
  const slept: number[] = [];
  return {
    slept,
    now: () => t,
    sleep: (ms) => {
      slept.push(ms);
      t += ms;
      return Promise.resolve();
    },
  };
}

Deno.test("readiness wait: ends as soon as every member confirmed, with per-member times", async () => {
  const clock = fakeClock();
  const start = clock.now();
  const report = await awaitMembers([
    { name: "n1", check: () => Promise.resolve({ ok: true, nodeId: "n1" }) },
    {
      name: "127.0.0.1:7002",
      check: () =>
        Promise.resolve(
          clock.now() - start >= 300
            ? { ok: true, nodeId: "n3" }
            : { ok: false, reason: "connection refused" },
        ),
    },
  ], { timeoutMs: 30_000, intervalMs: 100, clock });
  assert.equal(report.timedOut, false);
  assert.equal(report.waitedMs, 300);
  assert.deepEqual(report.members.map((m) => [m.name, m.nodeId, m.confirmed, m.afterMs]), [
    ["n1", "n1", true, 0],
    ["127.0.0.1:7002", "n3", true, 300],
  ]);
  assert.equal(report.members[1].attempts, 4);
  assert.equal(report.members[0].attempts, 1, "a confirmed member is not asked again");
});

Deno.test("readiness wait: bounded; an absent member is reported with its last error", async () => {
  const clock = fakeClock();
  const report = await awaitMembers([
    { name: "n1", check: () => Promise.resolve({ ok: true }) },
    { name: "127.0.0.1:7003", check: () => Promise.reject(new Error("peer unreachable")) },
  ], { timeoutMs: 1000, intervalMs: 300, clock });
  assert.equal(report.timedOut, true);
  assert.equal(report.waitedMs, 1000);
  assert.deepEqual(clock.slept, [300, 300, 300, 100], "the last sleep stops at the deadline");
  const absent = report.members.find((m) => !m.confirmed)!;
  assert.equal(absent.name, "127.0.0.1:7003");
  assert.equal(absent.lastError, "peer unreachable");
  // A zero timeout asks once.
  const once = await awaitMembers([{
    name: "x",
    check: () => Promise.resolve({ ok: false, reason: "no" }),
  }], { timeoutMs: 0, intervalMs: 100, clock: fakeClock() });
  assert.equal(once.timedOut, true);
  assert.equal(once.members[0].attempts, 1);
});

const ORDER = "https://ca.test/order/1";
const goodOrder = {
  status: "pending",
  identifiers: [{ type: "dns", value: "a.test" }],
  authorizations: ["https://ca.test/authz/1"],
  finalize: "https://ca.test/finalize/1",
};

Deno.test("CA responses: decoded strictly, errors name the object and field", () => {
  assert.deepEqual(decodeOrder(ORDER, goodOrder).identifiers, ["a.test"]);
  assert.throws(
    () => decodeOrder(ORDER, { ...goodOrder, status: "weird" }),
    (e: Error) =>
      e instanceof AcmeResponseError &&
      /order https:\/\/ca.test\/order\/1.*field "status" must be one of pending/.test(e.message),
  );
  assert.throws(() => decodeOrder(ORDER, { ...goodOrder, finalize: "ftp://x" }), /"finalize"/);
  assert.throws(
    () => decodeOrder(ORDER, { ...goodOrder, status: "valid" }),
    /field "certificate"/,
    "a valid order must say where its certificate is",
  );
  assert.throws(() => decodeOrder(ORDER, { ...goodOrder, identifiers: [{}] }), /identifiers\[0\]/);
  assert.throws(() => decodeOrder(ORDER, "<html>"), /field "\(body\)" must be an object/);
  const authz = decodeAuthorization("https://ca.test/authz/1", {
    status: "invalid",
    identifier: { type: "dns", value: "a.test" },
    challenges: [{
      type: "http-01",
      url: "https://ca.test/chal/1",
      status: "invalid",
      token: "tok_en-1",
      error: { type: "urn:ietf:params:acme:error:connection", detail: "refused", status: 400 },
    }],
  });
  assert.equal(authz.challenges[0].error?.type, "urn:ietf:params:acme:error:connection");
  assert.throws(
    () =>
      decodeAuthorization("https://ca.test/authz/1", {
        status: "pending",
        identifier: { value: "a.test" },
        challenges: [{
          type: "http-01",
          url: "https://ca.test/c",
          status: "pending",
          token: "../x",
        }],
      }),
    /challenges\[0\].*field "token" must be base64url/,
  );
  assert.equal(decodeProblem("nope"), undefined);
  assert.deepEqual(
    decodeProblem({
      type: "urn:ietf:params:acme:error:compound",
      detail: "d",
      subproblems: [{ type: "caa", identifier: { value: "a.test" } }],
    })?.subproblems,
    [{ type: "caa", identifier: "a.test" }],
  );
});

Deno.test("peer readiness messages: decoded strictly, errors name the field", () => {
  const sha = "a".repeat(64);
  assert.deepEqual(
    decodeCheckRequest(JSON.stringify({ resolver: "le", tokens: [{ token: "t1", sha256: sha }] })),
    { resolver: "le", tokens: [{ token: "t1", sha256: sha }] },
  );
  const bad: [unknown, RegExp][] = [
    ["not json", /field "\(body\)" is not valid JSON/],
    [{ resolver: "le", tokens: [] }, /field "tokens"/],
    [{ resolver: "a/b", tokens: [{ token: "t", sha256: sha }] }, /field "resolver"/],
    [{ resolver: "le", tokens: [{ token: "../etc", sha256: sha }] }, /field "tokens\[0\].token"/],
    [{ resolver: "le", tokens: [{ token: "t", sha256: "xyz" }] }, /field "tokens\[0\].sha256"/],
  ];
  for (const [body, re] of bad) {
    assert.throws(
      () => decodeCheckRequest(typeof body === "string" ? body : JSON.stringify(body)),
      (e: Error) => e instanceof CheckDecodeError && re.test(e.message),
      String(re),
    );
  }
  assert.deepEqual(decodeCheckReply('{"nodeId":"n3","ok":true}'), { nodeId: "n3", ok: true });
  assert.throws(() => decodeCheckReply('{"nodeId":"n3","ok":"yes"}'), /field "ok"/);
  assert.throws(() => decodeCheckReply('{"ok":true}'), /field "nodeId"/);
});

Deno.test("journal entries: a damaged entry names the key and field", () => {
  const entry = {
    resolver: "le",
    main: "a.test",
    domains: ["a.test"],
    orderUrl: ORDER,
    state: "validating",
    term: 3,
    nodeId: "n1",
    tokens: ["t1"],
    key: "v1:abcd:sealed",
    createdAt: "2026-01-01T00:00:00Z",
  };
  assert.equal(decodeJournalEntry("KV key k", JSON.stringify(entry)).orderUrl, ORDER);
  assert.throws(
    () => decodeJournalEntry("KV key k", JSON.stringify({ ...entry, state: "done" })),
    /KV key k: field "state"/,
  );
  assert.throws(
    () => decodeJournalEntry("KV key k", JSON.stringify({ ...entry, orderUrl: "x" })),
    /field "orderUrl"/,
  );
  assert.throws(() => decodeJournalEntry("KV key k", "[1"), /KV key k: not valid JSON/);
});
