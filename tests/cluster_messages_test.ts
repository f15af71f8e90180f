/** Tests for peer message decoding. @module */
import assert from "node:assert/strict";
import {
  decodePeerMessage,
  isRequest,
  MessageDecodeError,
  parsePeerMessage,
  REPLY_TYPES,
  REQUEST_PATHS,
  requestTypeForPath,
} from "../lib/cluster/messages.ts";
import type { PeerMessage } from "../lib/cluster/election.ts";

const valid: PeerMessage[] = [
  { type: "preVote", term: 4, from: "a", to: "b" },
  { type: "preVote", term: 4, from: "a", to: "b", transfer: true },
  { type: "preVoteResponse", term: 4, from: "b", to: "a", granted: true },
  { type: "vote", term: 4, from: "a", to: "b" },
  { type: "voteResponse", term: 4, from: "b", to: "a", granted: false },
  { type: "heartbeat", term: 4, from: "a", to: "b", sentAt: 12.5, leaderRecord: '{"nodeId":"a"}' },
  { type: "heartbeat", term: 0, from: "a", to: "b", sentAt: 0, leaderRecord: "" },
  { type: "heartbeatResponse", term: 4, from: "b", to: "a", sentAt: 12.5, success: true },
  { type: "timeoutNow", term: 4, from: "a", to: "b" },
];

Deno.test("valid messages round-trip through JSON", () => {
  for (const m of valid) assert.deepEqual(parsePeerMessage(JSON.stringify(m)), m);
});

Deno.test("unknown fields are dropped", () => {
  assert.deepEqual(
    decodePeerMessage({ type: "vote", term: 1, from: "a", to: "b", extra: { x: 1 } }),
    { type: "vote", term: 1, from: "a", to: "b" },
  );
});

Deno.test("malformed messages name the field", () => {
  const hb = { type: "heartbeat", term: 1, from: "a", to: "b", sentAt: 1, leaderRecord: "" };
  const cases: [string, unknown, string][] = [
    ["array body", [], "(body)"],
    ["null body", null, "(body)"],
    ["unknown type", { ...hb, type: "appendEntries" }, "type"],
    ["missing type", { term: 1 }, "type"],
    ["string term", { ...hb, term: "1" }, "term"],
    ["negative term", { ...hb, term: -1 }, "term"],
    ["fractional term", { ...hb, term: 1.5 }, "term"],
    ["huge term", { ...hb, term: 2 ** 60 }, "term"],
    ["missing from", { ...hb, from: undefined }, "from"],
    ["empty to", { ...hb, to: "" }, "to"],
    ["long from", { ...hb, from: "x".repeat(300) }, "from"],
    ["NaN-ish sentAt", { ...hb, sentAt: "now" }, "sentAt"],
    ["record not string", { ...hb, leaderRecord: { nodeId: "a" } }, "leaderRecord"],
    ["granted missing", { type: "voteResponse", term: 1, from: "a", to: "b" }, "granted"],
    [
      "granted as string",
      { type: "preVoteResponse", term: 1, from: "a", to: "b", granted: "yes" },
      "granted",
    ],
    ["transfer as number", { type: "vote", term: 1, from: "a", to: "b", transfer: 1 }, "transfer"],
    [
      "success missing",
      { type: "heartbeatResponse", term: 1, from: "a", to: "b", sentAt: 1 },
      "success",
    ],
  ];
  for (const [name, value, field] of cases) {
    assert.throws(
      () => decodePeerMessage(value),
      (e: unknown) =>
        e instanceof MessageDecodeError && e.field === field && e.message.includes(field),
      name,
    );
  }
  assert.throws(() => parsePeerMessage("{not json"), /\(body\)/);
});

Deno.test("the expected type is enforced", () => {
  assert.throws(
    () => decodePeerMessage({ type: "vote", term: 1, from: "a", to: "b" }, "heartbeat"),
    (e: unknown) =>
      e instanceof MessageDecodeError && e.field === "type" && /heartbeat/.test(e.message),
  );
});

Deno.test("paths map to request types and replies", () => {
  for (const [type, path] of Object.entries(REQUEST_PATHS)) {
    assert.equal(requestTypeForPath(path), type);
  }
  assert.equal(requestTypeForPath("/cluster/v1/other"), undefined);
  assert.equal(REPLY_TYPES.vote, "voteResponse");
  assert.equal(REPLY_TYPES.timeoutNow, null);
  const requests = valid.filter(isRequest).map((m) => m.type);
  assert.deepEqual([...new Set(requests)], ["preVote", "vote", "heartbeat", "timeoutNow"]);
});
