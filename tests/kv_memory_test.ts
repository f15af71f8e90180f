/**
 * The shared KV contract against the in-memory backend, plus what only the
 * memory backend can show cheaply: lease expiry on a fake clock and a
 * compacted history forcing a `reset`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type KVClock, MemoryKVBackend, MemoryKVStore } from "../lib/kv/memory.ts";
import { kvContract, waitFor, WatchView } from "./fixtures/kv_contract.ts";

let backend: MemoryKVBackend | undefined;
kvContract({
  name: "memory",
  start: () => {
    backend = new MemoryKVBackend();
    return Promise.resolve();
  },
  stop: () => {
    backend?.dispose();
    return Promise.resolve();
  },
  open: () => Promise.resolve(new MemoryKVStore({ backend })),
  leaseTtlMs: 300,
});

/** A clock that only moves when the test says so. */
class FakeClock implements KVClock {
  #now = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now() {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number) {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown) {
    this.#timers.delete(handle as number);
  }
  advance(ms: number) {
    const end = this.#now + ms;
    for (;;) {
      const due = [...this.#timers].filter(([, t]) =>
        t.at <= end
      ).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].fn();
    }
    this.#now = end;
  }
}

Deno.test("memory: a renewed lease lives, an abandoned one expires at its TTL", async () => {
  const clock = new FakeClock();
  const backend = new MemoryKVBackend({ clock });
  const holder = new MemoryKVStore({ backend });
  const reader = new MemoryKVStore({ backend });
  const lease = await holder.grantLease(3000);
  await holder.put("leader", "n1", { lease });
  clock.advance(10_000); // the holder renews every second
  assert.equal((await reader.get("leader"))?.value, "n1");
  await holder.close();
  clock.advance(2999);
  assert.equal((await reader.get("leader"))?.value, "n1", "not before the TTL");
  clock.advance(3000);
  assert.equal(await reader.get("leader"), undefined);
  await assert.rejects(() => reader.put("x", "y", { lease }), /lease .* expired.*key x/);
  await reader.close();
  backend.dispose();
});

Deno.test("memory: resuming from a compacted revision emits a reset", async () => {
  const store = new MemoryKVStore();
  await store.put("p/a", "1");
  const { revision } = await store.list("p/");
  await store.put("p/b", "2");
  store.backend.compact();
  const view = new WatchView();
  const w = store.watch("p/", { fromRevision: revision, onEvents: view.apply });
  await waitFor("reset", () => view.resets === 1);
  assert.deepEqual(view.snapshot(), { "p/a": "1", "p/b": "2" });
  assert.equal(view.lastRevision, store.backend.revision);
  await w.close();
  await store.close();
});

Deno.test("memory: a closed store refuses calls", async () => {
  const store = new MemoryKVStore();
  await store.close();
  await assert.rejects(async () => await store.get("k"), /memory: store is closed/);
});

Deno.test("openKVStore opens each kind and names the valid kinds on a typo", async () => {
  const { openKVStore, MemoryKVStore: Memory } = await import("../lib/kv/mod.ts");
  const memory = await openKVStore("memory", { endpoints: [] });
  assert.ok(memory instanceof Memory);
  await memory.close();
  const consul = await openKVStore("consul", { endpoints: ["127.0.0.1:8500"], token: "t" });
  assert.equal(consul.kind, "consul");
  await consul.close();
  await assert.rejects(
    () => openKVStore("zookeeper" as "etcd", { endpoints: [] }),
    /unknown KV store kind "zookeeper"; valid kinds are etcd, redis, consul and memory/,
  );
  await assert.rejects(() => openKVStore("etcd", { endpoints: [] }), /etcd: endpoints must list/);
  await assert.rejects(
    () => openKVStore("redis", { endpoints: [], db: 0 }),
    /redis: endpoints must list/,
  );
});
