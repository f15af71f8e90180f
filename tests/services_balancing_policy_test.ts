/**
 * Balancing policies on their own: the table picks them by Traefik's
 * strategy name, and the leasttime core weighs response time, in-flight
 * requests and weights, breaking ties by weighted round robin.
 */

import assert from "node:assert/strict";
import { policyFor, policyNames } from "../lib/services/balancing/mod.ts";

const up = () => true;
const req = { clientIp: "203.0.113.7" };
const servers = (...weights: number[]) =>
  weights.map((weight, i) => ({ url: `http://s${i}`, weight }));

Deno.test("policy table: every Traefik strategy name has a policy; unknown names have none", () => {
  assert.deepEqual(policyNames().sort(), ["hrw", "leasttime", "p2c", "wrr"]);
  assert.equal(policyFor("fastest", servers(1)), undefined);
  const wrr = policyFor("wrr", servers(2, 1))!;
  assert.deepEqual([0, 1, 2].map(() => wrr.select(up, req)!.url), [
    "http://s0",
    "http://s1",
    "http://s0",
  ]);
  // p2c with a scripted random source: draws s0 then s1; s0 busy, so s1.
  const draws = [0, 0.9];
  const list = servers(1, 1);
  const p2c = policyFor("p2c", list, { random: () => draws.shift()! })!;
  p2c.begin!(list[0]);
  assert.equal(p2c.select(up, req), list[1]);
  const hrw = policyFor("hrw", servers(1, 1, 1))!;
  assert.equal(hrw.select(up, req), hrw.select(up, req));
});

Deno.test("leasttime: ties go round robin by weight; no samples scores 0; zero weight and down never chosen", () => {
  const list = servers(2, 1, 0);
  const lt = policyFor("leasttime", list)!;
  assert.equal(lt.size, 2);
  // Earliest-deadline-first with staggered starts: 2:1 over the run, not strict alternation.
  const picks = Array.from({ length: 300 }, () => lt.select(up, req)!.url);
  const s0 = picks.filter((u) => u === "http://s0").length;
  assert.ok(s0 >= 199 && s0 <= 201, `s0 got ${s0} of 300`);
  assert.ok(!picks.includes("http://s2"));
  assert.equal(lt.select((s) => s !== list[0] && s !== list[1], req), undefined);
});

Deno.test("leasttime: score = average TTFB × (1 + in flight) / weight", () => {
  const list = servers(1, 1);
  const [a, b] = list;
  const lt = policyFor("leasttime", list)!;
  lt.firstByte!(a, 10);
  lt.firstByte!(b, 30);
  assert.equal(lt.select(up, req), a); // 10 < 30
  lt.begin!(a);
  lt.begin!(a);
  assert.equal(lt.select(up, req), a); // 10 × 3 = 30 ties 30: round robin, a's deadline first
  lt.begin!(a);
  assert.equal(lt.select(up, req), b); // 40 > 30
  lt.end!(a);
  lt.end!(a);
  lt.end!(a);
  // The average is over recent samples: 100 slow ones push a's old fast one out.
  for (let i = 0; i < 100; i++) lt.firstByte!(a, 50);
  assert.equal(lt.select(up, req), b);
  // A heavier weight divides the score.
  const heavy = servers(3, 1);
  const lw = policyFor("leasttime", heavy)!;
  lw.firstByte!(heavy[0], 60);
  lw.firstByte!(heavy[1], 30);
  assert.equal(lw.select(up, req), heavy[0]); // 60 / 3 = 20 < 30
});
