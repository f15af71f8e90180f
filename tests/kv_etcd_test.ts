/**
 * The shared KV contract against a real etcd (Debian `etcd-server`), plus
 * etcd-only behaviour: a watch resuming from a compacted revision resets.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EtcdKVStore } from "../lib/kv/etcd.ts";
import { type EtcdServer, startEtcd } from "./fixtures/etcd.ts";
import { kvContract, waitFor, WatchView } from "./fixtures/kv_contract.ts";

let server: EtcdServer | undefined;
kvContract({
  name: "etcd",
  start: async () => {
    server = await startEtcd();
  },
  stop: async () => {
    await server?.stop();
  },
  open: () => Promise.resolve(new EtcdKVStore({ endpoints: [server!.endpoint], timeoutMs: 3000 })),
  restart: () => server!.restart(),
  leaseTtlMs: 1000,
  leaseGraceMs: 2000,
  // etcd3's WatchManager arms a reconnect timer (watch.js handleError) when
  // its stream ends, even when the stream ended because the last watcher was
  // cancelled or the client closed; it fires harmlessly after the backoff but
  // outlives the test.
  sanitize: false,
});

Deno.test({
  name: "etcd: resuming from a compacted revision emits a reset",
  // See above: etcd3 leaves a reconnect timer behind after a watch ends.
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const etcd = await startEtcd();
  const store = new EtcdKVStore({ endpoints: [etcd.endpoint] });
  try {
    await store.put("p/a", "1");
    const { revision } = await store.list("p/");
    await store.put("p/b", "2");
    await store.delete("p/a");
    const { revision: now } = await store.list("p/");
    const compact = await fetch(`${etcd.endpoint}/v3/kv/compaction`, {
      method: "POST",
      body: JSON.stringify({ revision: String(now), physical: true }),
    });
    assert.equal(compact.status, 200, await compact.text());
    const view = new WatchView();
    const w = store.watch("p/", { fromRevision: revision, onEvents: view.apply });
    try {
      await waitFor("reset after compaction", () => view.resets === 1);
      assert.deepEqual(view.snapshot(), { "p/b": "2" });
    } finally {
      await w.close();
    }
  } finally {
    await store.close();
    await etcd.stop();
  }
});
