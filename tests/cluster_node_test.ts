/**
 * Loopback integration test of the cluster I/O shell: three nodes on real
 * HTTP, a shared in-memory KV store, short timeouts. Kept brief; the chaos
 * test with real processes lives elsewhere.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ClusterConfigError, ClusterNode, type ClusterNodeOptions } from "../lib/cluster/node.ts";
import { FencedOutError, fencedWrite, readLeader } from "../lib/cluster/fencing.ts";
import { MemoryKVBackend, MemoryKVStore } from "../lib/kv/memory.ts";

const SECRET = "integration-test-secret-0123456789";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function until(what: string, check: () => boolean, ms = 4000): Promise<number> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - start;
}

Deno.test("config without a KV store for several nodes is refused", async () => {
  await assert.rejects(
    ClusterNode.start({
      nodeId: "a",
      address: "127.0.0.1:1",
      peers: ["127.0.0.1:2"],
      secret: SECRET,
      dataDir: "/nonexistent",
      heartbeatIntervalMs: 50,
      electionTimeoutMs: 300,
    }),
    (e: unknown) => e instanceof ClusterConfigError && /KV store/.test(e.message),
  );
  await assert.rejects(
    ClusterNode.start({
      nodeId: "a",
      address: "localhost",
      peers: [],
      secret: SECRET,
      dataDir: "/nonexistent",
      heartbeatIntervalMs: 50,
      electionTimeoutMs: 300,
    }),
    (e: unknown) => e instanceof ClusterConfigError && /address/.test(e.message),
  );
});

Deno.test({
  name: "three nodes on loopback: elect, fence, refuse forgeries, hand over",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const backend = new MemoryKVBackend();
    const addresses = [freePort(), freePort(), freePort()].map((p) => `127.0.0.1:${p}`);
    const dirs = await Promise.all(
      addresses.map(() => Deno.makeTempDir({ prefix: "portico_node_" })),
    );
    const logs: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const events: string[] = [];
    const nodes: ClusterNode[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const options: ClusterNodeOptions = {
          nodeId: `n${i + 1}`,
          address: addresses[i],
          peers: addresses.filter((_, j) => j !== i),
          secret: SECRET,
          dataDir: dirs[i],
          heartbeatIntervalMs: 30,
          electionTimeoutMs: 300,
          kv: new MemoryKVStore({ backend }),
          logger: (level, msg, fields) => logs.push({ level, msg, fields }),
        };
        const node = await ClusterNode.start(options);
        node.on("becameManager", (e) => events.push(`n${i + 1}+${e.term}`));
        node.on("lostManager", (e) => events.push(`n${i + 1}-${e.term}`));
        nodes.push(node);
      }
      const managers = () => nodes.filter((n) => n.isManager);
      await until("a manager", () => managers().length === 1);
      const first = managers()[0];
      const record = first.leaderRecord!;
      const kv = new MemoryKVStore({ backend });
      assert.deepEqual(await readLeader(kv, "traefik"), record);

      // workers learn who the manager is from heartbeats
      await until(
        "workers to see the manager",
        () => nodes.every((n) => n.status().manager?.nodeId === record.nodeId),
      );
      const s = first.status();
      assert.equal(s.role, "manager");
      assert.equal(s.peers.length, 2);
      await until("peers reachable", () => first.status().peers.every((p) => p.reachable));
      assert.ok(nodes.filter((n) => n !== first).every((n) => n.status().role === "worker"));
      assert.ok(logs.some((l) => /cluster role/.test(l.msg) && l.fields.term === record.term));

      // forged and unauthenticated messages are refused and counted
      const target = addresses[nodes.indexOf(first)];
      const body = JSON.stringify({ type: "vote", term: 999, from: addresses[0], to: target });
      const plain = await fetch(`http://${target}/cluster/v1/vote`, { method: "POST", body });
      assert.equal(plain.status, 401);
      await plain.body?.cancel();
      const forged = await fetch(`http://${target}/cluster/v1/vote`, {
        method: "POST",
        body,
        headers: {
          "x-portico-timestamp": String(Date.now()),
          "x-portico-nonce": "AAAAAAAAAAAAAAAAAAAAAA",
          "x-portico-signature": "0".repeat(64),
        },
      });
      assert.equal(forged.status, 401);
      await forged.body?.cancel();
      assert.equal(first.counters.rejected.unauthenticated, 1);
      assert.equal(first.counters.rejected.forged, 1);
      assert.equal(first.status().term, record.term, "forgeries change nothing");
      assert.ok(logs.every((l) => !JSON.stringify(l).includes(SECRET)), "secret never logged");

      // graceful handover
      const handoverStart = performance.now();
      await first.stop();
      const rest = nodes.filter((n) => n !== first);
      await until("a new manager", () => rest.some((n) => n.isManager), 2000);
      const took = performance.now() - handoverStart;
      assert.ok(took < 1000, `handover took ${took}ms`);
      const second = rest.find((n) => n.isManager)!;
      assert.ok(second.leaderRecord!.term > record.term);
      assert.ok(events.includes(`${record.nodeId}-${record.term}`));

      // the old manager's fencing token no longer works
      await assert.rejects(
        fencedWrite(kv, "traefik", record, [{ kind: "put", key: "traefik/acme/x", value: "old" }]),
        FencedOutError,
      );
      await fencedWrite(kv, "traefik", second.leaderRecord!, [
        { kind: "put", key: "traefik/acme/x", value: "new" },
      ]);
    } finally {
      await Promise.all(nodes.map((n) => n.stop({ handover: false })));
      await Promise.all(dirs.map((d) => Deno.remove(d, { recursive: true })));
    }
  },
});

Deno.test({
  name: "a lone node is its own manager without a KV store",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portico_node_" });
    const node = await ClusterNode.start({
      nodeId: "solo",
      address: "127.0.0.1:1",
      peers: [],
      secret: SECRET,
      dataDir: dir,
      heartbeatIntervalMs: 30,
      electionTimeoutMs: 300,
    });
    try {
      await until("manager", () => node.isManager, 1000);
      assert.equal(node.status().role, "manager");
      assert.equal(node.leaderRecord?.nodeId, "solo");
    } finally {
      await node.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
