/**
 * The readiness check one member answers for the manager, over the
 * authenticated peer channel (HMAC-signed requests and replies, see
 * lib/cluster/transport_auth.ts): "does your own HTTP-01 entrypoint answer
 * these tokens?". The member answers with a real HTTP request to its own
 * listener, because that is what the CA will do; a token in the KV or in
 * memory proves nothing about the listener being up.
 *
 * Only SHA-256 digests of the key authorizations travel: the member needs
 * to compare, not to know them.
 *
 * @module
 */

import { HTTP01_PREFIX } from "./challenges.ts";

/** Path of the check on the cluster address. */
export const CHALLENGE_CHECK_PATH = "/cluster/v1/acme/challenge-check";

/** Most tokens in one check (one order's names). */
export const MAX_CHECK_TOKENS = 100;

export interface ChallengeCheckRequest {
  resolver: string;
  tokens: { token: string; sha256: string }[];
}

export interface ChallengeCheckReply {
  nodeId: string;
  ok: boolean;
  detail?: string;
}

/** A peer's check message failed validation; names the field. */
export class CheckDecodeError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`acme challenge check: field "${field}" ${detail}`);
    this.name = "CheckDecodeError";
  }
}

function parse(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CheckDecodeError("(body)", `is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new CheckDecodeError("(body)", "must be a JSON object");
  }
  return v as Record<string, unknown>;
}

const TOKEN_RE = /^[A-Za-z0-9_-]{1,256}$/;
const SHA_RE = /^[0-9a-f]{64}$/;

/** Validates a check request body. */
export function decodeCheckRequest(text: string): ChallengeCheckRequest {
  const o = parse(text);
  if (typeof o.resolver !== "string" || !/^[A-Za-z0-9._-]{1,128}$/.test(o.resolver)) {
    throw new CheckDecodeError("resolver", "must be a resolver name");
  }
  if (!Array.isArray(o.tokens) || o.tokens.length === 0 || o.tokens.length > MAX_CHECK_TOKENS) {
    throw new CheckDecodeError("tokens", `must be an array of 1 to ${MAX_CHECK_TOKENS} entries`);
  }
  const tokens = o.tokens.map((t, i) => {
    const e = (typeof t === "object" && t !== null ? t : {}) as Record<string, unknown>;
    if (typeof e.token !== "string" || !TOKEN_RE.test(e.token)) {
      throw new CheckDecodeError(`tokens[${i}].token`, "must be base64url characters");
    }
    if (typeof e.sha256 !== "string" || !SHA_RE.test(e.sha256)) {
      throw new CheckDecodeError(`tokens[${i}].sha256`, "must be 64 lowercase hex digits");
    }
    return { token: e.token, sha256: e.sha256 };
  });
  return { resolver: o.resolver, tokens };
}

/** Validates a check reply body. */
export function decodeCheckReply(text: string): ChallengeCheckReply {
  const o = parse(text);
  if (typeof o.nodeId !== "string" || o.nodeId === "" || o.nodeId.length > 256) {
    throw new CheckDecodeError("nodeId", "must be a node id");
  }
  if (typeof o.ok !== "boolean") throw new CheckDecodeError("ok", "must be true or false");
  if (o.detail !== undefined && typeof o.detail !== "string") {
    throw new CheckDecodeError("detail", "must be a string");
  }
  return {
    nodeId: o.nodeId,
    ok: o.ok,
    ...(typeof o.detail === "string" ? { detail: o.detail.slice(0, 500) } : {}),
  };
}

/** Lowercase hex SHA-256 of `text`. */
export async function sha256Hex(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * GETs each token from this node's own HTTP-01 listener at `base`
 * (`http://127.0.0.1:PORT`) and compares the body's digest. Returns why
 * not, or undefined when every token is answered correctly.
 */
export async function checkOwnListener(
  base: string,
  tokens: { token: string; sha256: string }[],
  timeoutMs = 1000,
): Promise<string | undefined> {
  for (const t of tokens) {
    const url = `${base}${HTTP01_PREFIX}${t.token}`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      return `GET ${url}: ${(err as Error).message}`;
    }
    const body = await res.text();
    if (res.status !== 200) return `GET ${url}: answered ${res.status}`;
    if (await sha256Hex(body) !== t.sha256) {
      return `GET ${url}: answered a different key authorization`;
    }
  }
  return undefined;
}
