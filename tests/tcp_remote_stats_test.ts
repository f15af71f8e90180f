/**
 * Merging workers' TCP router totals into main's counters: growth is
 * added once, a restarted source counts whole again, open connections are
 * the latest gauge per source and vanish with it.
 */

import assert from "node:assert/strict";
import type { TcpRouterCounters } from "../lib/tcp/build.ts";
import { RemoteTcpStats } from "../lib/tcp/remote_stats.ts";

const c = (
  connections: number,
  bytesIn = 0,
  bytesOut = 0,
  refused = 0,
  failed = 0,
): TcpRouterCounters => ({
  connections,
  refused,
  failed,
  bytesIn,
  bytesOut,
});

Deno.test("remote TCP stats: snapshots add their growth to the shared counters once", () => {
  const counters = new Map<string, TcpRouterCounters>([["r", c(5, 50, 60)]]);
  const remote = new RemoteTcpStats(counters);
  remote.apply("1", [{ router: "r", counters: c(2, 20, 30), open: 1 }]);
  remote.apply("2", [{ router: "r", counters: c(1, 10, 10), open: 2 }, {
    router: "only-worker",
    counters: c(4),
    open: 0,
  }]);
  assert.deepEqual(counters.get("r"), c(8, 80, 100));
  assert.deepEqual(counters.get("only-worker"), c(4));
  assert.equal(remote.open("r"), 3);
  // The same snapshot again adds nothing; growth adds the difference.
  remote.apply("1", [{ router: "r", counters: c(2, 20, 30), open: 1 }]);
  remote.apply("1", [{ router: "r", counters: c(3, 25, 30), open: 0 }]);
  assert.deepEqual(counters.get("r"), c(9, 85, 100));
  assert.equal(remote.open("r"), 2);
});

Deno.test("remote TCP stats: a restarted source counts from zero without the counters going back", () => {
  const counters = new Map<string, TcpRouterCounters>();
  const remote = new RemoteTcpStats(counters);
  remote.apply("1", [{ router: "r", counters: c(10, 100, 100), open: 4 }]);
  // Restarted without being told (the totals fell): the new totals count whole.
  remote.apply("1", [{ router: "r", counters: c(2, 20, 20), open: 1 }]);
  assert.deepEqual(counters.get("r"), c(12, 120, 120));
  // Told: its open connections are gone at once, and its next snapshot counts whole.
  remote.forget("1");
  assert.equal(remote.open("r"), 0);
  remote.apply("1", [{ router: "r", counters: c(3, 30, 30), open: 0 }]);
  assert.deepEqual(counters.get("r"), c(15, 150, 150));
});
