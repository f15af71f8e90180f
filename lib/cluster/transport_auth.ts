/**
 * Authentication of peer messages: every request and reply carries a
 * timestamp, a random nonce and an HMAC-SHA256 over
 * `v1\n<METHOD>\n<path>\n<timestamp>\n<nonce>\n<body>`, keyed by the cluster
 * secret (WebCrypto). Verification refuses messages that are unauthenticated,
 * malformed, stale (clock skew beyond `maxSkewMs`, 5 s by default), forged or
 * replayed. Replays are caught by a bounded cache of the signatures seen
 * within the skew window: anything older is already refused as stale.
 *
 * Time is passed in (`now`, epoch ms), so everything here is deterministic
 * apart from nonce generation, which callers can override.
 *
 * Errors and refusal messages never contain the secret.
 *
 * @module
 */

import { constantTimeEqual } from "../constant_time.ts";

/** Header names used on the wire. */
export const AUTH_HEADERS = {
  timestamp: "x-portico-timestamp",
  nonce: "x-portico-nonce",
  signature: "x-portico-signature",
} as const;

/** Why a message was refused; also the label of the rejected-messages metric. */
export type RefusalReason =
  | "unauthenticated"
  | "malformed"
  | "stale"
  | "forged"
  | "replayed"
  | "overloaded";

/** Outcome of {@linkcode MessageAuth.verify}. */
export type VerifyResult =
  | { ok: true }
  | { ok: false; reason: RefusalReason; message: string };

/** What is signed. Replies use method `"REPLY"` so a reply can never pass as a request. */
export interface SignedParts {
  method: string;
  path: string;
  body: string | Uint8Array;
}

/** Options for {@linkcode MessageAuth.create}. */
export interface MessageAuthOptions {
  /** Largest accepted difference between the sender's timestamp and `now`. Default 5000. */
  maxSkewMs?: number;
  /** Most signatures remembered for replay detection. Default 100 000. */
  replayCacheSize?: number;
  /** Nonce source; default 16 random bytes, base64url. */
  nonce?: () => string;
}

/** The cluster secret is unusable. The message names the setting, never the value. */
export class ClusterSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClusterSecretError";
  }
}

/** Minimum secret length in bytes (UTF-8). */
export const MIN_SECRET_BYTES = 16;

const encoder = new TextEncoder();
const NONCE_RE = /^[A-Za-z0-9_-]{16,128}$/;
const SIGNATURE_RE = /^[0-9a-f]{64}$/;
const TIMESTAMP_RE = /^[0-9]{1,16}$/;

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function fromHex(text: string): Uint8Array {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function randomNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function header(headers: Headers | Record<string, string | undefined>, name: string) {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/**
 * Signs and verifies peer messages with one cluster secret.
 *
 * @example
 * ```ts
 * const auth = await MessageAuth.create(secret);
 * const body = JSON.stringify(message);
 * const headers = await auth.sign({ method: "POST", path: "/cluster/v1/vote", body }, Date.now());
 * // receiving side:
 * const result = await auth.verify({ method: "POST", path: "/cluster/v1/vote", body }, request.headers, Date.now());
 * if (!result.ok) return new Response(result.message, { status: 401 });
 * ```
 */
export class MessageAuth {
  readonly #key: CryptoKey;
  readonly #maxSkew: number;
  readonly #cacheSize: number;
  readonly #nonce: () => string;
  /** signature → time after which it is stale anyway */
  readonly #seen = new Map<string, number>();

  private constructor(key: CryptoKey, options: MessageAuthOptions) {
    this.#key = key;
    this.#maxSkew = options.maxSkewMs ?? 5000;
    this.#cacheSize = options.replayCacheSize ?? 100_000;
    this.#nonce = options.nonce ?? randomNonce;
  }

  /**
   * Imports the secret as a non-extractable HMAC key.
   * @throws {ClusterSecretError} when the secret is shorter than {@linkcode MIN_SECRET_BYTES}
   */
  static async create(secret: string, options: MessageAuthOptions = {}): Promise<MessageAuth> {
    const bytes = encoder.encode(typeof secret === "string" ? secret : "");
    if (bytes.length < MIN_SECRET_BYTES) {
      throw new ClusterSecretError(
        `cluster.secret (or PORTICO_CLUSTER_SECRET / secretFile) must be at least ${MIN_SECRET_BYTES} bytes, got ${bytes.length}`,
      );
    }
    const key = await crypto.subtle.importKey(
      "raw",
      bytes,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    return new MessageAuth(key, options);
  }

  /** Number of signatures currently remembered (for tests and metrics). */
  get replayCacheEntries(): number {
    return this.#seen.size;
  }

  async #mac(parts: SignedParts, timestamp: string, nonce: string): Promise<Uint8Array> {
    const head = encoder.encode(
      `v1\n${parts.method.toUpperCase()}\n${parts.path}\n${timestamp}\n${nonce}\n`,
    );
    const body = typeof parts.body === "string" ? encoder.encode(parts.body) : parts.body;
    const data = new Uint8Array(head.length + body.length);
    data.set(head);
    data.set(body, head.length);
    return new Uint8Array(await crypto.subtle.sign("HMAC", this.#key, data));
  }

  /** Returns the headers to send with `parts` at time `now` (epoch ms). */
  async sign(parts: SignedParts, now: number): Promise<Record<string, string>> {
    const timestamp = String(Math.floor(now));
    const nonce = this.#nonce();
    const mac = await this.#mac(parts, timestamp, nonce);
    return {
      [AUTH_HEADERS.timestamp]: timestamp,
      [AUTH_HEADERS.nonce]: nonce,
      [AUTH_HEADERS.signature]: hex(mac),
    };
  }

  /**
   * Checks a received message. On success the signature is remembered, so
   * the same message is refused as `replayed` if it comes again.
   */
  async verify(
    parts: SignedParts,
    headers: Headers | Record<string, string | undefined>,
    now: number,
  ): Promise<VerifyResult> {
    const timestamp = header(headers, AUTH_HEADERS.timestamp);
    const nonce = header(headers, AUTH_HEADERS.nonce);
    const signature = header(headers, AUTH_HEADERS.signature);
    if (timestamp === undefined || nonce === undefined || signature === undefined) {
      const missing = [
        timestamp === undefined ? AUTH_HEADERS.timestamp : "",
        nonce === undefined ? AUTH_HEADERS.nonce : "",
        signature === undefined ? AUTH_HEADERS.signature : "",
      ].filter(Boolean);
      return refuse("unauthenticated", `missing header(s) ${missing.join(", ")}`);
    }
    if (!TIMESTAMP_RE.test(timestamp)) {
      return refuse("malformed", `${AUTH_HEADERS.timestamp} must be integer epoch milliseconds`);
    }
    if (!NONCE_RE.test(nonce)) {
      return refuse("malformed", `${AUTH_HEADERS.nonce} must be 16-128 base64url characters`);
    }
    if (!SIGNATURE_RE.test(signature)) {
      return refuse("malformed", `${AUTH_HEADERS.signature} must be 64 lowercase hex characters`);
    }
    const sentAt = Number(timestamp);
    const skew = now - sentAt;
    if (Math.abs(skew) > this.#maxSkew) {
      return refuse(
        "stale",
        `timestamp is ${Math.round(skew)}ms ${
          skew > 0 ? "old" : "in the future"
        }; at most ${this.#maxSkew}ms accepted`,
      );
    }
    const expected = await this.#mac(parts, timestamp, nonce);
    if (!constantTimeEqual(expected, fromHex(signature))) {
      return refuse("forged", "signature does not match (wrong secret or altered message)");
    }
    this.#prune(now);
    if (this.#seen.has(signature)) return refuse("replayed", "this message was already received");
    if (this.#seen.size >= this.#cacheSize) {
      // Failing closed: evicting live entries would let their replays through.
      return refuse("overloaded", "too many messages within the replay window");
    }
    this.#seen.set(signature, sentAt + this.#maxSkew);
    return { ok: true };
  }

  #prune(now: number): void {
    // Cheap path: drop expired entries from the front (roughly oldest first);
    // a full sweep only when the cache is full.
    for (const [sig, expires] of this.#seen) {
      if (expires >= now) break;
      this.#seen.delete(sig);
    }
    if (this.#seen.size >= this.#cacheSize) {
      for (const [sig, expires] of this.#seen) if (expires < now) this.#seen.delete(sig);
    }
  }
}

function refuse(reason: RefusalReason, message: string): VerifyResult {
  return { ok: false, reason, message };
}
