/**
 * A small LRU of recently verified credentials for `basicAuth`.
 *
 * bcrypt costs tens of milliseconds of CPU per check by design; a proxy on
 * two cores that ran it for every request of a logged-in client would be
 * easy to saturate. Traefik does not cache; Portico remembers successful
 * checks for a short time, keyed by a SHA-256 of (user, password, stored
 * hash) so neither the password nor a cheap-to-reverse form of it is kept,
 * and a changed hash in the config never matches an old entry. Failures are
 * never cached. Time is passed in so the cache is deterministic to test.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Bounded, time-limited set of credential digests. */
export class VerifyCache {
  private readonly entries = new Map<string, number>();

  constructor(readonly maxEntries = 1024, readonly ttlMs = 60_000) {}

  /** The cache key for a user, the password they sent and the stored hash. */
  static key(user: string, password: string, hash: string): string {
    return createHash("sha256").update(user).update("\0").update(password).update("\0").update(hash)
      .digest("base64");
  }

  /** True when `key` was verified less than ttlMs before `now`. */
  has(key: string, now: number): boolean {
    const expires = this.entries.get(key);
    if (expires === undefined) return false;
    this.entries.delete(key);
    if (expires <= now) return false;
    this.entries.set(key, expires); // move to the young end
    return true;
  }

  /** Remembers a successful verification at `now`, evicting the oldest entry if full. */
  add(key: string, now: number): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(key, now + this.ttlMs);
  }

  get size(): number {
    return this.entries.size;
  }
}
