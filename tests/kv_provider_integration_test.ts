/**
 * The KV provider end to end, against a real etcd, a real Redis and the
 * Consul contract server, each started on free ports:
 *
 * - `storeconfig` uploads a config; two Portico instances serve it; one key
 *   changed with the store's API reaches both; a bad value is rejected with
 *   the key named while the last good config keeps serving.
 * - The KV server restarts while a client sends requests: none fails, and a
 *   change made after the restart is seen.
 * - The store is unreachable at start: the cached snapshot is served.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseArgs } from "../lib/cli/args.ts";
import { runStoreConfig } from "../lib/cli/storeconfig.ts";
import { loadStaticFile } from "../lib/config/load.ts";
import { ConsulKVStore } from "../lib/kv/consul.ts";
import { EtcdKVStore } from "../lib/kv/etcd.ts";
import { RedisKVStore } from "../lib/kv/redis.ts";
import type { KVStore } from "../lib/kv/types.ts";
import { Logger } from "../lib/log/logger.ts";
import type { KVProvider } from "../lib/providers/kv.ts";
import { type RunningServer, startServer } from "../lib/server/server.ts";
import { type EchoBackend, startEchoBackend } from "./fixtures/backend.ts";
import { startConsulServer } from "./fixtures/consul_server.ts";
import { startEtcd } from "./fixtures/etcd.ts";
import { freePort } from "./fixtures/ports.ts";
import { startRedis } from "./fixtures/redis.ts";

type Kind = "etcd" | "redis" | "consul";

interface KVServer {
  endpoint: string;
  /** Restarts the server with its data (Redis is told to SAVE first: the fixture runs without persistence). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const SERVERS: Record<Kind, () => Promise<KVServer>> = {
  etcd: async () => {
    const s = await startEtcd();
    return { endpoint: s.endpoint, restart: () => s.restart(), stop: () => s.stop() };
  },
  redis: async () => {
    const s = await startRedis();
    return {
      endpoint: s.endpoint,
      restart: async () => {
        const save = await new Deno.Command("redis-cli", { args: ["-p", String(s.port), "SAVE"] })
          .output();
        assert.equal(new TextDecoder().decode(save.stdout).trim(), "OK");
        await s.restart();
      },
      stop: () => s.stop(),
    };
  },
  consul: async () => {
    const s = await startConsulServer();
    return { endpoint: s.endpoint, restart: () => s.restart(), stop: () => s.stop() };
  },
};

function openStore(kind: Kind, endpoint: string): KVStore {
  switch (kind) {
    case "etcd":
      return new EtcdKVStore({ endpoints: [endpoint] });
    case "redis":
      return new RedisKVStore({ endpoints: [endpoint] });
    case "consul":
      return new ConsulKVStore({ endpoints: [endpoint] });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 8000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(10);
  }
}

interface Instance {
  server: RunningServer;
  url: string;
  logs: string[];
  provider: KVProvider;
  close(): Promise<void>;
}

/** A Portico instance whose static config has `[providers.<kind>]` and one entrypoint; its cache goes in `dir`. */
async function startInstance(dir: string, kind: Kind, endpoint: string): Promise<Instance> {
  await Deno.mkdir(dir, { recursive: true });
  const file = `${dir}/portico.toml`;
  await Deno.writeTextFile(
    file,
    `[entryPoints.web]\naddress = "127.0.0.1:${freePort()}"\n[providers.${kind}]\nendpoints = ["${endpoint}"]\n`,
  );
  const logs: string[] = [];
  const logger = new Logger({ level: "DEBUG", format: "json", write: (l) => logs.push(l) });
  const server = await startServer(await loadStaticFile(file), { logger, throttleMs: 20 });
  const provider = server.kv!.providers[0];
  return {
    server,
    url: `http://127.0.0.1:${server.ports.get("web")}`,
    logs,
    provider,
    close: () => server.shutdown(),
  };
}

/** Which backend answered `path`, or the status when it was not 200. */
async function who(url: string, path: string): Promise<string> {
  const res = await fetch(url + path);
  if (res.status !== 200) {
    await res.body?.cancel();
    return `status ${res.status}`;
  }
  return (await res.json()).backend;
}

/** Uploads a router `/app` → service `app` → `backend` with `storeconfig`. */
async function storeConfig(
  dir: string,
  kind: Kind,
  endpoint: string,
  backend: EchoBackend,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/dynamic.toml`,
    `[http.routers.app]\nrule = "PathPrefix(\`/app\`)"\nservice = "app"\n` +
      `[http.services.app.loadBalancer]\n[[http.services.app.loadBalancer.servers]]\nurl = "${backend.url}"\n`,
  );
  await Deno.writeTextFile(
    `${dir}/portico.toml`,
    `[providers.file]\nfilename = "${dir}/dynamic.toml"\n[providers.${kind}]\nendpoints = ["${endpoint}"]\n`,
  );
  const lines: string[] = [];
  const code = await runStoreConfig(
    parseArgs(["storeconfig", `--configFile=${dir}/portico.toml`]),
    {
      out: (l) => lines.push(l),
      err: (l) => lines.push(l),
    },
  );
  assert.equal(code, 0, lines.join("\n"));
  return lines.join("\n");
}

const SERVER_KEY = "traefik/http/services/app/loadbalancer/servers/0/url";

for (const kind of ["etcd", "redis", "consul"] as const) {
  Deno.test({
    name:
      `${kind}: storeconfig, two instances serve it, a key change reaches both, a bad value is rejected`,
    // etcd3 leaves a reconnect timer behind after a watch ends (see kv_etcd_test.ts).
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    const kv = await SERVERS[kind]();
    const a = startEchoBackend("A");
    const b = startEchoBackend("B");
    const dir = await Deno.makeTempDir({ prefix: `portico-kv-${kind}-` });
    const store = openStore(kind, kv.endpoint);
    const instances: Instance[] = [];
    try {
      const report = await storeConfig(`${dir}/upload`, kind, kv.endpoint, a);
      assert.match(report, /3 added, 0 changed, 0 removed/);
      for (const n of [1, 2]) {
        instances.push(await startInstance(`${dir}/i${n}`, kind, kv.endpoint));
      }
      for (const i of instances) {
        assert.equal(await who(i.url, "/app"), "A");
        assert.equal(i.provider.connectionState().state, "connected");
      }

      await store.put(SERVER_KEY, b.url);
      for (const i of instances) {
        await waitFor("the new server", async () => (await who(i.url, "/app")) === "B");
      }

      await store.put("traefik/http/services/app/loadbalancer/servers/0/weight", "abc");
      for (const i of instances) {
        await waitFor("the rejection", () => i.server.watcher.providerErrors.has(kind));
        assert.match(
          i.server.watcher.providerErrors.get(kind)!,
          new RegExp(
            `^${kind}: traefik/http/services/app/loadbalancer/servers/0/weight: expected an integer`,
          ),
        );
        assert.equal(await who(i.url, "/app"), "B", "the last good config keeps serving");
      }
      await store.delete("traefik/http/services/app/loadbalancer/servers/0/weight");
      for (const i of instances) {
        await waitFor("recovery", () => !i.server.watcher.providerErrors.has(kind));
      }
    } finally {
      for (const i of instances) await i.close();
      await store.close();
      await a.close();
      await b.close();
      await kv.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test({
    name: `${kind}: the store restarts under load: no request fails, a later change is seen`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    const kv = await SERVERS[kind]();
    const a = startEchoBackend("A");
    const dir = await Deno.makeTempDir({ prefix: `portico-kv-${kind}-` });
    let instance: Instance | undefined;
    let store: KVStore | undefined;
    try {
      await storeConfig(`${dir}/upload`, kind, kv.endpoint, a);
      instance = await startInstance(`${dir}/i1`, kind, kv.endpoint);
      const url = instance.url;
      let running = true;
      let sent = 0;
      const failures: string[] = [];
      const states = new Set<string>();
      const client = (async () => {
        // Bounded: stops when told, or after 30 s at the latest.
        const deadline = Date.now() + 30_000;
        while (running && Date.now() < deadline) {
          sent++;
          try {
            const got = await who(url, "/app");
            if (got !== "A") failures.push(got);
          } catch (error) {
            failures.push((error as Error).message);
          }
          states.add(instance!.provider.connectionState().state);
          await sleep(2);
        }
      })();
      await sleep(200);
      const restartedAt = Date.now();
      await kv.restart();
      store = openStore(kind, kv.endpoint);
      await store.put("traefik/http/routers/late/rule", "PathPrefix(`/late`)");
      await store.put("traefik/http/routers/late/service", "app");
      await waitFor(
        "the change after the restart",
        async () => (await who(url, "/late")) === "A",
        15_000,
      );
      const now = instance.provider.connectionState();
      assert.equal(now.state, "connected");
      assert.ok(now.since.getTime() >= restartedAt, "the state changed during the restart");
      running = false;
      await client;
      assert.deepEqual(failures, [], `failed requests out of ${sent}`);
      assert.ok(sent > 20, `only ${sent} requests were sent`);
      assert.ok(states.has("disconnected"), "the lost connection was reported");
      assert.ok(instance.logs.some((l) => l.includes("connection lost")));
      assert.ok(instance.logs.some((l) => l.includes("connection restored")));
    } finally {
      await instance?.close();
      await store?.close();
      await a.close();
      await kv.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test({
    name: `${kind}: the store is unreachable at start: the cached config is served`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    const kv = await SERVERS[kind]();
    const a = startEchoBackend("A");
    const dir = await Deno.makeTempDir({ prefix: `portico-kv-${kind}-` });
    try {
      await storeConfig(`${dir}/upload`, kind, kv.endpoint, a);
      const first = await startInstance(`${dir}/node`, kind, kv.endpoint);
      assert.equal(await who(first.url, "/app"), "A");
      await first.close();
      const cacheFile = `${dir}/node/.portico-cache/kv-${kind}.json`;
      assert.equal((await Deno.stat(cacheFile)).mode! & 0o777, 0o600);
      await kv.stop();

      // Same directory (same cache), the store now gone.
      const dead = kind === "redis" ? `127.0.0.1:${freePort()}` : `http://127.0.0.1:${freePort()}`;
      const second = await startInstance(`${dir}/node`, kind, dead);
      try {
        assert.equal(await who(second.url, "/app"), "A");
        assert.equal(second.provider.connectionState().state, "disconnected");
        assert.ok(second.logs.some((l) => l.includes("serving the cached configuration")));
      } finally {
        await second.close();
      }
    } finally {
      await a.close();
      await kv.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  });
}

for (const kind of ["etcd", "redis", "consul"] as const) {
  Deno.test({
    name: `${kind}: a 500-key storeconfig upload applies as one reload`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    const kv = await SERVERS[kind]();
    const a = startEchoBackend("A");
    const dir = await Deno.makeTempDir({ prefix: `portico-kv-${kind}-` });
    let instance: Instance | undefined;
    try {
      instance = await startInstance(`${dir}/i1`, kind, kv.endpoint);
      const before = instance.server.watcher.reloads.success;
      let toml =
        `[http.services.app.loadBalancer]\n[[http.services.app.loadBalancer.servers]]\nurl = "${a.url}"\n`;
      // The service's key, 165 routers of 3 keys and 2 of 2 keys: 500.
      for (let i = 0; i < 165; i++) {
        toml +=
          `[http.routers.r${i}]\nrule = "Path(\`/r${i}\`)"\nservice = "app"\nentryPoints = ["web"]\n`;
      }
      toml += `[http.routers.first]\nrule = "Path(\`/first\`)"\nservice = "app"\n`;
      toml += `[http.routers.last]\nrule = "Path(\`/last\`)"\nservice = "app"\n`;
      await Deno.mkdir(`${dir}/upload`);
      await Deno.writeTextFile(`${dir}/upload/dynamic.toml`, toml);
      await Deno.writeTextFile(
        `${dir}/upload/portico.toml`,
        `[providers.file]\nfilename = "${dir}/upload/dynamic.toml"\n[providers.${kind}]\nendpoints = ["${kv.endpoint}"]\n`,
      );
      const lines: string[] = [];
      const code = await runStoreConfig(
        parseArgs(["storeconfig", `--configFile=${dir}/upload/portico.toml`]),
        {
          out: (l) => lines.push(l),
          err: (l) => lines.push(l),
        },
      );
      assert.equal(code, 0, lines.join("\n"));
      assert.match(lines[0], /500 added/);
      const url = instance.url;
      await waitFor("the upload to be served", async () => (await who(url, "/last")) === "A");
      await sleep(300);
      assert.equal(
        instance.server.watcher.reloads.success - before,
        1,
        "one reload for the whole upload",
      );
      assert.equal(instance.server.watcher.reloads.failure, 0);
      assert.equal(await who(url, "/r100"), "A");
    } finally {
      await instance?.close();
      await a.close();
      await kv.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test({
  name: "redis: an entrypoint middleware named without @provider resolves in the KV router's own provider",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const kv = await SERVERS.redis();
  const backend = startEchoBackend("A");
  const dir = await Deno.makeTempDir({ prefix: "portico-kv-epmw-" });
  const store = openStore("redis", kv.endpoint);
  let server: RunningServer | undefined;
  try {
    const keys: Record<string, string> = {
      "traefik/http/routers/app/rule": "PathPrefix(`/app`)",
      "traefik/http/routers/app/service": "app",
      "traefik/http/services/app/loadbalancer/servers/0/url": backend.url,
      "traefik/http/middlewares/tag/headers/customresponseheaders/X-Tag": "from-redis",
    };
    for (const [k, v] of Object.entries(keys)) await store.put(k, v);
    const file = `${dir}/portico.toml`;
    await Deno.writeTextFile(
      file,
      `[entryPoints.web]\naddress = "127.0.0.1:${freePort()}"\n[entryPoints.web.http]\nmiddlewares = ["tag"]\n` +
        `[providers.redis]\nendpoints = ["${kv.endpoint}"]\n`,
    );
    server = await startServer(await loadStaticFile(file), {
      logger: new Logger({ level: "ERROR", format: "json", write: () => {} }),
      throttleMs: 20,
    });
    const url = `http://127.0.0.1:${server.ports.get("web")}/app`;
    await waitFor("the router", async () => {
      const res = await fetch(url);
      await res.body?.cancel();
      return res.status === 200;
    });
    const res = await fetch(url);
    await res.body?.cancel();
    assert.equal(res.headers.get("x-tag"), "from-redis");
    assert.equal(server.watcher.current.routers.get("app@redis")?.status, "enabled");
  } finally {
    await server?.shutdown();
    await store.close();
    await backend.close();
    await kv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
