// The central dedupe and throttle of provider output (Traefik's
// providersThrottleDuration), with a fake clock.
import assert from "node:assert/strict";
import { ProviderThrottle, type ThrottleClock } from "../lib/providers/throttle.ts";
import type { DynamicConfig } from "../lib/config/types.ts";
import { emptyDynamicConfig } from "../lib/config/dynamic.ts";

class FakeClock implements ThrottleClock {
  t = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now() {
    return this.t;
  }
  setTimer(fn: () => void, ms: number) {
    const id = this.#next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimer(id: unknown) {
    this.timers.delete(id as number);
  }
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
  }
}

function config(rule: string): DynamicConfig {
  const c = emptyDynamicConfig();
  c.http.routers.r = { rule, service: "s", entryPoints: [], middlewares: [] } as never;
  return c;
}

function harness(windowMs: number) {
  const clock = new FakeClock();
  const seen: string[] = [];
  const throttle = new ProviderThrottle(windowMs, {
    onConfig: (p, c) => seen.push(`${p}:${(c.http.routers.r as { rule: string }).rule}@${clock.t}`),
    onError: (p, e) => seen.push(`${p}:error ${e.message}@${clock.t}`),
  }, clock);
  return { clock, seen, throttle };
}

Deno.test("throttle: the first change passes at once, later ones once per window, latest wins", () => {
  const { clock, seen, throttle } = harness(2000);
  throttle.onConfig("file", config("A"));
  clock.advance(100);
  throttle.onConfig("file", config("B"));
  clock.advance(100);
  throttle.onConfig("file", config("C"));
  assert.deepEqual(seen, ["file:A@0"]);
  clock.advance(1799);
  assert.deepEqual(seen, ["file:A@0"]);
  clock.advance(1);
  assert.deepEqual(seen, ["file:A@0", "file:C@2000"]);
  // The window starts again after each pass.
  throttle.onConfig("file", config("D"));
  clock.advance(1999);
  assert.equal(seen.length, 2);
  clock.advance(1);
  assert.deepEqual(seen.at(-1), "file:D@4000");
});

Deno.test("throttle: an unchanged snapshot is dropped, also when it undoes a held one", () => {
  const { clock, seen, throttle } = harness(1000);
  throttle.onConfig("etcd", config("A"));
  throttle.onConfig("etcd", config("A"));
  clock.advance(10);
  throttle.onConfig("etcd", config("B"));
  throttle.onConfig("etcd", config("A"));
  clock.advance(5000);
  assert.deepEqual(seen, ["etcd:A@0"]);
});

Deno.test("throttle: providers are throttled apart", () => {
  const { clock, seen, throttle } = harness(1000);
  throttle.onConfig("file", config("A"));
  throttle.onConfig("etcd", config("X"));
  clock.advance(10);
  throttle.onConfig("file", config("B"));
  assert.deepEqual(seen, ["file:A@0", "etcd:X@0"]);
  clock.advance(990);
  assert.deepEqual(seen, ["file:A@0", "etcd:X@0", "file:B@1000"]);
});

Deno.test("throttle: an error passes at once, cancels the held snapshot, and the same good one passes again after it", () => {
  const { clock, seen, throttle } = harness(1000);
  throttle.onConfig("file", config("A"));
  clock.advance(10);
  throttle.onConfig("file", config("B"));
  throttle.onError("file", new Error("bad toml"));
  clock.advance(2000);
  assert.deepEqual(seen, ["file:A@0", "file:error bad toml@10"]);
  throttle.onConfig("file", config("A"));
  assert.deepEqual(seen.at(-1), "file:A@2010");
});

Deno.test("throttle: flush passes held snapshots now; a zero window never holds", () => {
  const a = harness(1000);
  a.throttle.onConfig("file", config("A"));
  a.throttle.onConfig("file", config("B"));
  a.throttle.flush();
  assert.deepEqual(a.seen, ["file:A@0", "file:B@0"]);
  const b = harness(0);
  b.throttle.onConfig("file", config("A"));
  b.throttle.onConfig("file", config("B"));
  assert.deepEqual(b.seen, ["file:A@0", "file:B@0"]);
});

Deno.test({
  name: "throttle in a running server: providersThrottleDuration holds a second change back, the first applies at once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { startTestProxy } = await import("./fixtures/proxy.ts");
    const router = (name: string) =>
      `[http.routers.${name}]\nrule = "Path(\`/${name}\`)"\nservice = "noop@internal"\n`;
    const proxy = await startTestProxy({
      dynamic: router("a"),
      extraStatic: `[providers]\nprovidersThrottleDuration = "1500ms"\n`,
      configuredThrottle: true,
    });
    try {
      // The start-up snapshot opened a window; let it pass so the next change is a first one.
      await new Promise((r) => setTimeout(r, 1600));
      const t0 = performance.now();
      await proxy.writeDynamic(router("b"));
      const first = performance.now() - t0;
      assert.ok(proxy.server.watcher.current.routers.has("b@file"));
      const t1 = performance.now();
      await proxy.writeDynamic(router("c"));
      const second = performance.now() - t1;
      assert.ok(proxy.server.watcher.current.routers.has("c@file"));
      assert.ok(first < 1000, `the first change waited ${Math.round(first)} ms`);
      assert.ok(second > 1000, `the second change applied after ${Math.round(second)} ms, inside the window`);
    } finally {
      await proxy.close();
    }
  },
});
