/** The per-connection command timeout: the oldest outstanding command decides, one timer. */

import assert from "node:assert/strict";
import { ConnectionWatch } from "../lib/middlewares/rate_limit/connection_watch.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("connection watch: stuck when the oldest outstanding command passes its deadline", async () => {
  const stuck: number[] = [];
  const start = performance.now();
  const watch = new ConnectionWatch(60, () => stuck.push(performance.now() - start));
  watch.started(); // a, at 0
  await sleep(30);
  watch.started(); // b, at 30
  watch.ended(); // a answered
  assert.equal(watch.outstanding, 1);
  await sleep(45); // 75: a's deadline (60) has passed, but a answered; b's is at 90
  assert.equal(stuck.length, 0);
  await sleep(40);
  assert.equal(stuck.length, 1, "b timed out");
  assert.ok(stuck[0] >= 89 && stuck[0] < 115, `at ${stuck[0].toFixed(1)} ms (30 + 60)`);
  assert.equal(watch.outstanding, 0, "forgotten once the connection is dropped");
  watch.ended(); // a late answer after the drop is harmless
  assert.equal(watch.outstanding, 0);
});

Deno.test("connection watch: answered commands never fire; many are cheap", async () => {
  const watch = new ConnectionWatch(20, () => assert.fail("nothing is stuck"));
  for (let i = 0; i < 5000; i++) {
    watch.started();
    if (i % 2 === 1) {
      watch.ended();
      watch.ended();
    }
  }
  assert.equal(watch.outstanding, 0);
  await sleep(50);
  watch.started();
  watch.reset();
  await sleep(40);
});
