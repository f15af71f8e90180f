/**
 * The one place where provider output is deduplicated and throttled, as
 * Traefik's aggregator and configuration watcher do it: per provider, a
 * snapshot equal to the last one passed on is dropped, the first change is
 * passed on at once, and later ones at most once per
 * `providers.providersThrottleDuration`, the latest winning. Errors pass at
 * once (the last good snapshot stays in force downstream) and cancel a held
 * snapshot, which is older than the error.
 *
 * Time is injected so the behaviour is unit-testable.
 *
 * @module
 */

import type { DynamicConfig } from "../config/types.ts";
import type { ProviderListener } from "./types.ts";

/** Timers and the clock, injectable for tests. */
export interface ThrottleClock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

const realClock: ThrottleClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as number),
};

interface ProviderState {
  /** Canonical text of the last snapshot passed on; undefined after an error. */
  forwarded?: string;
  /** Before this time, a new snapshot is held. */
  nextAllowed: number;
  held?: { config: DynamicConfig; text: string };
  timer?: unknown;
}

export class ProviderThrottle implements ProviderListener {
  readonly #providers = new Map<string, ProviderState>();

  constructor(
    private readonly windowMs: number,
    private readonly downstream: ProviderListener,
    private readonly clock: ThrottleClock = realClock,
  ) {}

  onConfig(provider: string, config: DynamicConfig): void {
    const state = this.#state(provider);
    const text = JSON.stringify(config);
    if (state.held) {
      if (text === state.forwarded) this.#cancelHeld(state);
      else state.held = { config, text };
      return;
    }
    if (text === state.forwarded) return;
    const now = this.clock.now();
    if (now >= state.nextAllowed) {
      this.#forward(provider, state, config, text, now);
      return;
    }
    state.held = { config, text };
    state.timer = this.clock.setTimer(() => this.#release(provider), state.nextAllowed - now);
  }

  onError(provider: string, error: Error): void {
    const state = this.#state(provider);
    this.#cancelHeld(state);
    state.forwarded = undefined;
    this.downstream.onError(provider, error);
  }

  /** Passes on every held snapshot now (start-up, tests). */
  flush(): void {
    for (const provider of this.#providers.keys()) this.#release(provider);
  }

  stop(): void {
    for (const state of this.#providers.values()) this.#cancelHeld(state);
  }

  #state(provider: string): ProviderState {
    let state = this.#providers.get(provider);
    if (!state) this.#providers.set(provider, state = { nextAllowed: -Infinity });
    return state;
  }

  #release(provider: string): void {
    const state = this.#providers.get(provider)!;
    const held = state.held;
    this.#cancelHeld(state);
    if (held) this.#forward(provider, state, held.config, held.text, this.clock.now());
  }

  #forward(
    provider: string,
    state: ProviderState,
    config: DynamicConfig,
    text: string,
    now: number,
  ): void {
    state.forwarded = text;
    state.nextAllowed = now + this.windowMs;
    this.downstream.onConfig(provider, config);
  }

  #cancelHeld(state: ProviderState): void {
    if (state.timer !== undefined) this.clock.clearTimer(state.timer);
    state.timer = undefined;
    state.held = undefined;
  }
}
