/**
 * Small pieces every KV backend shares: input checks that produce errors
 * naming the backend and the key, a serial event delivery queue for watches,
 * and a capped exponential backoff.
 *
 * @module
 */

import { KVError } from "./types.ts";
import type { KVCondition, KVOperation, KVWatchEvent } from "./types.ts";

/** Throws a {@link KVError} unless `key` is a non-empty string. */
export function checkKey(backend: string, key: unknown, what = "key"): asserts key is string {
  if (typeof key !== "string" || key.length === 0) {
    throw new KVError(
      `${backend}: ${what} must be a non-empty string, got ${describe(key)}`,
      typeof key === "string" ? key : undefined,
    );
  }
}

/** Throws a {@link KVError} unless `prefix` is a string (the empty prefix means "everything"). */
export function checkPrefix(backend: string, prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string") {
    throw new KVError(`${backend}: prefix must be a string, got ${describe(prefix)}`);
  }
}

/** Throws a {@link KVError} unless `value` is a string. */
export function checkValue(backend: string, key: string, value: unknown): asserts value is string {
  if (typeof value !== "string") {
    throw new KVError(`${backend}: value must be a string, got ${describe(value)}`, key);
  }
}

/** Throws a {@link KVError} unless `ttlMs` is a positive finite number. */
export function checkTtl(backend: string, ttlMs: unknown): asserts ttlMs is number {
  if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new KVError(
      `${backend}: lease ttlMs must be a positive number of milliseconds, got ${describe(ttlMs)}`,
    );
  }
}

/** Checks every condition and operation of a transaction, naming the offending key. */
export function checkTransaction(
  backend: string,
  conditions: KVCondition[],
  operations: KVOperation[],
): void {
  if (!Array.isArray(conditions) || !Array.isArray(operations)) {
    throw new KVError(`${backend}: transaction needs arrays of conditions and operations`);
  }
  // Inputs come from callers' data, so check the shapes the types promise.
  for (const c of conditions as { key: unknown; kind: unknown; value?: unknown }[]) {
    checkKey(backend, c?.key, "condition key");
    if (c.kind === "equals") checkValue(backend, c.key, c.value);
    else if (c.kind !== "absent") {
      throw new KVError(
        `${backend}: condition kind must be "absent" or "equals", got ${describe(c.kind)}`,
        c.key,
      );
    }
  }
  for (const op of operations as { key: unknown; kind: unknown; value?: unknown }[]) {
    checkKey(backend, op?.key, "operation key");
    if (op.kind === "put") checkValue(backend, op.key, op.value);
    else if (op.kind !== "delete") {
      throw new KVError(
        `${backend}: operation kind must be "put" or "delete", got ${describe(op.kind)}`,
        op.key,
      );
    }
  }
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null) return "null";
  return typeof v;
}

/**
 * Delivers watch events to one listener in order, one batch at a time, never
 * re-entrantly, and never after `close()`. Batches are delivered on a later
 * microtask so a listener can never run inside the store call that caused it.
 */
export class EventQueue {
  #pending: KVWatchEvent[][] = [];
  #scheduled = false;
  #closed = false;

  constructor(private readonly listener: (events: KVWatchEvent[]) => void) {}

  push(events: KVWatchEvent[]): void {
    if (this.#closed || events.length === 0) return;
    this.#pending.push(events);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#drain());
    }
  }

  #drain(): void {
    this.#scheduled = false;
    while (this.#pending.length > 0 && !this.#closed) {
      const batch = this.#pending.shift()!;
      try {
        this.listener(batch);
      } catch (error) {
        // A throwing listener must not stop later batches or kill the watch loop.
        console.error("kv watch listener threw:", error);
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#pending = [];
  }
}

/** Exponential backoff with jitter, capped; `reset()` after a success. */
export class Backoff {
  #attempt = 0;
  constructor(private readonly baseMs = 100, private readonly maxMs = 5000) {}
  next(): number {
    const ms = Math.min(this.maxMs, this.baseMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return ms / 2 + Math.random() * ms / 2;
  }
  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after `ms`, or early (without rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Turns any thrown value into an Error. */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
