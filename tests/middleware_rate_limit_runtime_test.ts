/** The runtime hooks: every sink logs, the latest (override first) cluster size counts, removal by layer. */

import assert from "node:assert/strict";
import { clusterMembers, configureRateLimitRuntime, rateLimitLog } from "../lib/middlewares/rate_limit/runtime.ts";

Deno.test("rateLimit runtime: layers of sinks and cluster sizes", () => {
  const a: string[] = [];
  const b: string[] = [];
  const removeTest = configureRateLimitRuntime({
    log: (_l, m) => a.push(m),
    clusterMembers: () => 3,
  }, { override: true });
  const removeServer = configureRateLimitRuntime({
    log: (_l, m) => b.push(m),
    clusterMembers: () => 5,
  });
  try {
    rateLimitLog("error", "one", {});
    assert.deepEqual([a, b], [["one"], ["one"]], "every sink gets the line");
    assert.equal(clusterMembers(), 3, "the override wins over a later server layer");
    removeTest();
    assert.equal(clusterMembers(), 5);
    const removeBad = configureRateLimitRuntime({
      log: () => {
        throw new Error("broken sink");
      },
      clusterMembers: () => Number.NaN,
    });
    rateLimitLog("info", "two", {});
    assert.deepEqual(b, ["one", "two"], "a broken sink does not stop the others");
    assert.equal(clusterMembers(), 1, "a nonsense size counts as 1");
    removeBad();
    removeServer();
    assert.equal(clusterMembers(), 1, "no layer: a cluster of one");
  } finally {
    removeTest();
    removeServer();
  }
});
