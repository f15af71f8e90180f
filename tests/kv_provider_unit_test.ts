/**
 * The KV provider against the in-memory store and a scripted store: first
 * snapshot before `start` resolves, bursts coalesced into one snapshot, bad
 * values rejected with the key named while the last good config serves,
 * the cache file written (0600) and served when the store is down at start,
 * and the connection state reported.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { DynamicConfig } from "../lib/config/types.ts";
import { MemoryKVStore } from "../lib/kv/memory.ts";
import type { KVStore, KVWatchOptions } from "../lib/kv/types.ts";
import { Logger } from "../lib/log/logger.ts";
import { KVProvider } from "../lib/providers/kv.ts";
import { KVSnapshotCache } from "../lib/providers/kv_cache.ts";
import type { ProviderListener } from "../lib/providers/types.ts";
import { parseToml } from "../lib/config/load.ts";
import { validateStatic } from "../lib/config/static.ts";
import type { StaticConfig } from "../lib/config/types.ts";
import type { Provider } from "../lib/providers/types.ts";
import { startServer } from "../lib/server/server.ts";
import { startEchoBackend } from "./fixtures/backend.ts";
import { freePort } from "./fixtures/ports.ts";

function parseStaticForTest(toml: string): StaticConfig {
  return validateStatic(parseToml(toml, "test.toml"), "test.toml");
}

async function startServerForTest(providers: Provider[]) {
  const config = parseStaticForTest(`[entryPoints.web]\naddress = "127.0.0.1:${freePort()}"\n`);
  const logger = new Logger({ level: "ERROR", format: "json", write: () => {} });
  const server = await startServer(config, { providers, logger, throttleMs: 5 });
  return { server, url: `http://127.0.0.1:${server.ports.get("web")}` };
}

class Recorder implements ProviderListener {
  configs: DynamicConfig[] = [];
  errors: Error[] = [];
  onConfig(_provider: string, config: DynamicConfig): void {
    this.configs.push(config);
  }
  onError(_provider: string, error: Error): void {
    this.errors.push(error);
  }
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function seed(store: KVStore, backend = "http://127.0.0.1:1"): Promise<void> {
  await store.transaction([], [
    { kind: "put", key: "traefik/http/routers/app/rule", value: "PathPrefix(`/`)" },
    { kind: "put", key: "traefik/http/routers/app/service", value: "app" },
    { kind: "put", key: "traefik/http/services/app/loadbalancer/servers/0/url", value: backend },
  ]);
}

Deno.test("the first snapshot is emitted before start resolves, then changes follow", async () => {
  const store = new MemoryKVStore();
  await seed(store);
  const provider = new KVProvider({ name: "etcd", store, coalesceMs: 10 });
  const rec = new Recorder();
  await provider.start(rec);
  try {
    assert.equal(rec.configs.length, 1);
    assert.deepEqual(Object.keys(rec.configs[0].http.routers), ["app"]);
    assert.equal(provider.connectionState().state, "connected");
    await store.put("traefik/http/routers/app/priority", "7");
    await waitFor("second snapshot", () => rec.configs.length === 2);
    assert.equal(rec.configs[1].http.routers.app.priority, 7);
    // Keys outside the root change nothing.
    await store.put("other/http/routers/x/rule", "nope");
    await sleep(50);
    assert.equal(rec.configs.length, 2);
  } finally {
    await provider.stop();
    await store.close();
  }
});

Deno.test("a 500-key burst becomes one snapshot", async () => {
  const store = new MemoryKVStore();
  const provider = new KVProvider({ name: "etcd", store, coalesceMs: 30 });
  const rec = new Recorder();
  await provider.start(rec);
  try {
    assert.equal(rec.configs.length, 1, "the empty store is a valid, empty snapshot");
    // Separate puts, not one transaction: the provider has to coalesce them itself.
    for (let i = 0; i < 250; i++) {
      await store.put(`traefik/http/routers/r${i}/rule`, `Path(\`/r${i}\`)`);
      await store.put(`traefik/http/routers/r${i}/service`, "noop@internal");
    }
    await waitFor("the burst's snapshot", () => rec.configs.length === 2);
    await sleep(100);
    assert.equal(rec.configs.length, 2, "exactly one snapshot for the burst");
    assert.equal(Object.keys(rec.configs[1].http.routers).length, 250);
    assert.equal(rec.errors.length, 0);
    assert.equal(provider.keyCount, 500);
  } finally {
    await provider.stop();
    await store.close();
  }
});

Deno.test("a bad value is rejected naming the key; fixing it emits again", async () => {
  const store = new MemoryKVStore();
  await seed(store);
  const provider = new KVProvider({ name: "redis", store, coalesceMs: 5 });
  const rec = new Recorder();
  await provider.start(rec);
  try {
    await store.put("traefik/http/services/app/loadbalancer/servers/0/weight", "abc");
    await waitFor("error", () => rec.errors.length === 1);
    assert.match(
      rec.errors[0].message,
      /^redis: traefik\/http\/services\/app\/loadbalancer\/servers\/0\/weight: expected an integer/,
    );
    assert.equal(rec.configs.length, 1);
    // Back to the previous good config: it is sent again so the error clears.
    await store.delete("traefik/http/services/app/loadbalancer/servers/0/weight");
    await waitFor("recovery", () => rec.configs.length === 2);
    assert.deepEqual(rec.configs[1], rec.configs[0]);
  } finally {
    await provider.stop();
    await store.close();
  }
});

Deno.test("the last good config keeps serving while the store holds a bad one", async () => {
  const backend = startEchoBackend("good");
  const store = new MemoryKVStore();
  await seed(store, `http://127.0.0.1:${backend.port}`);
  const provider = new KVProvider({ name: "etcd", store, coalesceMs: 5 });
  const { server, url } = await startServerForTest([provider]);
  try {
    assert.equal((await (await fetch(`${url}/x`)).json()).backend, "good");
    await store.put("traefik/http/services/app/loadbalancer/servers/0/url", "not a url");
    await waitFor("rejection", () => server.watcher.providerErrors.has("etcd"));
    assert.match(
      server.watcher.providerErrors.get("etcd")!,
      /traefik\/http\/services\/app\/loadbalancer\/servers\/0\/url/,
    );
    const res = await fetch(`${url}/x`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).backend, "good");
  } finally {
    await server.shutdown();
    await store.close();
    await backend.close();
  }
});

/** A store whose watch is down until `up()` is called, then resets with `entries`. */
function scriptedStore(entries: Map<string, string>) {
  let options: KVWatchOptions | undefined;
  const store = {
    kind: "scripted",
    watch(_prefix: string, o: KVWatchOptions) {
      options = o;
      queueMicrotask(() => o.onState?.("disconnected", new Error("connection refused")));
      return { close: () => Promise.resolve() };
    },
    close: () => Promise.resolve(),
  } as unknown as KVStore;
  return {
    store,
    up() {
      options!.onState?.("connected");
      options!.onEvents([{
        kind: "reset",
        revision: 1,
        entries: [...entries].map(([key, value]) => ({ key, value, revision: 1 })),
      }]);
    },
  };
}

Deno.test("store down at start: the cached snapshot serves, then the store takes over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-kvcache-" });
  try {
    const cache = new KVSnapshotCache(`${dir}/sub/kv-etcd.json`);
    // A good run writes the cache.
    const store = new MemoryKVStore();
    await seed(store, "http://10.0.0.1");
    const first = new KVProvider({ name: "etcd", store, cache });
    await first.start(new Recorder());
    await first.stop();
    await store.close();
    const info = await Deno.stat(cache.path);
    assert.equal(info.mode! & 0o777, 0o600);

    const later = new Map([
      ["traefik/http/routers/app/rule", "PathPrefix(`/`)"],
      ["traefik/http/routers/app/service", "app"],
      ["traefik/http/services/app/loadbalancer/servers/0/url", "http://10.0.0.2"],
    ]);
    const scripted = scriptedStore(later);
    const logs: string[] = [];
    const log = new Logger({ level: "DEBUG", format: "json", write: (l) => logs.push(l) });
    const provider = new KVProvider({
      name: "etcd",
      store: scripted.store,
      cache,
      log,
      coalesceMs: 5,
    });
    const rec = new Recorder();
    await provider.start(rec);
    assert.equal(rec.errors.length, 0);
    assert.equal(rec.configs.length, 1);
    const lb = (c: DynamicConfig) =>
      (c.http.services.app as { loadBalancer: { servers: { url: string }[] } }).loadBalancer;
    assert.equal(lb(rec.configs[0]).servers[0].url, "http://10.0.0.1");
    const down = provider.connectionState();
    assert.equal(down.state, "disconnected");
    assert.equal(down.lastError, "connection refused");
    assert.ok(logs.some((l) => l.includes("serving the cached configuration")));

    scripted.up();
    await waitFor("the store's snapshot", () => rec.configs.length === 2);
    assert.equal(lb(rec.configs[1]).servers[0].url, "http://10.0.0.2");
    assert.equal(provider.connectionState().state, "connected");
    await provider.stop();
    await cache.settled();
    const saved = await cache.load("traefik");
    assert.equal(
      saved?.entries.get("traefik/http/services/app/loadbalancer/servers/0/url"),
      "http://10.0.0.2",
    );
    assert.equal(
      await cache.load("other-root"),
      undefined,
      "a cache for another root key is ignored",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store down at start without a cache: an error, then the store's snapshot", async () => {
  const scripted = scriptedStore(
    new Map([["traefik/http/routers/app/rule", "Path(`/`)"], [
      "traefik/http/routers/app/service",
      "noop@internal",
    ]]),
  );
  const provider = new KVProvider({ name: "consul", store: scripted.store, coalesceMs: 5 });
  const rec = new Recorder();
  await provider.start(rec);
  assert.equal(rec.configs.length, 0);
  assert.equal(rec.errors.length, 1);
  assert.match(rec.errors[0].message, /^consul: the store is unreachable: connection refused/);
  scripted.up();
  await waitFor("snapshot", () => rec.configs.length === 1);
  await provider.stop();
});

Deno.test("a corrupt cache file is ignored with a warning", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-kvcache-" });
  try {
    await Deno.writeTextFile(`${dir}/kv-etcd.json`, "{not json");
    const cache = new KVSnapshotCache(`${dir}/kv-etcd.json`);
    await assert.rejects(() => cache.load("traefik"), /not valid JSON/);
    const logs: string[] = [];
    const log = new Logger({ level: "DEBUG", format: "json", write: (l) => logs.push(l) });
    const provider = new KVProvider({
      name: "etcd",
      store: scriptedStore(new Map()).store,
      cache,
      log,
    });
    const rec = new Recorder();
    await provider.start(rec);
    assert.equal(rec.errors.length, 1);
    assert.ok(logs.some((l) => l.includes("ignoring the KV cache file")));
    await provider.stop();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a static config with KV providers gets one provider per store, sharing the first", async () => {
  const { openKvStores } = await import("../lib/server/kv_setup.ts");
  const silent = new Logger({ level: "ERROR", format: "json", write: () => {} });
  assert.equal(await openKvStores(parseStaticForTest(""), silent), undefined);
  const config = parseStaticForTest(`
[providers.redis]
endpoints = ["127.0.0.1:2"]
[providers.etcd]
endpoints = ["127.0.0.1:1"]
rootKey = "edge"
`);
  const ext = await openKvStores(config, silent);
  assert.ok(ext);
  try {
    assert.deepEqual(ext.providers.map((p) => p.name), ["etcd", "redis"]);
    assert.equal(ext.rootKey, "edge");
    assert.equal(ext.store.kind, "etcd");
    assert.deepEqual(ext.providers.map((p) => p.rootKey), ["edge", "traefik"]);
    assert.equal(ext.providers[0].connectionState().state, "disconnected");
  } finally {
    await ext.stop!();
  }
});
