/**
 * W3C Trace Context: the `traceparent` header read and written, and random
 * trace and span ids. Pure apart from the random source.
 *
 * @module
 */

/** What an incoming `traceparent` says. */
export interface RemoteParent {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/**
 * Parses a `traceparent` value; undefined when it is not valid, so the
 * request starts a new trace (the W3C rule for a malformed header).
 *
 * @example
 * ```ts
 * parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
 * // { traceId: "4bf9…4736", spanId: "00f0…02b7", sampled: true }
 * ```
 */
export function parseTraceparent(value: string | null | undefined): RemoteParent | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (text.length < 55) return undefined;
  const version = text.slice(0, 2);
  // Version 00 is exactly 55 characters; a later version may append fields after a dash.
  if (version === "ff" || !HEX.test(version)) return undefined;
  if (version === "00" ? text.length !== 55 : text.length > 55 && text[55] !== "-") {
    return undefined;
  }
  if (text[2] !== "-" || text[35] !== "-" || text[52] !== "-") return undefined;
  const traceId = text.slice(3, 35);
  const spanId = text.slice(36, 52);
  const flags = text.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(spanId) || !HEX.test(flags)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/** The `traceparent` value for a span. */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`;
}

const BYTE_HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * Random ids drawn from one pre-filled buffer, refilled when used up, so
 * an id costs a few string concatenations rather than a crypto call.
 */
export class IdSource {
  readonly #pool = new Uint8Array(4096);
  #at = this.#pool.length;

  #hex(bytes: number): string {
    if (this.#at + bytes > this.#pool.length) {
      crypto.getRandomValues(this.#pool);
      this.#at = 0;
    }
    const pool = this.#pool;
    let out = "";
    let zero = true;
    for (let i = 0; i < bytes; i++) {
      const b = pool[this.#at++];
      if (b !== 0) zero = false;
      out += BYTE_HEX[b];
    }
    return zero ? this.#hex(bytes) : out;
  }

  traceId(): string {
    return this.#hex(16);
  }

  spanId(): string {
    return this.#hex(8);
  }
}

/**
 * The ratio sampler's decision for a new trace, from the trace id as
 * OpenTelemetry's TraceIdRatioBased does (the same id gets the same answer
 * in every process): the low 8 bytes read as an unsigned number.
 */
export function sampledByRatio(traceId: string, rate: number): boolean {
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  // 53 bits are plenty for a ratio and stay exact in a double.
  const low = parseInt(traceId.slice(18, 32), 16); // 56 bits, rounded: fine for comparison
  return low < rate * 2 ** 56;
}
