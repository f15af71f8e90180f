/**
 * Gives memory back to the OS once the process goes quiet.
 *
 * Neither V8 nor glibc does it by itself here. V8 shrinks its heap only in a
 * full GC, and its memory reducer, which should run one when allocation
 * stops, judges the allocation rate from the last GCs: none happen once the
 * load is gone, so it keeps seeing the load and waits again
 * (`--trace-memory-reducer` prints "high alloc" every 8 s, for ever). glibc
 * keeps freed buffers in its arenas. A full GC followed by `malloc_trim(0)`
 * gives most of it back (the README's memory figures), and startup leaves
 * garbage too (module loading, config parsing, router build).
 *
 * So: one release right after start, then every `intervalMs` a look at the
 * process's CPU time and RSS. After an interval in which the process used
 * less than `quietCpuShare` of a core, and if RSS has grown `slackBytes`
 * since the last release, it releases again: one full GC, then
 * `malloc_trim(0)`. A busy process is never interrupted; a quiet one pays a
 * pause of tens of milliseconds at most once per `minGapMs`.
 *
 * The GC comes from V8's `gc()` (enabled at run time through `node:v8`, so
 * no command-line flag is needed in any run mode), `malloc_trim` from glibc
 * through FFI; either is skipped where unavailable (another libc, no FFI
 * permission).
 *
 * @module
 */

import process from "node:process";

/** One reading of the process. */
export interface MemorySample {
  /** Monotonic time, ms. */
  atMs: number;
  /** User + system CPU time, µs. */
  cpuMicros: number;
  rssBytes: number;
}

/** When a release is worth its pause. */
export interface ReleasePolicy {
  /** Below this share of one core over an interval, the process counts as quiet. */
  quietCpuShare: number;
  /** RSS growth since the last release that makes another worth it. */
  slackBytes: number;
  /** Least time between two releases. */
  minGapMs: number;
}

export const DEFAULT_POLICY: ReleasePolicy = {
  quietCpuShare: 0.05,
  slackBytes: 16 * 1024 * 1024,
  minGapMs: 10_000,
};

/**
 * Whether to release after the interval from `previous` to `current`,
 * given the last release (its time and the RSS it left). Pure.
 */
export function shouldRelease(
  policy: ReleasePolicy,
  previous: MemorySample,
  current: MemorySample,
  lastRelease: { atMs: number; rssBytes: number },
): boolean {
  const elapsedMs = current.atMs - previous.atMs;
  if (elapsedMs <= 0) return false;
  const cpuShare = (current.cpuMicros - previous.cpuMicros) / 1000 / elapsedMs;
  if (cpuShare >= policy.quietCpuShare) return false;
  if (current.atMs - lastRelease.atMs < policy.minGapMs) return false;
  return current.rssBytes - lastRelease.rssBytes >= policy.slackBytes;
}

/** What one release did. */
export interface ReleaseReport {
  rssBeforeBytes: number;
  rssAfterBytes: number;
  ms: number;
  gc: boolean;
  trim: boolean;
}

let fullGc: Promise<(() => void) | undefined> | undefined;
let mallocTrim: (() => void) | null | undefined;

/** V8's `gc()`, set up on first use; undefined where the runtime refuses. */
function loadGc(): Promise<(() => void) | undefined> {
  fullGc ??= (async () => {
    try {
      const v8 = await import("node:v8");
      const vm = await import("node:vm");
      // Exposes gc() to contexts created from now on; the main one is untouched.
      v8.setFlagsFromString("--expose-gc");
      const gc = vm.runInNewContext("gc");
      return typeof gc === "function" ? () => void gc() : undefined;
    } catch {
      return undefined;
    }
  })();
  return fullGc;
}

/**
 * glibc's `malloc_trim(0)`, opened on first use: FFI itself costs about
 * 3 MB of RSS, so the release after start, which has little native memory
 * to give back, goes without it. Null where unavailable.
 */
function loadTrim(): (() => void) | null {
  if (mallocTrim !== undefined) return mallocTrim;
  mallocTrim = null;
  if (Deno.build.os === "linux") {
    try {
      const libc = Deno.dlopen("libc.so.6", {
        malloc_trim: { parameters: ["usize"], result: "i32" },
      });
      mallocTrim = () => void libc.symbols.malloc_trim(0n);
    } catch {
      // Not glibc, or no FFI permission.
    }
  }
  return mallocTrim;
}

function sample(): MemorySample {
  const cpu = process.cpuUsage();
  return {
    atMs: performance.now(),
    cpuMicros: cpu.user + cpu.system,
    rssBytes: Deno.memoryUsage().rss,
  };
}

/** One full GC now, then `malloc_trim(0)` unless `trim` is false. */
export async function releaseMemory(options: { trim?: boolean } = {}): Promise<ReleaseReport> {
  const gc = await loadGc();
  const trim = options.trim === false ? null : loadTrim();
  const rssBeforeBytes = Deno.memoryUsage().rss;
  const t0 = performance.now();
  gc?.();
  trim?.();
  return {
    rssBeforeBytes,
    rssAfterBytes: Deno.memoryUsage().rss,
    ms: performance.now() - t0,
    gc: gc !== undefined,
    trim: trim !== null,
  };
}

/** Options for {@linkcode startMemoryRelease}. */
export interface MemoryReleaseOptions extends Partial<ReleasePolicy> {
  /** How often to look at CPU time and RSS; default 2 s. */
  intervalMs?: number;
  /** Told after each release (for a debug log). */
  onRelease?: (report: ReleaseReport) => void;
}

/**
 * Releases once now, then whenever the process goes quiet with grown RSS.
 * The timer does not keep the process alive.
 *
 * @example
 * ```ts
 * const server = await startServer(config);
 * const memory = startMemoryRelease();
 * await server.finished;
 * memory.stop();
 * ```
 */
export function startMemoryRelease(options: MemoryReleaseOptions = {}): { stop(): void } {
  const policy: ReleasePolicy = {
    quietCpuShare: options.quietCpuShare ?? DEFAULT_POLICY.quietCpuShare,
    slackBytes: options.slackBytes ?? DEFAULT_POLICY.slackBytes,
    minGapMs: options.minGapMs ?? DEFAULT_POLICY.minGapMs,
  };
  let stopped = false;
  let releasing = false;
  let last = { atMs: -Infinity, rssBytes: 0 };
  const release = async (trim: boolean) => {
    releasing = true;
    try {
      const report = await releaseMemory({ trim });
      last = { atMs: performance.now(), rssBytes: report.rssAfterBytes };
      if (!stopped) options.onRelease?.(report);
    } catch {
      // A failed release (or report) must never take the server down.
    } finally {
      releasing = false;
    }
  };
  void release(false);
  let previous = sample();
  const timer = setInterval(() => {
    const current = sample();
    if (!releasing && shouldRelease(policy, previous, current, last)) void release(true);
    previous = current;
  }, options.intervalMs ?? 2000);
  Deno.unrefTimer(timer);
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
