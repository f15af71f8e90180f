/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof`): self time and
 * inclusive time per function, and self time per source file, so the
 * costliest parts of the hot path stand out.
 *
 * ```sh
 * deno run -A scripts/bench/profile_summary.ts /tmp/prof/xxx.cpuprofile [--top 30]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The parts of the `.cpuprofile` JSON this summary reads. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** One function's share of the profile. */
export interface FunctionCost {
  /** `name file:line`. */
  key: string;
  selfMs: number;
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

export interface ProfileSummary {
  totalMs: number;
  functions: FunctionCost[];
  /** Self time per source file (or category such as `(garbage collector)`). */
  files: { file: string; selfMs: number; selfPct: number }[];
  /** For each function with self time: where that self time was spent from (direct caller → ms). */
  callers: Map<string, Map<string, number>>;
}

/** A short, stable location: the path from the repo or package name on, line 1-based. */
function shortUrl(url: string): string {
  if (!url) return "";
  const npm = url.match(/\/npm\/[^/]+\/(.+)$/) ?? url.match(/node_modules\/(.+)$/);
  if (npm) return `npm:${npm[1]}`;
  const repo = url.match(/\/(lib\/.+|mod\.ts|scripts\/.+)$/);
  if (repo) return repo[1];
  return url.replace(/^file:\/\//, "").replace(/^ext:/, "ext:");
}

function frameKey(frame: CallFrame): string {
  // V8 names a regexp's compiled code after its source, which can run to kilobytes.
  const full = frame.functionName || "(anonymous)";
  const name = full.length > 80 ? `${full.slice(0, 77)}...` : full;
  const url = shortUrl(frame.url);
  return url ? `${name} ${url}:${frame.lineNumber + 1}` : name;
}

function fileKey(frame: CallFrame): string {
  return shortUrl(frame.url) || frameKey(frame);
}

/** The layer a file or native frame belongs to, for the coarse breakdown. */
export function layerOf(file: string): string {
  if (file === "(idle)") return "(idle: waiting for I/O, or descheduled)";
  if (file === "(garbage collector)") return "garbage collector";
  if (file === "(program)" || file === "(root)") return "(program: native, unattributed)";
  if (
    /^node:_http|deno_node|^writeLatin1String|^writeUtf8String|^writeBuffer|^execute$|^op_node|^isIP/
      .test(file)
  ) {
    return "node:http client (incl. node streams, events, timers)";
  }
  if (/deno_http|deno_web|deno_fetch|deno_webidl|deno_url|^op_http|^op_readable/.test(file)) {
    return "Deno.serve side (web streams, Headers, Response)";
  }
  if (file.startsWith("npm:hono")) return "hono";
  if (file.startsWith("lib/") || file === "mod.ts") return "Portico lib/";
  if (/^RegExp: /.test(file)) return "regexps (see callers)";
  if (/^ext:core|^op_/.test(file)) return "deno core (ops, promises, microtasks)";
  return "other";
}

/** Self and inclusive time per function, sorted by self time. */
export function summarise(profile: CpuProfile): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const files = new Map<string, number>();
  const callers = new Map<string, Map<string, number>>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // The delta before sample i+1 is the time spent in sample i.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (dt <= 0) continue;
    totalUs += dt;
    const leaf = byId.get(profile.samples[i]);
    if (!leaf) continue;
    const leafKey = frameKey(leaf.callFrame);
    self.set(leafKey, (self.get(leafKey) ?? 0) + dt);
    const fk = fileKey(leaf.callFrame);
    files.set(fk, (files.get(fk) ?? 0) + dt);
    const parentId = parent.get(leaf.id);
    // Native leaves (GC, string writes) say little alone; their JS caller says where to look.
    const callerKey = parentId === undefined ? "(none)" : frameKey(byId.get(parentId)!.callFrame);
    let byCaller = callers.get(leafKey);
    if (!byCaller) callers.set(leafKey, byCaller = new Map());
    byCaller.set(callerKey, (byCaller.get(callerKey) ?? 0) + dt / 1000);
    // Count each function once per sample even when it recurses.
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const key = frameKey(byId.get(id)!.callFrame);
      if (seen.has(key)) continue;
      seen.add(key);
      total.set(key, (total.get(key) ?? 0) + dt);
    }
  }
  const pct = (us: number) => (totalUs ? (100 * us) / totalUs : 0);
  const functions = [...total.keys()].map((key) => ({
    key,
    selfMs: (self.get(key) ?? 0) / 1000,
    selfPct: pct(self.get(key) ?? 0),
    totalMs: total.get(key)! / 1000,
    totalPct: pct(total.get(key)!),
  })).sort((a, b) => b.selfMs - a.selfMs);
  return {
    totalMs: totalUs / 1000,
    functions,
    files: [...files].map(([file, us]) => ({ file, selfMs: us / 1000, selfPct: pct(us) }))
      .sort((a, b) => b.selfMs - a.selfMs),
    callers,
  };
}

/** Self time (ms) per layer (see `layerOf`), summed over files. */
export function layerTimes(summary: ProfileSummary): Map<string, number> {
  const layers = new Map<string, number>();
  for (const f of summary.files) {
    layers.set(layerOf(f.file), (layers.get(layerOf(f.file)) ?? 0) + f.selfMs);
  }
  return layers;
}

/** What `deno task bench --profile --profile-out FILE.json` saves: one side of a before/after. */
export interface ProfileRecord {
  date: string;
  commit: string;
  command: string;
  /** The .cpuprofile the summary came from. */
  profile: string;
  middlewares: number;
  /** The wrk run under profiling. */
  wrk: { requestsPerSec: number; p50Ms: number; p99Ms: number; requests: number };
  totalMs: number;
  /** Busy time: everything but the idle entry. */
  busyMs: number;
  layers: { layer: string; selfMs: number; pctOfBusy: number }[];
  files: { file: string; selfMs: number; pctOfBusy: number }[];
  functions: { key: string; selfMs: number; totalMs: number; selfPctOfBusy: number }[];
}

/** A summary in serialisable form, with percentages of busy (non-idle) time, plus run facts. */
export function profileRecord(
  summary: ProfileSummary,
  meta: Pick<ProfileRecord, "date" | "commit" | "command" | "profile" | "middlewares" | "wrk">,
  top = 60,
): ProfileRecord {
  const layers = layerTimes(summary);
  const idle = [...layers].find(([k]) => k.startsWith("(idle"))?.[1] ?? 0;
  const busyMs = summary.totalMs - idle;
  const pct = (ms: number) => (busyMs > 0 ? Math.round((1000 * ms) / busyMs) / 10 : 0);
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    ...meta,
    wrk: {
      requestsPerSec: meta.wrk.requestsPerSec,
      p50Ms: meta.wrk.p50Ms,
      p99Ms: meta.wrk.p99Ms,
      requests: meta.wrk.requests,
    },
    totalMs: round(summary.totalMs),
    busyMs: round(busyMs),
    layers: [...layers].filter(([k]) => !k.startsWith("(idle")).sort((a, b) => b[1] - a[1])
      .map(([layer, ms]) => ({ layer, selfMs: round(ms), pctOfBusy: pct(ms) })),
    files: summary.files.filter((f) => !f.file.startsWith("(idle")).slice(0, top)
      .map((f) => ({ file: f.file, selfMs: round(f.selfMs), pctOfBusy: pct(f.selfMs) })),
    functions: summary.functions.filter((f) => !/^\((idle|root|program)\)/.test(f.key))
      .slice(0, top).map((f) => ({
        key: f.key,
        selfMs: round(f.selfMs),
        totalMs: round(f.totalMs),
        selfPctOfBusy: pct(f.selfMs),
      })),
  };
}

/** The summary as text: top functions by self time, top by inclusive time, top files. */
export function formatSummary(summary: ProfileSummary, top = 30): string {
  const lines = [`profile: ${summary.totalMs.toFixed(0)} ms sampled`, "", "top self time:"];
  for (const f of summary.functions.slice(0, top)) {
    lines.push(
      `  ${f.selfPct.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(6)} ms  ${f.key}`,
    );
  }
  lines.push("", "self time by layer:");
  const layers = layerTimes(summary);
  const idle = [...layers].find(([k]) => k.startsWith("(idle"))?.[1] ?? 0;
  const busy = summary.totalMs - idle;
  for (const [layer, ms] of [...layers].sort((a, b) => b[1] - a[1])) {
    const ofBusy = layer.startsWith("(idle") || !busy
      ? ""
      : ` (${((100 * ms) / busy).toFixed(1)}% of busy)`;
    lines.push(
      `  ${((100 * ms) / (summary.totalMs || 1)).toFixed(1).padStart(5)}%  ${
        ms.toFixed(0).padStart(6)
      } ms  ${layer}${ofBusy}`,
    );
  }
  lines.push("", "main callers of the top self-time functions:");
  for (const f of summary.functions.slice(0, Math.min(top, 12))) {
    const byCaller = summary.callers.get(f.key);
    if (!byCaller || /^\((idle|program|root)\)/.test(f.key)) continue;
    const best = [...byCaller].sort((a, b) => b[1] - a[1]).slice(0, 3);
    lines.push(`  ${f.key}`);
    for (const [caller, ms] of best) {
      lines.push(`      ${ms.toFixed(0).padStart(6)} ms  from ${caller}`);
    }
  }
  lines.push("", "top inclusive time (excluding roots):");
  const inclusive = [...summary.functions]
    .filter((f) => !/^\((root|program|idle|garbage collector)\)/.test(f.key))
    .sort((a, b) => b.totalMs - a.totalMs);
  for (const f of inclusive.slice(0, top)) {
    lines.push(
      `  ${f.totalPct.toFixed(1).padStart(5)}%  ${f.totalMs.toFixed(0).padStart(6)} ms  ${f.key}`,
    );
  }
  lines.push("", "self time by file:");
  for (const f of summary.files.slice(0, top)) {
    lines.push(
      `  ${f.selfPct.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(6)} ms  ${f.file}`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { top: { type: "string", default: "30" } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) {
    console.error("usage: profile_summary.ts FILE.cpuprofile [--top N]");
    Deno.exit(1);
  }
  const profile = JSON.parse(await Deno.readTextFile(positionals[0])) as CpuProfile;
  console.log(formatSummary(summarise(profile), Number(values.top)));
}
