/**
 * Runs `wrk` pinned to the load core and parses its `--latency` report.
 *
 * @module
 */

import { run } from "./procs.ts";

/** One wrk run, in the units the report prints. */
export interface WrkResult {
  requestsPerSec: number;
  /** Median latency, ms. */
  p50Ms: number;
  /** 99th percentile latency, ms. */
  p99Ms: number;
  requests: number;
  /** connect + read + write + timeout socket errors. */
  socketErrors: number;
  /** Responses that were not 2xx or 3xx. */
  non2xx: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a wrk duration such as `812.00us`, `1.61ms` or `2.00s` into ms. */
export function parseWrkDuration(text: string): number {
  const m = text.trim().match(/^([\d.]+)(us|ms|s|m|h)$/);
  if (!m) throw new Error(`wrk: cannot read the duration "${text}"`);
  return Number(m[1]) * UNIT_MS[m[2]];
}

/** Parses wrk's text report (run with `--latency`). Throws when a figure is missing. */
export function parseWrkOutput(output: string): WrkResult {
  const rps = output.match(/^Requests\/sec:\s+([\d.]+)/m);
  const p50 = output.match(/^\s+50%\s+(\S+)/m);
  const p99 = output.match(/^\s+99%\s+(\S+)/m);
  const total = output.match(/^\s+(\d+) requests in /m);
  if (!rps || !p50 || !p99 || !total) {
    throw new Error(`wrk: unexpected output (was --latency given?):\n${output.trim()}`);
  }
  let socketErrors = 0;
  const errors = output.match(
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
  );
  if (errors) socketErrors = errors.slice(1).reduce((sum, n) => sum + Number(n), 0);
  const non2xx = output.match(/Non-2xx or 3xx responses: (\d+)/);
  return {
    requestsPerSec: Number(rps[1]),
    p50Ms: parseWrkDuration(p50[1]),
    p99Ms: parseWrkDuration(p99[1]),
    requests: Number(total[1]),
    socketErrors,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

export interface WrkOptions {
  url: string;
  host: string;
  connections: number;
  durationSec: number;
  /** Core wrk runs on. */
  cpu: number;
  /** Sends `Connection: close` so every request is a new connection. */
  closeEachRequest?: boolean;
}

/** The wrk command line for `options` (printed in the report so a run can be repeated by hand). */
export function wrkCommand(options: WrkOptions): string[] {
  const cmd = [
    "taskset",
    "-c",
    String(options.cpu),
    "wrk",
    "-t1",
    `-c${options.connections}`,
    `-d${options.durationSec}s`,
    "--timeout",
    "5s",
    "--latency",
    "-H",
    `Host: ${options.host}`,
  ];
  if (options.closeEachRequest) cmd.push("-H", "Connection: close");
  cmd.push(options.url);
  return cmd;
}

/** Runs wrk once; the fd limit is raised so 1,000 connections fit. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const cmd = wrkCommand(options);
  const out = await run([
    "bash",
    "-c",
    'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$@"',
    "bash",
    ...cmd,
  ]);
  if (out.code !== 0) {
    throw new Error(`wrk failed (exit ${out.code}): ${out.stderr.trim() || out.stdout.trim()}`);
  }
  return parseWrkOutput(out.stdout);
}
