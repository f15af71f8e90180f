/**
 * Waiting on a promise for a bounded time. Every helper clears its timer when
 * the promise settles first, so no timer outlives the wait and keeps a
 * process (or a test's op sanitizer) busy.
 *
 * @module
 */

/**
 * Waits until `promise` settles or `ms` passes. Rejections are swallowed:
 * this is for shutdown and hand-over waits, where the outcome is not needed.
 * True when it settled in time.
 */
export async function settleWithin(promise: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  if (promise === undefined) return true;
  return await orAfter(promise.then(() => true, () => true), ms, false);
}

/** The value of `promise`, or `fallback` when `ms` passes first. A rejection still rejects. */
export async function orAfter<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The value of `promise`, or a rejection with `onTimeout()` when `ms` passes
 * first. `ms <= 0` means no deadline. `onTimeout` may also release what the
 * promise holds (close a half-open socket), since the caller stops waiting.
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  if (ms <= 0) return await promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(onTimeout()), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
