import assert from "node:assert/strict";
import { RuleCache } from "../lib/router/rule_cache.ts";

Deno.test("rule cache: reuses compiled rules across builds and forgets unused ones", () => {
  const cache = new RuleCache();
  const a1 = cache.compile("Host(`a.test`)", 0);
  cache.compile("Host(`b.test`)", 0);
  cache.finishBuild();
  // Next build uses only a: the same compiled object comes back.
  assert.equal(cache.compile("Host(`a.test`)", 0), a1);
  assert.notEqual(cache.compile("Host(`a.test`)", 5), a1, "priority is part of the key");
  cache.finishBuild();
  cache.finishBuild();
  // Two builds without a: recompiled, not kept forever.
  assert.notEqual(cache.compile("Host(`a.test`)", 0), a1);
  assert.throws(() => cache.compile("Host(", 0), /Host/);
});
