/**
 * Pure helpers for the benchmark report: the median round, ratios to peers,
 * target checks and the printed tables.
 *
 * @module
 */

import type { WrkResult } from "./wrk.ts";

/** One proxy (or variant) measured in one scenario. */
export interface Measurement {
  /** Row label: `portico`, `nginx`, `portico (10000 routers)`, … */
  label: string;
  proxy: string;
  status: "ok" | "not supported yet" | "not available" | "failed";
  /** Why it was not measured. */
  note?: string;
  /** The round with the median req/s. */
  median?: WrkResult;
  rounds: WrkResult[];
  /** Peak RSS of the proxy's process group during the rounds (VmHWM summed), MB. */
  peakRssMb?: number;
  /**
   * CPU µs per completed request in each round, from the proxy group's own
   * `/proc/PID/stat` counters (utime + stime) read before and after the round.
   */
  cpuUs?: number[];
  /** Median of `cpuUs`. */
  cpuUsPerRequest?: number;
  /** Per round, how the load spread over processes and threads (scenario w only). */
  spread?: WorkerSpread[];
}

/** How one round's load spread over a proxy's workers, seen from /proc. */
export interface WorkerSpread {
  /** Established connections on the listening port per process (pid → count), sampled mid-round. */
  connectionsPerProcess: Record<string, number>;
  /** Share of the group's CPU ticks per thread (`pid/tid comm` → 0–1), threads ≥ 2 % only. */
  threadCpuShare: Record<string, number>;
}

/** The median of some numbers (the lower middle one for an even count). */
export function medianOf(values: readonly number[]): number {
  if (values.length === 0) throw new Error("medianOf: no values");
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/** A figure of a measured row: req/s, p99 ms or CPU µs per request. */
export type Metric = "rps" | "p99" | "cpu";

/** The value of `metric` for `row`, or undefined when it was not measured. */
export function metricOf(row: Measurement | undefined, metric: Metric): number | undefined {
  if (!row?.median) return undefined;
  if (metric === "rps") return row.median.requestsPerSec;
  if (metric === "p99") return row.median.p99Ms;
  return row.cpuUsPerRequest;
}

/** The round whose req/s is the median (the lower middle one for an even count). */
export function medianRound(rounds: readonly WrkResult[]): WrkResult {
  if (rounds.length === 0) throw new Error("medianRound: no rounds");
  const sorted = [...rounds].sort((a, b) => a.requestsPerSec - b.requestsPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/**
 * Portico's req/s (or p99, or CPU per request) divided by each measured
 * peer's, in the same scenario.
 */
export function ratios(
  rows: readonly Measurement[],
  subject = "portico",
  metric: Metric = "rps",
): Record<string, number> {
  const own = rows.find((r) => r.label === subject && r.median);
  const out: Record<string, number> = {};
  const mine = metricOf(own, metric);
  if (mine === undefined) return out;
  for (const row of rows) {
    if (row === own || row.proxy === "portico" || row.proxy === "backend") continue;
    const theirs = metricOf(row, metric);
    if (theirs) out[row.label] = mine / theirs;
  }
  return out;
}

function fmtNumber(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function fmtMs(n: number): string {
  return n < 10 ? n.toFixed(2) : n.toFixed(1);
}

/** A fixed-width text table of one scenario's rows. */
export function formatTable(rows: readonly Measurement[]): string {
  const header = ["proxy", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "peak RSS MB", "notes"];
  const notesAt = header.length - 1;
  const body = rows.map((r) => {
    if (!r.median) {
      return [r.label, "-", "-", "-", "-", "-", `${r.status}${r.note ? `: ${r.note}` : ""}`];
    }
    const notes: string[] = [];
    if (r.median.non2xx) notes.push(`${r.median.non2xx} non-2xx`);
    if (r.median.socketErrors) notes.push(`${r.median.socketErrors} socket errors`);
    const spread = r.rounds.map((x) => fmtNumber(x.requestsPerSec)).join(" / ");
    if (r.rounds.length > 1) notes.push(`rounds ${spread}`);
    return [
      r.label,
      fmtNumber(r.median.requestsPerSec),
      fmtMs(r.median.p50Ms),
      fmtMs(r.median.p99Ms),
      r.cpuUsPerRequest === undefined ? "-" : r.cpuUsPerRequest.toFixed(1),
      r.peakRssMb === undefined ? "-" : r.peakRssMb.toFixed(1),
      notes.join("; "),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === notesAt ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join(
        "  ",
      ).trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/**
 * The TCP scenario's table (issue 19): rows measured with tcp_load, whose
 * rounds carry its output in `tcp` (scripts/bench/tcp_load.ts). `unit` names
 * what req/s counts: "msg" (echo: with MB/s each way) or "conn".
 */
export function formatTcpTable(rows: readonly Measurement[], unit: "msg" | "conn"): string {
  type Tcp = { mbPerSec: number; bytesSent: number; bytesReceived: number; incomplete: number };
  const tcpOf = (x: WrkResult) => (x as WrkResult & { tcp?: Tcp }).tcp;
  const header = [
    "proxy",
    `${unit}/s`,
    ...(unit === "msg" ? ["MB/s"] : []),
    "p50 ms",
    "p99 ms",
    `CPU µs/${unit}`,
    "peak RSS MB",
    "notes",
  ];
  const notesAt = header.length - 1;
  const body = rows.map((r) => {
    if (!r.median) {
      return [
        r.label,
        ...header.slice(1, -1).map(() => "-"),
        `${r.status}${r.note ? `: ${r.note}` : ""}`,
      ];
    }
    const notes: string[] = [];
    if (r.median.socketErrors) notes.push(`${r.median.socketErrors} socket errors`);
    const short = r.rounds.map(tcpOf).filter((t) => t && t.bytesReceived !== t.bytesSent);
    if (short.length) {
      const lost = short.reduce((sum, t) => sum + (t!.bytesSent - t!.bytesReceived), 0);
      notes.push(`${short.length} round(s) short of the echo by ${fmtNumber(lost)} bytes`);
    }
    if (r.rounds.length > 1) {
      notes.push(`rounds ${r.rounds.map((x) => fmtNumber(x.requestsPerSec)).join(" / ")}`);
    }
    const mb = tcpOf(r.median)?.mbPerSec;
    return [
      r.label,
      fmtNumber(r.median.requestsPerSec),
      ...(unit === "msg" ? [mb === undefined ? "-" : mb.toFixed(0)] : []),
      fmtMs(r.median.p50Ms),
      fmtMs(r.median.p99Ms),
      r.cpuUsPerRequest === undefined ? "-" : r.cpuUsPerRequest.toFixed(1),
      r.peakRssMb === undefined ? "-" : r.peakRssMb.toFixed(1),
      notes.join("; "),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === notesAt ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** One issue-9, issue-15 or issue-19 target and whether this run met it. */
export interface TargetCheck {
  target: string;
  value: string;
  met: boolean;
  /** The issue that set the target (the report groups checks by it). */
  issue?: number;
}

/** `value` vs `limit` as a met/not-met line, formatted for the report. */
export function checkAtLeast(
  target: string,
  value: number | undefined,
  limit: number,
  digits = 2,
): TargetCheck | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  return { target, value: value.toFixed(digits), met: value >= limit };
}

export function checkAtMost(
  target: string,
  value: number | undefined,
  limit: number,
  digits = 2,
): TargetCheck | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  return { target, value: value.toFixed(digits), met: value <= limit };
}
