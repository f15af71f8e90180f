/**
 * The cluster extension inside real instances: `/api/cluster` and
 * `/api/cluster/leader` on the API entrypoint, the standalone manager, three
 * in-process instances sharing a real etcd through the KV extension (role
 * events, fenced writes, SIGTERM-style handover), config errors that name
 * the setting, and the TCP proxy fixture the chaos test relies on.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startTestProxy, type TestProxy } from "./fixtures/proxy.ts";
import { startEtcd } from "./fixtures/etcd.ts";
import { freePort } from "./fixtures/ports.ts";
import { startTcpProxy } from "./fixtures/tcp_proxy.ts";
import {
  type ClusterMember,
  type ClusterMemberOptions,
  normalizePeer,
  type RoleEvent,
  startClusterMember,
} from "../lib/cluster/member.ts";
import { ClusterConfigError } from "../lib/cluster/node.ts";
import { FencedOutError, readLeader } from "../lib/cluster/fencing.ts";
import { MemoryKVStore } from "../lib/kv/memory.ts";
import type { ClusterConfig } from "../lib/config/types.ts";

const SECRET = "integration-cluster-secret-0123456789";
const quietCluster: ClusterMemberOptions["log"] = () => {};

async function until<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  ms = 8000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

Deno.test({
  name: "standalone: no [cluster] means its own manager, served above the general api router",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const proxy = await startTestProxy({
      dynamic: "",
      entryPoints: ["web", "traefik"],
      extraStatic: "[api]\ninsecure = true\n",
    });
    try {
      const base = proxy.url("traefik");
      const cluster = await getJson(`${base}/api/cluster`);
      assert.equal(cluster.status, 200);
      assert.equal(cluster.body.role, "manager");
      assert.equal(cluster.body.term, 0);
      assert.equal(cluster.body.clustered, false);
      assert.deepEqual(cluster.body.peers, []);
      const leader = await getJson(`${base}/api/cluster/leader`);
      assert.equal(leader.status, 200);
      assert.equal(leader.body.manager, true);
      // The general api router still answers the rest of /api.
      assert.equal((await getJson(`${base}/api/version`)).status, 200);
      assert.equal((await getJson(`${base}/api/cluster/nope`)).status, 404);
      // No test hook without PORTICO_TEST_HOOKS.
      const hook = await fetch(`${base}/api/cluster/test/fenced-write`, { method: "POST" });
      await hook.body?.cancel();
      assert.equal(hook.status, 404);
      // The view for metrics and the typed interface for ACME.
      const view = proxy.server.state.views.cluster!();
      assert.equal(view.elections, 0);
      assert.equal(view.roleChanges.length, 1);
      const ext = proxy.server.cluster;
      assert.equal(ext.isManager(), true);
      const late = await new Promise<RoleEvent>((resolve) => ext.on("becameManager", resolve));
      assert.equal(late.term, 0);
      await assert.rejects(ext.fencedWrite([{ kind: "put", key: "k", value: "v" }]), /no KV store/);
    } finally {
      await proxy.close();
    }
  },
});

Deno.test({
  name: "api.insecure off: no cluster router on the traefik entrypoint",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const proxy = await startTestProxy({ dynamic: "", entryPoints: ["web", "traefik"] });
    try {
      const res = await fetch(`${proxy.url("traefik")}/api/cluster`);
      await res.body?.cancel();
      assert.equal(res.status, 404);
      assert.ok(proxy.server.state.views.cluster !== undefined, "the view exists for metrics regardless");
    } finally {
      await proxy.close();
    }
  },
});

Deno.test({
  name: "a lone [cluster] node without peers elects itself and needs no KV store",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const proxy = await startTestProxy({
      dynamic: "",
      entryPoints: ["web", "traefik"],
      extraStatic:
        `[api]\ninsecure = true\n[cluster]\nnodeId = "solo"\naddress = "127.0.0.1:${freePort()}"\n` +
        `secret = "${SECRET}"\ndataDir = "${dir}"\n`,
    });
    try {
      const body = await until("solo manager", async () => {
        const r = await getJson(`${proxy.url("traefik")}/api/cluster/leader`);
        return r.status === 200 ? r.body : undefined;
      });
      assert.equal((body.record as { nodeId: string }).nodeId, "solo");
      const view = (await getJson(`${proxy.url("traefik")}/api/cluster`)).body;
      assert.equal(view.id, "solo");
      assert.equal(view.role, "manager");
      assert.ok((view.term as number) >= 1);
      assert.equal(
        (view.roleChanges as unknown[]).at(-1) &&
          (view.roleChanges as { role: string }[]).at(-1)!.role,
        "manager",
      );
    } finally {
      await proxy.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "three instances on one etcd: one manager, 200/429, fenced writes, role events, handover on shutdown",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const etcd = await startEtcd();
    const dir = await Deno.makeTempDir();
    const addresses = [0, 1, 2].map(() => `127.0.0.1:${freePort()}`);
    const proxies: TestProxy[] = [];
    const closed = new Set<number>();
    try {
      for (let i = 0; i < 3; i++) {
        proxies.push(
          await startTestProxy({
            dynamic: "",
            entryPoints: ["web", "traefik"],
            extraStatic: `[api]\ninsecure = true\n` +
              `[providers.etcd]\nendpoints = ["${etcd.endpoint}"]\nrootKey = "itest"\n` +
              `[cluster]\nnodeId = "i${i}"\naddress = "${addresses[i]}"\n` +
              `peers = [${addresses.filter((_, j) => j !== i).map((a) => `"${a}"`).join(", ")}]\n` +
              `secret = "${SECRET}"\ndataDir = "${dir}/i${i}"\nheartbeatInterval = "50ms"\nelectionTimeout = "300ms"\n`,
          }),
        );
      }
      const exts: ClusterMember[] = proxies.map((p) => p.server.cluster);
      const events: string[] = [];
      exts.forEach((e, i) => {
        e.on("becameManager", (ev) => events.push(`i${i} became ${ev.term}`));
        e.on("lostManager", (ev) => events.push(`i${i} lost ${ev.term}`));
      });
      const statuses = async () =>
        await Promise.all(
          proxies.map(async (p, i) =>
            closed.has(i)
              ? 0
              : (await fetch(`${p.url("traefik")}/api/cluster/leader`).then(async (r) => {
                await r.body?.cancel();
                return r.status;
              }))
          ),
        );
      const first = await until("one manager", async () => {
        const s = await statuses();
        return s.filter((c) => c === 200).length === 1 && s.filter((c) => c === 429).length === 2
          ? s.indexOf(200)
          : undefined;
      });
      const record = (await readLeader(
        proxies[0].server.kv!.store,
        "itest",
      ))!;
      assert.equal(record.nodeId, `i${first}`);
      assert.deepEqual(exts.map((e) => e.isManager()), [0, 1, 2].map((i) => i === first));
      assert.ok(events.includes(`i${first} became ${record.term}`), events.join());

      // Every node reports the manager and its peers.
      // Workers learn the manager's name from its next heartbeat.
      const views = await until("every node names the manager", async () => {
        const vs = await Promise.all(
          proxies.map(async (p) => (await getJson(`${p.url("traefik")}/api/cluster`)).body),
        );
        return vs.every((v) => (v.manager as { nodeId: string } | null)?.nodeId === `i${first}`)
          ? vs
          : undefined;
      });
      for (const v of views) {
        assert.equal((v.manager as { nodeId: string }).nodeId, `i${first}`);
        assert.equal((v.peers as unknown[]).length, 2);
        assert.ok(Array.isArray(v.roleChanges));
      }
      await until("peers marked reachable", async () => {
        const v = (await getJson(`${proxies[first].url("traefik")}/api/cluster`)).body;
        return (v.peers as { reachable: boolean }[]).every((p) => p.reachable) || undefined;
      });

      // Only the manager may write; a worker is refused before the store.
      await exts[first].fencedWrite([{ kind: "put", key: "itest/acme/probe", value: "1" }]);
      const worker = (first + 1) % 3;
      await assert.rejects(
        exts[worker].fencedWrite([{ kind: "put", key: "itest/acme/probe", value: "2" }]),
        /not the manager/,
      );

      // Planned shutdown of the manager: a successor well within one election timeout of quiet.
      const t0 = performance.now();
      const shutdown = proxies[first].close();
      closed.add(first);
      const second = await until("successor", async () => {
        const s = await statuses();
        const i = s.findIndex((c, j) => c === 200 && j !== first);
        return i >= 0 ? i : undefined;
      }, 5000);
      const handoverMs = performance.now() - t0;
      await shutdown;
      assert.ok(handoverMs < 1000, `handover took ${Math.round(handoverMs)} ms`);
      assert.ok(events.includes(`i${first} lost ${record.term}`) || !exts[first].isManager());
      await exts[second].fencedWrite([{ kind: "put", key: "itest/acme/probe", value: "3" }]);
      const view = exts[second].view();
      assert.ok(view.term > record.term);
      assert.ok(view.roleChanges.some((c) => c.role === "manager" && c.term === view.term));
    } finally {
      for (const [i, p] of proxies.entries()) if (!closed.has(i)) await p.close().catch(() => {});
      await etcd.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "startClusterMember with an injected store: fencing refuses a deposed record",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const store = new MemoryKVStore();
    const dir = await Deno.makeTempDir();
    const ext = await startClusterMember({
      config: {
        nodeId: "a",
        address: `127.0.0.1:${freePort()}`,
        peers: [],
        secret: SECRET,
        dataDir: dir,
        heartbeatInterval: 20,
        electionTimeout: 100,
      },
      store,
      rootKey: "inj",
      log: quietCluster,
      env: () => undefined,
    });
    try {
      await until("manager", () => ext.isManager() || undefined);
      await ext.fencedWrite([{ kind: "put", key: "inj/x", value: "1" }]);
      assert.equal((await store.get("inj/x"))?.value, "1");
      // Someone with a higher term takes the record: the next write is fenced out.
      const ours = ext.leaderRecord()!;
      await store.put(
        "inj/cluster/leader",
        JSON.stringify({ nodeId: "b", term: ours.term + 1, since: "" }),
      );
      await assert.rejects(
        ext.fencedWrite([{ kind: "put", key: "inj/x", value: "2" }]),
        FencedOutError,
      );
      assert.equal((await store.get("inj/x"))?.value, "1");
    } finally {
      await ext.stop?.();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("config errors name the [cluster] setting", async () => {
  const base: ClusterConfig = {
    nodeId: "a",
    address: "127.0.0.1:1",
    peers: ["127.0.0.1:2"],
    dataDir: "/nonexistent",
    heartbeatInterval: 50,
    electionTimeout: 300,
  };
  const cases: {
    name: string;
    config: ClusterConfig;
    env?: Record<string, string>;
    error: RegExp;
  }[] = [
    {
      name: "no secret anywhere",
      config: base,
      error: /\[cluster\] secret: set secret, secretFile or PORTICO_CLUSTER_SECRET/,
    },
    {
      name: "unreadable secretFile",
      config: { ...base, secretFile: "/nonexistent/secret" },
      error: /\[cluster\] secretFile: cannot read "\/nonexistent\/secret"/,
    },
    {
      name: "address without host",
      config: { ...base, address: ":9000", secret: SECRET },
      error: /\[cluster\] address: ":9000" has no host/,
    },
    {
      name: "https peer",
      config: { ...base, secret: SECRET, peers: ["https://x:1"] },
      error: /\[cluster\] peers\[0\]: "https:\/\/x:1"/,
    },
    {
      name: "peers but no store (env secret is used)",
      config: base,
      env: { PORTICO_CLUSTER_SECRET: SECRET },
      error: /\[cluster\] peers: .*KV store/,
    },
    {
      name: "short secret",
      config: { ...base, peers: [], secret: "short" },
      error: /at least 16 bytes/,
    },
  ];
  for (const c of cases) {
    await assert.rejects(
      startClusterMember({ config: c.config, log: quietCluster, env: (n) => c.env?.[n] }),
      (e: Error) => {
        assert.match(e.message, c.error, c.name);
        assert.doesNotMatch(e.message, new RegExp(SECRET), `${c.name}: secret leaked`);
        return true;
      },
      c.name,
    );
  }
  assert.equal(normalizePeer("peers[0]", "http://10.0.0.3:9000/"), "10.0.0.3:9000");
  assert.ok(new ClusterConfigError("x", "y") instanceof Error);
});

Deno.test({
  name: "tcp proxy: a blackhole holds bytes both ways without closing; heal delivers them",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const serving = (async () => {
      for await (const conn of echo) {
        (async () => {
          const buf = new Uint8Array(1024);
          for (;;) {
            const n = await conn.read(buf).catch(() => null);
            if (n === null) break;
            await conn.write(buf.subarray(0, n)).catch(() => {});
          }
          conn.close();
        })();
      }
    })();
    const proxy = await startTcpProxy({ target: `127.0.0.1:${(echo.addr as Deno.NetAddr).port}` });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    const read = async (ms: number) => {
      const buf = new Uint8Array(1024);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        conn.read(buf).then((
          n,
        ) => (n === null ? "EOF" : new TextDecoder().decode(buf.subarray(0, n)))),
        new Promise<string>((res) => (timer = setTimeout(() => res("timeout"), ms))),
      ]);
      clearTimeout(timer);
      return r;
    };
    try {
      await conn.write(new TextEncoder().encode("one"));
      assert.equal(await read(2000), "one");
      proxy.blackhole();
      await conn.write(new TextEncoder().encode("two"));
      const pending = read(3000);
      const early = await Promise.race([
        pending,
        new Promise((r) => setTimeout(() => r("held"), 300)),
      ]);
      assert.equal(early, "held", "bytes must not pass a blackholed link");
      // A new connection is accepted but goes nowhere either.
      const other = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
      await other.write(new TextEncoder().encode("x"));
      proxy.heal();
      assert.equal(await pending, "two");
      other.close();
      assert.equal(proxy.accepted, 2);
    } finally {
      conn.close();
      await proxy.close();
      echo.close();
      await serving.catch(() => {});
    }
  },
});
