/**
 * Wire format of peer messages: which HTTP path carries which request, which
 * reply answers it, and strict decoding of JSON bodies. Every field is
 * checked; a bad message is a {@linkcode MessageDecodeError} naming the field
 * and what would be valid. Unknown fields are dropped, so a newer peer may add
 * fields without breaking older ones.
 *
 * @module
 */
import { MESSAGE_TYPES, type PeerMessage } from "./election.ts";

/** Request types and the HTTP path (on the cluster address) that carries each. */
export const REQUEST_PATHS = {
  preVote: "/cluster/v1/prevote",
  vote: "/cluster/v1/vote",
  heartbeat: "/cluster/v1/heartbeat",
  timeoutNow: "/cluster/v1/timeout-now",
} as const;

/** A message type sent as an HTTP request. */
export type RequestType = keyof typeof REQUEST_PATHS;

/** The reply type expected in the HTTP response body for each request type (null: no reply). */
export const REPLY_TYPES = {
  preVote: "preVoteResponse",
  vote: "voteResponse",
  heartbeat: "heartbeatResponse",
  timeoutNow: null,
} as const satisfies Record<RequestType, PeerMessage["type"] | null>;

/** Maps a path back to its request type, or undefined for an unknown path. */
export function requestTypeForPath(path: string): RequestType | undefined {
  for (const [type, p] of Object.entries(REQUEST_PATHS)) if (p === path) return type as RequestType;
  return undefined;
}

/** Whether a message goes out as a request (rather than inside an HTTP reply). */
export function isRequest(
  message: PeerMessage,
): message is Extract<PeerMessage, { type: RequestType }> {
  return message.type in REQUEST_PATHS;
}

/** A peer message failed validation. */
export class MessageDecodeError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`cluster message: field "${field}" ${detail}`);
    this.name = "MessageDecodeError";
  }
}

const MAX_ID = 256;
const MAX_RECORD = 4096;

type Obj = Record<string, unknown>;

function str(o: Obj, field: string, max: number, allowEmpty = false): string {
  const v = o[field];
  if (typeof v !== "string") {
    throw new MessageDecodeError(field, `must be a string, got ${kind(v)}`);
  }
  if (!allowEmpty && v === "") throw new MessageDecodeError(field, "must not be empty");
  if (v.length > max) throw new MessageDecodeError(field, `must be at most ${max} characters`);
  return v;
}

function bool(o: Obj, field: string): boolean {
  const v = o[field];
  if (typeof v !== "boolean") {
    throw new MessageDecodeError(field, `must be true or false, got ${kind(v)}`);
  }
  return v;
}

function optionalBool(o: Obj, field: string): boolean | undefined {
  return o[field] === undefined ? undefined : bool(o, field);
}

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `"${v.length > 40 ? v.slice(0, 40) + "…" : v}"`;
  if (typeof v === "object") return "an object";
  return String(v);
}

/**
 * Validates a parsed JSON value as a peer message.
 *
 * @param expectedType when given, the message must be of this type (e.g. the
 *   type implied by the request path, or the reply type a request expects)
 * @example
 * ```ts
 * const message = decodePeerMessage(JSON.parse(body), requestTypeForPath(url.pathname));
 * ```
 */
export function decodePeerMessage(value: unknown, expectedType?: PeerMessage["type"]): PeerMessage {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new MessageDecodeError("(body)", `must be a JSON object, got ${kind(value)}`);
  }
  const o = value as Obj;
  const type = o.type;
  if (typeof type !== "string" || !(MESSAGE_TYPES as readonly string[]).includes(type)) {
    throw new MessageDecodeError(
      "type",
      `must be one of ${MESSAGE_TYPES.join(", ")}, got ${kind(type)}`,
    );
  }
  if (expectedType !== undefined && type !== expectedType) {
    throw new MessageDecodeError("type", `must be ${expectedType} here, got ${type}`);
  }
  const term = o.term;
  if (typeof term !== "number" || !Number.isSafeInteger(term) || term < 0) {
    throw new MessageDecodeError("term", `must be an integer >= 0, got ${kind(term)}`);
  }
  const from = str(o, "from", MAX_ID);
  const to = str(o, "to", MAX_ID);
  const base = { term, from, to };
  switch (type as PeerMessage["type"]) {
    case "preVote":
    case "vote": {
      const transfer = optionalBool(o, "transfer");
      const m = { type: type as "preVote" | "vote", ...base };
      return transfer === undefined ? m : { ...m, transfer };
    }
    case "preVoteResponse":
    case "voteResponse":
      return {
        type: type as "preVoteResponse" | "voteResponse",
        ...base,
        granted: bool(o, "granted"),
      };
    case "heartbeat":
      return {
        type: "heartbeat",
        ...base,
        sentAt: sentAt(o),
        leaderRecord: str(o, "leaderRecord", MAX_RECORD, true),
      };
    case "heartbeatResponse":
      return { type: "heartbeatResponse", ...base, sentAt: sentAt(o), success: bool(o, "success") };
    case "timeoutNow":
      return { type: "timeoutNow", ...base };
  }
}

function sentAt(o: Obj): number {
  const v = o.sentAt;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new MessageDecodeError("sentAt", `must be a finite number of ms, got ${kind(v)}`);
  }
  return v;
}

/** Parses and validates a JSON body; a parse failure names the body. */
export function parsePeerMessage(text: string, expectedType?: PeerMessage["type"]): PeerMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new MessageDecodeError("(body)", `is not valid JSON: ${(e as Error).message}`);
  }
  return decodePeerMessage(value, expectedType);
}
