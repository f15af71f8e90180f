/**
 * Shares one in-flight password check between concurrent requests that
 * carry the same credentials, as Traefik's basicAuth does with Go's
 * singleflight: two browser tabs logging in at once cost one bcrypt, not
 * two. Entries live only while their check runs.
 *
 * @module
 */

/**
 * At most one running computation per key.
 *
 * @example
 * ```ts
 * const flight = new Singleflight<boolean>();
 * const ok = await flight.run("key", () => check(password));
 * ```
 */
export class Singleflight<T> {
  private readonly running = new Map<string, Promise<T>>();

  /** The result of `work` for `key`, joining a run already under way. */
  run(key: string, work: () => Promise<T>): Promise<T> {
    const current = this.running.get(key);
    if (current) return current;
    const started = work().finally(() => this.running.delete(key));
    this.running.set(key, started);
    return started;
  }

  /** Keys being computed now. */
  get size(): number {
    return this.running.size;
  }
}
