/**
 * The bounded buffer between the request path and the exporter: requests
 * add finished traces, a timer drains them in batches, one export at a
 * time. When the buffer is full (the receiver is slow or down) new traces
 * are dropped and counted; nothing on the request path ever waits.
 *
 * @module
 */

/** Counters an operator can read (Prometheus, tests). */
export interface ExportCounters {
  /** Spans handed to the exporter and acknowledged by the receiver. */
  exported: number;
  /** Spans dropped: buffer full, or an export that failed. */
  dropped: number;
  /** Exports that failed. */
  failedExports: number;
}

/**
 * @example
 * ```ts
 * const q = new SpanQueue<string>(2048, 512);
 * q.add("trace", 4);
 * const batch = q.take(); // up to 512 items, or undefined when an export is running
 * ```
 */
export class SpanQueue<T> {
  #items: T[] = [];
  #spans = 0;
  #weights: number[] = [];
  #inFlight = false;
  readonly counters: ExportCounters = { exported: 0, dropped: 0, failedExports: 0 };

  constructor(
    /** Spans kept at most while waiting for the exporter. */
    readonly maxSpans: number,
    /** Spans per export at most. */
    readonly batchSpans: number,
  ) {}

  /** Queues an item worth `spans` spans, or drops and counts it when full. */
  add(item: T, spans: number): void {
    if (this.#spans + spans > this.maxSpans) {
      this.counters.dropped += spans;
      return;
    }
    this.#items.push(item);
    this.#weights.push(spans);
    this.#spans += spans;
  }

  /** Spans waiting. */
  get pending(): number {
    return this.#spans;
  }

  /** Whether a batch is worth sending before the timer fires. */
  get full(): boolean {
    return this.#spans >= this.batchSpans;
  }

  /**
   * The next batch, marking an export in flight; undefined when one is
   * already in flight or nothing waits. Call {@linkcode settle} after.
   */
  take(): { items: T[]; spans: number } | undefined {
    if (this.#inFlight || this.#items.length === 0) return undefined;
    let spans = 0;
    let n = 0;
    while (n < this.#items.length && (n === 0 || spans + this.#weights[n] <= this.batchSpans)) {
      spans += this.#weights[n];
      n++;
    }
    const items = this.#items.splice(0, n);
    this.#weights.splice(0, n);
    this.#spans -= spans;
    this.#inFlight = true;
    return { items, spans };
  }

  /** Records how the export of `spans` spans ended. */
  settle(spans: number, ok: boolean): void {
    this.#inFlight = false;
    if (ok) this.counters.exported += spans;
    else {
      this.counters.dropped += spans;
      this.counters.failedExports++;
    }
  }
}
