/**
 * ACME in a cluster of three real Portico processes (`deno run mod.ts`)
 * with `[cluster]`, `[providers.etcd]` on a real etcd, and a real Pebble.
 *
 * - Routers for five domains are written to etcd once a manager is
 *   elected; Pebble's HTTP-01 validation goes (through a forwarder the test
 *   controls) to a worker, so the challenge is answered by a node that did
 *   not place the order.
 * - Orders are counted from Pebble's log: exactly one per domain.
 * - Each certificate is served, verified against Pebble's root with SNI,
 *   by all three nodes within 1 s of its KV key being written.
 * - Then the manager is killed (SIGKILL) while an order for a new domain
 *   waits on validation: the next manager completes it, with at most one
 *   extra order.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import { startEtcd } from "./fixtures/etcd.ts";
import { startPebble } from "./fixtures/pebble.ts";
import { freePort, waitForPort } from "./fixtures/ports.ts";
import { EtcdKVStore } from "../lib/kv/etcd.ts";
import { readLeader } from "../lib/cluster/fencing.ts";

const repoRoot = new URL("../", import.meta.url).pathname;
const ROOT = "traefik";
const SECRET = "acme-cluster-process-secret-0123456789";
const KEY = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
const DOMAINS = ["c0.test", "c1.test", "c2.test", "c3.test", "c4.test"];
const LATE = "late.test";

/**
 * A TCP forwarder for Pebble's validation port whose target can change, and
 * which can hold connections without answering (a validation that hangs).
 */
function startForwarder() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let target = 0;
  let holding = false;
  const held: Deno.Conn[] = [];
  const forwardedTo = new Map<number, number>();
  (async () => {
    for await (const conn of listener) {
      if (holding || !target) {
        held.push(conn);
        continue;
      }
      const port = target;
      forwardedTo.set(port, (forwardedTo.get(port) ?? 0) + 1);
      Deno.connect({ hostname: "127.0.0.1", port }).then((up) => {
        conn.readable.pipeTo(up.writable).catch(() => {});
        up.readable.pipeTo(conn.writable).catch(() => {});
      }, () => conn.close());
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    forwardedTo,
    retarget(port: number) {
      target = port;
    },
    hold() {
      holding = true;
    },
    /** Stops holding; held connections are closed (their validation fails at once). */
    release() {
      holding = false;
      for (const c of held.splice(0)) {
        try {
          c.close();
        } catch { /* gone */ }
      }
    },
    close() {
      this.release();
      listener.close();
    },
  };
}

interface Node {
  id: string;
  webPort: number;
  securePort: number;
  apiPort: number;
  child?: Deno.ChildProcess;
  exited?: Promise<unknown>;
  output: string;
}

function verifiedHandshake(port: number, name: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, servername: name, ca, rejectUnauthorized: true },
      () => {
        const san = (socket.getPeerCertificate() as { subjectaltname?: string }).subjectaltname ??
          "";
        socket.destroy();
        resolve(san);
      },
    );
    socket.setTimeout(2000, () => socket.destroy(new Error("handshake timeout")));
    socket.once("error", (e) => {
      socket.destroy();
      reject(e);
    });
  });
}

/** Polls until a verified handshake for `name` succeeds; resolves to the time (performance.now()). */
async function servedAt(port: number, name: string, ca: string, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const san = await verifiedHandshake(port, name, ca);
      if (san.includes(`DNS:${name}`)) return performance.now();
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`port ${port} did not serve ${name}: ${(last as Error)?.message}`);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

Deno.test({
  name:
    "ACME cluster, 3 real processes: one order per domain (Pebble's count), challenge answered by a worker, all nodes serve within 1 s, manager killed mid-order",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const etcd = await startEtcd();
    const forwarder = startForwarder();
    const pebble = await startPebble({ httpPort: forwarder.port });
    const dir = await Deno.makeTempDir({ prefix: "acme-cluster-proc-" });
    const kv = new EtcdKVStore({ endpoints: [etcd.endpoint] });
    await Deno.writeTextFile(`${dir}/pebble-ca.pem`, pebble.listenerCaPem);
    const nodes: Node[] = ["n1", "n2", "n3"].map((id) => ({
      id,
      webPort: freePort(),
      securePort: freePort(),
      apiPort: freePort(),
      output: "",
    }));
    const clusterPorts = nodes.map(() => freePort());
    const stored = new Map<string, number>();
    const watch = kv.watch(`${ROOT}/acme/le/certificates/`, {
      onEvents(events) {
        for (const e of events) {
          if (e.kind !== "put") continue;
          const main = e.key.split("/").pop()!;
          if (!stored.has(main)) stored.set(main, performance.now());
        }
      },
    });

    const start = async (i: number) => {
      const n = nodes[i];
      const config = `
[entryPoints.web]
address = "127.0.0.1:${n.webPort}"
[entryPoints.websecure]
address = "127.0.0.1:${n.securePort}"
[entryPoints.websecure.http.tls]
[entryPoints.traefik]
address = "127.0.0.1:${n.apiPort}"
[api]
insecure = true
[log]
format = "json"
level = "INFO"
[providers.etcd]
endpoints = ["${etcd.endpoint.replace(/^https?:\/\//, "")}"]
rootKey = "${ROOT}"
[cluster]
nodeId = "${n.id}"
address = "127.0.0.1:${clusterPorts[i]}"
peers = [${clusterPorts.filter((_, j) => j !== i).map((p) => `"127.0.0.1:${p}"`).join(", ")}]
secret = "${SECRET}"
dataDir = "${dir}/${n.id}"
heartbeatInterval = "100ms"
electionTimeout = "1000ms"
encryptionKey = "${KEY}"
[certificatesResolvers.le.acme]
email = "ops@example.com"
caServer = "${pebble.directoryUrl}"
storage = "${dir}/${n.id}-acme.json"
caCertificates = ["${dir}/pebble-ca.pem"]
[certificatesResolvers.le.acme.httpChallenge]
entryPoint = "web"
`;
      await Deno.writeTextFile(`${dir}/${n.id}.toml`, config);
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${repoRoot}mod.ts`, `--configFile=${dir}/${n.id}.toml`],
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      n.child = child;
      const pump = async (s: ReadableStream<Uint8Array>) => {
        const d = new TextDecoder();
        for await (const chunk of s) n.output = (n.output + d.decode(chunk)).slice(-30_000);
      };
      n.exited = Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
      await waitForPort(n.apiPort, "127.0.0.1", 30_000);
    };
    const kill = async (i: number) => {
      const n = nodes[i];
      if (!n.child) return;
      try {
        n.child.kill("SIGKILL");
      } catch { /* gone */ }
      await n.exited;
      n.child = undefined;
    };
    /** The node the leader record names, once that node says it is manager. */
    const manager = (aboveTerm = -1) =>
      until("a manager", async () => {
        const record = await readLeader(kv, ROOT);
        if (!record || record.term <= aboveTerm) return undefined;
        const i = nodes.findIndex((n) => n.id === record.nodeId);
        if (i < 0 || !nodes[i].child) return undefined;
        const res = await fetch(`http://127.0.0.1:${nodes[i].apiPort}/api/cluster`, {
          signal: AbortSignal.timeout(500),
        });
        const view = await res.json() as { isManager: boolean; term: number };
        return view.isManager && view.term === record.term ? { i, term: record.term } : undefined;
      }, 20_000);
    const putRouter = async (name: string, host: string) => {
      const p = `${ROOT}/http/routers/${name}`;
      assert.ok(
        await kv.transaction([], [
          { kind: "put", key: `${p}/rule`, value: `Host(\`${host}\`)` },
          { kind: "put", key: `${p}/service`, value: "noop@internal" },
          { kind: "put", key: `${p}/entrypoints/0`, value: "websecure" },
          { kind: "put", key: `${p}/tls/certresolver`, value: "le" },
        ]),
      );
    };

    try {
      await kv.deletePrefix(`${ROOT}/`);
      const t0 = performance.now();
      await Promise.all(nodes.map((_, i) => start(i)));
      const first = await manager();
      console.log(
        `3 nodes up, ${nodes[first.i].id} manager after ${(performance.now() - t0).toFixed(0)} ms`,
      );
      const worker = (first.i + 1) % 3;
      forwarder.retarget(nodes[worker].webPort);
      const root = await pebble.rootPem();

      // Five routers at once; each certificate must reach every node.
      const routersAt = performance.now();
      for (const [i, d] of DOMAINS.entries()) await putRouter(`r${i}`, d);
      const served = await Promise.all(DOMAINS.map(async (d) => {
        const storedAt = await until(
          `${d} stored in etcd`,
          () => Promise.resolve(stored.get(d)),
          30_000,
        );
        const times = await Promise.all(nodes.map((n) => servedAt(n.securePort, d, root, 5000)));
        return { d, storedAt, lag: times.map((t) => t - storedAt) };
      }));
      for (const { d, storedAt, lag } of served) {
        console.log(
          `${d}: stored ${
            (storedAt - routersAt).toFixed(0)
          } ms after the router; served by n1..n3 ${
            lag.map((l) => l.toFixed(0)).join("/")
          } ms after being stored`,
        );
        assert.ok(Math.max(...lag) < 1000, `${d} served by every node within 1 s: ${lag}`);
      }
      const lastServed = Math.max(...served.map((s) => s.storedAt + Math.max(...s.lag)));
      console.log(
        `5 routers -> every certificate served on every node: ${
          (lastServed - routersAt).toFixed(0)
        } ms`,
      );
      const m1 = await manager();
      assert.equal(
        m1.i,
        first.i,
        "no election happened while ordering (else counts below mean less)",
      );
      for (const d of DOMAINS) assert.equal(pebble.ordersFor(d), 1, `${d}: orders seen by Pebble`);
      assert.ok(
        (forwarder.forwardedTo.get(nodes[worker].webPort) ?? 0) >= DOMAINS.length,
        "Pebble's validations went to the worker",
      );
      // The manager placed the orders, the worker did not.
      assert.match(nodes[first.i].output, /ordering certificate/);
      assert.doesNotMatch(nodes[worker].output, /ordering certificate/);

      // Kill the manager while an order waits on validation.
      forwarder.hold();
      await putRouter("late", LATE);
      await until(
        "the late order reaching validation",
        () => Promise.resolve(pebble.ordersFor(LATE) >= 1 ? true : undefined),
        15_000,
      );
      assert.equal(stored.has(LATE), false, "not stored yet: the order is in flight");
      const killedAt = performance.now();
      await kill(first.i);
      const next = await manager(first.term);
      const electedMs = performance.now() - killedAt;
      const other = [0, 1, 2].find((i) => i !== first.i && i !== next.i)!;
      forwarder.retarget(nodes[other].webPort);
      forwarder.release();
      const storedLate = await until(
        "late.test stored",
        () => Promise.resolve(stored.get(LATE)),
        30_000,
      );
      for (const i of [next.i, other]) {
        const t = await servedAt(nodes[i].securePort, LATE, root, 5000);
        assert.ok(
          t - storedLate < 1000,
          `${nodes[i].id} served ${LATE} ${t - storedLate} ms after store`,
        );
      }
      console.log(
        `manager killed mid-order: new manager after ${electedMs.toFixed(0)} ms, ${LATE} stored ${
          (storedLate - killedAt).toFixed(0)
        } ms after the kill`,
      );
      const lateOrders = pebble.ordersFor(LATE);
      console.log(`${LATE}: ${lateOrders} orders across the failover`);
      assert.ok(
        lateOrders >= 1 && lateOrders <= 2,
        `${LATE}: ${lateOrders} orders (at most one extra)`,
      );
      for (const d of DOMAINS) {
        assert.equal(pebble.ordersFor(d), 1, `${d}: no new order after failover`);
      }
    } catch (err) {
      for (const n of nodes) {
        console.error(`--- ${n.id}\n${n.output.split("\n").slice(-15).join("\n")}`);
      }
      throw err;
    } finally {
      for (let i = 0; i < nodes.length; i++) await kill(i);
      await watch.close();
      await kv.close();
      forwarder.close();
      await pebble.stop();
      await etcd.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
