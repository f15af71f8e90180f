/**
 * The pure core of `inFlightReq`: how many requests each source has open.
 * Entries disappear when their count drops to zero, so memory is bounded by
 * the number of requests in flight.
 *
 * @module
 */

/**
 * Per-source concurrency counter with a fixed limit.
 *
 * @example
 * ```ts
 * const counts = new InFlightCounter(2);
 * const release = counts.acquire("10.0.0.1"); // a function, or undefined when full
 * release?.();
 * ```
 */
export class InFlightCounter {
  private readonly counts = new Map<string, number>();

  constructor(readonly amount: number) {}

  /** A one-shot release function, or undefined when `source` is at its limit. */
  acquire(source: string): (() => void) | undefined {
    const current = this.counts.get(source) ?? 0;
    if (current >= this.amount) return undefined;
    this.counts.set(source, current + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.counts.get(source) ?? 1) - 1;
      if (n <= 0) this.counts.delete(source);
      else this.counts.set(source, n);
    };
  }

  /** Requests open for `source`. */
  count(source: string): number {
    return this.counts.get(source) ?? 0;
  }

  /** Sources with at least one open request. */
  get sources(): number {
    return this.counts.size;
  }
}

/**
 * The same body, calling `onDone` once when it has been read to the end,
 * fails, or is cancelled (the client went away). Pull-based, so
 * backpressure is kept.
 */
export function onBodyDone(
  body: ReadableStream<Uint8Array>,
  onDone: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          onDone();
          controller.close();
        } else {
          controller.enqueue(value);
        }
      } catch (err) {
        onDone();
        controller.error(err);
      }
    },
    cancel(reason) {
      onDone();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
