/**
 * The per-command timeout of one Redis connection, kept cheap. Redis
 * answers the commands of a connection in the order they were sent, so the
 * command that has waited longest is always the oldest one outstanding:
 * one timer, armed for that command's deadline, is enough. A request costs
 * a number pushed and an index moved; no timer, closure or promise of its own.
 *
 * When the oldest command's deadline passes, `onStuck` runs: the owner drops
 * the connection, which fails every command still waiting on it.
 *
 * @example
 * ```ts
 * const watch = new ConnectionWatch(200, () => redial(client));
 * watch.started();               // a command went out
 * promise.then(watch.ended, watch.ended);
 * ```
 *
 * @module
 */

/** Deadlines of the commands outstanding on one connection, oldest first. */
export class ConnectionWatch {
  #starts: number[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly timeoutMs: number,
    private readonly onStuck: () => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Records a command sent now. */
  started(): void {
    this.#starts.push(this.now());
    this.#timer ??= setTimeout(this.#check, this.timeoutMs);
  }

  /** Records that the oldest outstanding command has its answer (or failed). Bound, so it can be passed as is. */
  readonly ended = (): void => {
    if (this.#head >= this.#starts.length) return;
    this.#head++;
    if (this.#head === this.#starts.length) {
      this.#starts = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#starts.length) {
      this.#starts = this.#starts.slice(this.#head);
      this.#head = 0;
    }
  };

  /** Commands sent and not yet ended. */
  get outstanding(): number {
    return this.#starts.length - this.#head;
  }

  /** Forgets every outstanding command and stops the timer. */
  reset(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#starts = [];
    this.#head = 0;
  }

  readonly #check = (): void => {
    this.#timer = undefined;
    if (this.#head >= this.#starts.length) return;
    const oldest = this.#starts[this.#head];
    const now = this.now();
    // Timers may fire a fraction of a millisecond early.
    if (now - oldest >= this.timeoutMs - 0.5) {
      this.reset();
      this.onStuck();
      return;
    }
    this.#timer = setTimeout(this.#check, oldest + this.timeoutMs - now);
  };
}
