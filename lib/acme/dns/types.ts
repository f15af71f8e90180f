/**
 * What every DNS-01 provider implements, and the errors the DNS-01 path
 * raises. A provider only creates and deletes TXT records; finding the
 * record name, journalling, propagation checks and cleanup are the
 * solver's (./solver.ts), so each provider module stays one API's worth.
 *
 * @module
 */

/** One TXT record a DNS-01 challenge needs (RFC 8555 §8.4). */
export interface TxtRecord {
  /** The identifier validated: `example.com` or `*.example.com`. */
  domain: string;
  /** Absolute record name, after CNAME following: `_acme-challenge.example.com.`. */
  fqdn: string;
  /** The TXT value: base64url(SHA-256(key authorization)). */
  value: string;
  /** The challenge token (lego's RAW modes pass it on). */
  token: string;
  /** The key authorization (lego's RAW modes pass it on). Public, not a secret. */
  keyAuthorization: string;
}

/** A DNS API that can publish and remove TXT records. */
export interface DnsProvider {
  /** The provider's name as configured (`rfc2136`, `cloudflare`, …). */
  readonly name: string;
  /** How long the propagation check waits before giving up (lego's `*_PROPAGATION_TIMEOUT`). */
  readonly propagationTimeoutMs: number;
  /** Time between two propagation checks (lego's `*_POLLING_INTERVAL`). */
  readonly pollingIntervalMs: number;
  /**
   * Publishes `record` (idempotent: publishing a value already there is
   * not an error). Returns a handle the provider needs to delete exactly
   * this record (a record id), journalled with it; undefined when none.
   */
  present(record: TxtRecord): Promise<string | undefined>;
  /** Removes this value only (other values under the same name stay). */
  cleanUp(record: TxtRecord, handle?: string): Promise<void>;
}

/**
 * A provider call failed: the message carries the DNS rcode or HTTP status
 * and the provider's own message, never a credential.
 */
export class DnsProviderError extends Error {
  constructor(
    readonly provider: string,
    message: string,
    /** The HTTP status or DNS rcode name, when there is one. */
    readonly status?: number | string,
  ) {
    super(`${provider}: ${message}`);
    this.name = "DnsProviderError";
  }
}

/**
 * The DNS-01 challenge cannot run as configured (unknown provider, missing
 * or invalid variables, unreadable credentials file). Only that resolver's
 * orders fail; retrying soon does not help.
 */
export class DnsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DnsConfigError";
  }
}

/** The TXT record did not become visible in time. */
export class DnsPropagationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DnsPropagationError";
  }
}

/** Replaces every occurrence of each secret in `text` (defence in depth for provider messages). */
export function redact(text: string, secrets: (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join("[redacted]");
  }
  return out;
}
