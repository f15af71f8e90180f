/**
 * A before/after table from two profile summaries saved by
 * `deno task bench --profile --profile-out FILE.json`: req/s and p99 under
 * profiling, then self time per layer and the top functions, as a share of
 * busy (non-idle) time, in Markdown ready for the README.
 *
 * ```sh
 * deno task bench --profile --profile-out bench/profile-before.json   # on the old commit
 * deno task bench --profile --profile-out bench/profile-after.json    # on the new one
 * deno run -A scripts/bench/profile_compare.ts bench/profile-before.json bench/profile-after.json
 * ```
 *
 * @module
 */

import type { ProfileRecord } from "./profile_summary.ts";

/** Markdown tables comparing `before` and `after`; `top` rows of functions. */
export function compareProfiles(before: ProfileRecord, after: ProfileRecord, top = 15): string {
  const pct = (x: number | undefined) => (x === undefined ? "-" : `${x.toFixed(1)} %`);
  const lines = [
    `| | before (${before.commit}) | after (${after.commit}) |`,
    "|---|---|---|",
    `| req/s under profiling | ${Math.round(before.wrk.requestsPerSec)} | ${
      Math.round(after.wrk.requestsPerSec)
    } |`,
    `| p99 | ${before.wrk.p99Ms} ms | ${after.wrk.p99Ms} ms |`,
    `| busy ms sampled | ${before.busyMs} | ${after.busyMs} |`,
    "",
    "| layer (self time, % of busy) | before | after |",
    "|---|---|---|",
  ];
  const layers = [...new Set([...before.layers, ...after.layers].map((l) => l.layer))];
  for (const layer of layers) {
    const b = before.layers.find((l) => l.layer === layer)?.pctOfBusy;
    const a = after.layers.find((l) => l.layer === layer)?.pctOfBusy;
    lines.push(`| ${layer} | ${pct(b)} | ${pct(a)} |`);
  }
  lines.push("", "| function (self time, % of busy) | before | after |", "|---|---|---|");
  const keys = [
    ...new Set([
      ...before.functions.slice(0, top).map((f) => f.key),
      ...after.functions.slice(0, top).map((f) => f.key),
    ]),
  ];
  for (const key of keys) {
    const b = before.functions.find((f) => f.key === key)?.selfPctOfBusy;
    const a = after.functions.find((f) => f.key === key)?.selfPctOfBusy;
    lines.push(`| \`${key}\` | ${pct(b)} | ${pct(a)} |`);
  }
  return lines.join("\n");
}

if (import.meta.main) {
  if (Deno.args.length !== 2) {
    console.error("usage: profile_compare.ts BEFORE.json AFTER.json");
    Deno.exit(1);
  }
  const [before, after] = await Promise.all(
    Deno.args.map(async (f) => JSON.parse(await Deno.readTextFile(f)) as ProfileRecord),
  );
  console.log(compareProfiles(before, after));
}
