import assert from "node:assert/strict";
import {
  DEFAULT_POLICY,
  type MemorySample,
  releaseMemory,
  type ReleaseReport,
  shouldRelease,
  startMemoryRelease,
} from "../lib/server/memory_release.ts";

const MB = 1024 * 1024;

Deno.test("shouldRelease: only after a quiet interval, with grown RSS, not too often", () => {
  const at = (atMs: number, cpuMs: number, rssMb: number): MemorySample => ({
    atMs,
    cpuMicros: cpuMs * 1000,
    rssBytes: rssMb * MB,
  });
  const lastRelease = { atMs: 0, rssBytes: 60 * MB };
  const table: [name: string, previous: MemorySample, current: MemorySample, want: boolean][] = [
    ["quiet, grown 120 MB", at(20_000, 5_000, 180), at(22_000, 5_010, 180), true],
    ["busy (100 % of a core)", at(20_000, 5_000, 180), at(22_000, 7_000, 180), false],
    ["at the quiet share (5 %)", at(20_000, 5_000, 180), at(22_000, 5_100, 180), false],
    ["just under it", at(20_000, 5_000, 180), at(22_000, 5_099, 180), true],
    ["quiet, grown less than the slack", at(20_000, 5_000, 70), at(22_000, 5_010, 70), false],
    ["quiet, grown exactly the slack", at(20_000, 5_000, 76), at(22_000, 5_010, 76), true],
    [
      "quiet, but too soon after the last release",
      at(7_000, 5_000, 180),
      at(9_000, 5_010, 180),
      false,
    ],
    ["no time passed", at(22_000, 5_000, 180), at(22_000, 5_000, 180), false],
  ];
  for (const [name, previous, current, want] of table) {
    assert.equal(shouldRelease(DEFAULT_POLICY, previous, current, lastRelease), want, name);
  }
});

/** Allocates about `mb` MB of small objects and drops them. */
function makeGarbage(mb: number): void {
  let keep: { i: number; s: string }[] = [];
  for (let i = 0; i < mb * 12_000; i++) keep.push({ i, s: `x${i}` });
  keep = [];
  assert.equal(keep.length, 0);
}

Deno.test({
  name: "releaseMemory: a full GC and malloc_trim hand dropped garbage back to the OS",
  // The FFI library stays open on purpose, for the next release.
  sanitizeResources: false,
  fn: async () => {
    makeGarbage(200);
    const report = await releaseMemory();
    assert.equal(report.gc, true, "gc() through node:v8 is available on this Deno");
    if (Deno.build.os === "linux") assert.equal(report.trim, true, "malloc_trim through FFI");
    const freedMb = (report.rssBeforeBytes - report.rssAfterBytes) / MB;
    assert.ok(freedMb > 100, `expected > 100 MB back, got ${freedMb.toFixed(1)} MB`);
  },
});

Deno.test({
  name: "startMemoryRelease: releases at start, then after a burst once the process is quiet",
  sanitizeResources: false,
  fn: async () => {
    const reports: ReleaseReport[] = [];
    let told!: () => void;
    const second = new Promise<void>((r) => (told = r));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const memory = startMemoryRelease({
      intervalMs: 100,
      minGapMs: 0,
      slackBytes: 32 * MB,
      onRelease: (report) => {
        reports.push(report);
        if (reports.length === 2) told();
      },
    });
    try {
      while (reports.length === 0) await new Promise((r) => setTimeout(r, 20));
      assert.equal(reports[0].trim, false, "the release at start goes without FFI");
      makeGarbage(200);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("no release within 10 s of going quiet")),
          10_000,
        );
      });
      await Promise.race([second, timeout]);
      const freedMb = (reports[1].rssBeforeBytes - reports[1].rssAfterBytes) / MB;
      assert.ok(freedMb > 100, `expected > 100 MB back, got ${freedMb.toFixed(1)} MB`);
    } finally {
      clearTimeout(timer);
      memory.stop();
    }
  },
});
