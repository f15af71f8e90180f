/**
 * `rateLimit.redis` against a real `redis-server` (Debian): three Portico
 * instances in this process share one bucket; Redis killed and brought
 * back, with the default 500 and with `failureMode = "local"`; `NOSCRIPT`
 * after `SCRIPT FLUSH`; a password-protected Redis with right, wrong and
 * missing passwords; and a Redis that stops answering, against the
 * configured timeouts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { startRedis, startRedisCluster } from "./fixtures/redis.ts";
import { freePort, requireBinary, spawnServer, waitForPort } from "./fixtures/ports.ts";
import { makePki } from "./fixtures/pki.ts";
import { BUCKET_SCRIPT_SHA1 } from "../lib/middlewares/rate_limit/redis_script.ts";
import {
  eventually,
  roundRobinLoad,
  startRateLimitNodes,
  within,
} from "./fixtures/rate_limit.ts";

const BUCKET_ERROR = "Could not insert/update bucket\n";

async function status(url: string): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(url);
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - started };
}

function redisClient(port: number, password?: string): Redis {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  client.on("error", () => {});
  return client;
}

Deno.test({
  name:
    "rateLimit.redis: three instances round-robin share one bucket: average × time + burst ±10 %",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const redis = await startRedis();
    const instances = await startRateLimitNodes(3, {
      shared: `average = 100\nburst = 20\nredis = { endpoints = ["${redis.endpoint}"] }`,
      alone: `average = 100\nburst = 20`,
    });
    const { nodes, backend, log } = instances;
    const inspect = redisClient(redis.port);
    try {
      const shared = await roundRobinLoad(nodes.map((n) => `${n.url()}/shared/`), {
        durationMs: 3000,
        clients: 6,
      });
      const expected = 20 + (100 * shared.elapsedMs) / 1000;
      assert.deepEqual([...shared.other], [], "only 200 and 429");
      assert.ok(
        shared.refused > shared.served,
        `the clients exceed the limit (${shared.served} served, ${shared.refused} refused)`,
      );
      assert.ok(
        within(shared.served, expected, 0.1),
        `shared: ${shared.served} served in ${shared.elapsedMs.toFixed(0)} ms, expected ${
          expected.toFixed(0)
        } ±10 %`,
      );
      for (const [i, n] of shared.servedBy.entries()) {
        assert.ok(n > expected / 6, `node ${i} served ${n}: traffic was spread`);
      }
      const bucket = await inspect.hgetall("rate:shared@file:127.0.0.1");
      assert.deepEqual(Object.keys(bucket).sort(), ["last", "tokens"], "Traefik's key and fields");
      const ttl = await inspect.pttl("rate:shared@file:127.0.0.1");
      assert.ok(
        ttl > 0 && ttl <= 2300,
        `the bucket expires once it would be full again (pttl ${ttl})`,
      );

      // The same load on per-instance limiters gets about three budgets: what the shared bucket fixes.
      const alone = await roundRobinLoad(nodes.map((n) => `${n.url()}/alone/`), {
        durationMs: 3000,
        clients: 6,
      });
      const threeBudgets = 3 * (20 + (100 * alone.elapsedMs) / 1000);
      if (Deno.env.get("LOAD_DEBUG")) console.log({ shared, expected, alone, threeBudgets });
      assert.ok(
        within(alone.served, threeBudgets, 0.1),
        `alone: ${alone.served} served, expected ${threeBudgets.toFixed(0)}`,
      );
      assert.equal(
        backend.hits,
        shared.served + alone.served,
        "the backend saw exactly the served requests",
      );
      assert.deepEqual(log.lines.filter((l) => l.level !== "info"), [], "no outage was logged");
    } finally {
      inspect.disconnect();
      await instances.close();
      await redis.stop();
    }
  },
});

Deno.test({
  name:
    "rateLimit.redis: Redis killed → 500, or the local fallback at 1/3 of the budget; back → shared again, no restart",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const redis = await startRedis();
    const redisTable =
      `redis = { endpoints = ["${redis.endpoint}"], dialTimeout = "500ms", readTimeout = "500ms", writeTimeout = "500ms" }`;
    const instances = await startRateLimitNodes(3, {
      strict: `average = 60\nburst = 6\n${redisTable}`,
      lenient: `average = 60\nburst = 6\n${redisTable.replace("}", ', failureMode = "local" }')}`,
    });
    const { nodes, log } = instances;
    const urls = (name: string) => nodes.map((n) => `${n.url()}/${name}/`);
    const inspect = redisClient(redis.port);
    try {
      for (const url of [...urls("strict"), ...urls("lenient")]) {
        assert.equal((await status(url)).status, 200, url);
      }
      assert.equal(
        await inspect.exists("rate:strict@file:127.0.0.1", "rate:lenient@file:127.0.0.1"),
        2,
      );
      inspect.disconnect();

      await redis.kill();
      // Default: Traefik's 500, answered at once (no waiting on a Redis that is gone).
      for (let i = 0; i < 30; i++) {
        const r = await status(urls("strict")[i % 3]);
        assert.equal(r.status, 500, `strict request ${i} while Redis is down`);
        assert.equal(r.body, BUCKET_ERROR);
        assert.ok(r.ms < 250, `answered in ${r.ms.toFixed(0)} ms`);
      }
      // failureMode = "local": each node limits alone at 60/3 per second, burst 6/3.
      const local = await roundRobinLoad(urls("lenient"), { durationMs: 2000, clients: 6 });
      const localExpected = 3 * (2 + (20 * local.elapsedMs) / 1000);
      if (Deno.env.get("LOAD_DEBUG")) console.log({ local, localExpected });
      assert.deepEqual([...local.other], [], "only 200 and 429 under the fallback");
      assert.ok(
        within(local.served, localExpected, 0.1),
        `fallback: ${local.served} served, expected ${localExpected.toFixed(0)} ±10 %`,
      );
      for (const [i, n] of local.servedBy.entries()) {
        assert.ok(within(n, localExpected / 3, 0.15), `node ${i} served ${n} of its third`);
      }
      const outage = (mw: string) =>
        log.lines.filter((l) =>
          l.level === "error" &&
          l.message.startsWith(`middleware "${mw}@file": Redis at ${redis.endpoint} is unavailable`)
        );
      assert.equal(outage("strict").length, 3, "logged once per node, not per request");
      assert.equal(outage("lenient").length, 3, "logged once per node, not per request");
      assert.match(
        outage("strict")[0].message,
        /answering 500 "Could not insert\/update bucket" until it answers/,
      );
      assert.match(
        outage("lenient")[0].message,
        /limiting on this node alone, at 1\/3 of the budget, until it answers/,
      );

      await redis.restart();
      await eventually(
        "strict answers from Redis again",
        async () => (await status(urls("strict")[0])).status !== 500,
      );
      for (const url of urls("strict")) {
        await eventually(`${url} back`, async () => (await status(url)).status !== 500);
      }
      const back = redisClient(redis.port);
      try {
        await eventually("lenient writes its bucket to Redis again", async () => {
          await status(urls("lenient")[0]);
          return (await back.exists("rate:lenient@file:127.0.0.1")) === 1;
        });
        // Shared again: the three nodes together get one budget.
        await back.del("rate:strict@file:127.0.0.1");
        const shared = await roundRobinLoad(urls("strict"), { durationMs: 2000, clients: 6 });
        const expected = 6 + (60 * shared.elapsedMs) / 1000;
        assert.deepEqual([...shared.other], [], "no 500 once Redis is back");
        assert.ok(
          within(shared.served, expected, 0.1),
          `after recovery: ${shared.served} served, expected ${expected.toFixed(0)}`,
        );
        const recovered = log.lines.filter((l) =>
          l.level === "info" && l.message.includes("answers again")
        );
        assert.ok(
          recovered.length >= 3 && recovered.length <= 6,
          `recovery logged once per node and middleware (${recovered.length})`,
        );

        // NOSCRIPT: the script cache emptied under load is reloaded by the request that finds it gone.
        await back.script("FLUSH");
        assert.deepEqual(await back.script("EXISTS", BUCKET_SCRIPT_SHA1), [0]);
        for (const url of urls("strict")) {
          assert.notEqual((await status(url)).status, 500, "EVAL after NOSCRIPT");
        }
        assert.deepEqual(
          await back.script("EXISTS", BUCKET_SCRIPT_SHA1),
          [1],
          "the script is cached again",
        );
      } finally {
        back.disconnect();
      }
    } finally {
      inspect.disconnect();
      await instances.close();
      await redis.stop();
    }
  },
});

Deno.test({
  name:
    "rateLimit.redis: password-protected Redis: the right password works; a wrong or missing one is a clear error naming the middleware",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const password = "right-horse-battery-7";
    const wrong = "not-the-password-42";
    const redis = await startRedis({ password });
    const table = (extra: string) =>
      `average = 10\nburst = 5\nredis = { endpoints = ["${redis.endpoint}"]${extra} }`;
    const instances = await startRateLimitNodes(1, {
      good: table(`, password = "${password}"`),
      bad: table(`, password = "${wrong}"`),
      acl: table(`, username = "default", password = "${wrong}"`),
      none: table(""),
    });
    const { nodes: [node], log } = instances;
    try {
      // Known as soon as the configuration is applied, before any request.
      const refusal = (mw: string) =>
        log.lines.filter((l) =>
          l.message.startsWith(`middleware "${mw}@file": option redis.password:`)
        );
      await eventually(
        "the refusals are logged",
        () => ["bad", "acl", "none"].every((mw) => refusal(mw).length === 1),
        5000,
      );
      assert.match(
        refusal("bad")[0].message,
        new RegExp(
          `^middleware "bad@file": option redis\\.password: Redis at ${redis.endpoint} refused the credentials \\(WRONGPASS`,
        ),
      );
      assert.match(refusal("acl")[0].message, /refused the credentials \(WRONGPASS/);
      assert.match(
        refusal("none")[0].message,
        /refused the credentials \(NOAUTH Authentication required/,
      );

      for (let i = 0; i < 10; i++) {
        const good = await status(`${node.url()}/good/`);
        assert.ok(good.status === 200 || good.status === 429, `good: ${good.status}`);
        for (const mw of ["bad", "acl", "none"]) {
          const r = await status(`${node.url()}/${mw}/`);
          assert.equal(r.status, 500, mw);
          assert.equal(r.body, BUCKET_ERROR, mw);
        }
      }
      for (const mw of ["bad", "acl", "none"]) {
        assert.equal(refusal(mw).length, 1, `${mw}: logged once`);
      }
      const inspect = redisClient(redis.port, password);
      try {
        assert.equal(
          await inspect.exists("rate:good@file:127.0.0.1"),
          1,
          "the right password reached Redis",
        );
      } finally {
        inspect.disconnect();
      }
      const everything = JSON.stringify(log.lines) + node.logs.join("\n");
      assert.ok(
        !everything.includes(password) && !everything.includes(wrong),
        "no password in any log line",
      );
    } finally {
      await instances.close();
      await redis.stop();
    }
  },
});

Deno.test({
  name:
    "rateLimit.redis: a Redis that stops answering costs a request at most the configured timeouts",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // A server that accepts connections and never says a word.
    const silentPort = freePort();
    const silent = Deno.listen({ hostname: "127.0.0.1", port: silentPort });
    const held: Deno.Conn[] = [];
    void (async () => {
      for await (const conn of silent) held.push(conn);
    })().catch(() => {});
    const redis = await startRedis();
    const timeouts = `dialTimeout = "300ms", readTimeout = "150ms", writeTimeout = "50ms"`;
    const instances = await startRateLimitNodes(1, {
      mute:
        `average = 100\nburst = 100\nredis = { endpoints = ["127.0.0.1:${silentPort}"], ${timeouts} }`,
      paused:
        `average = 100\nburst = 100\nredis = { endpoints = ["${redis.endpoint}"], ${timeouts} }`,
    });
    const { nodes: [node], log } = instances;
    try {
      // Never ready: the first requests wait out dialTimeout at most, later ones not at all.
      const first = await status(`${node.url()}/mute/`);
      assert.equal(first.status, 500);
      assert.ok(
        first.ms < 300 + 150,
        `first request: ${first.ms.toFixed(0)} ms (dialTimeout 300 ms)`,
      );
      for (let i = 0; i < 20; i++) {
        const r = await status(`${node.url()}/mute/`);
        assert.equal(r.status, 500);
        assert.ok(r.ms < 100, `request ${i} after the first attempt: ${r.ms.toFixed(0)} ms`);
      }
      assert.match(
        log.lines.map((l) => l.message).join("\n"),
        /"mute@file": Redis at 127\.0\.0\.1:\d+ is unavailable \(no answer within dialTimeout \(300 ms\) while connecting\)/,
      );

      // Connected, then the server freezes (SIGSTOP): one request waits write + read timeout, the next fail fast.
      assert.equal((await status(`${node.url()}/paused/`)).status, 200);
      const pid = await redisPid(redis.port);
      Deno.kill(pid, "SIGSTOP");
      try {
        const frozen = await status(`${node.url()}/paused/`);
        assert.equal(frozen.status, 500);
        assert.ok(
          frozen.ms >= 180 && frozen.ms < 400,
          `frozen Redis: ${frozen.ms.toFixed(0)} ms (timeouts 50 + 150 ms)`,
        );
        for (let i = 0; i < 10; i++) {
          const r = await status(`${node.url()}/paused/`);
          assert.equal(r.status, 500);
          assert.ok(r.ms < 100, `while frozen, request ${i}: ${r.ms.toFixed(0)} ms`);
        }
        assert.match(
          log.lines.map((l) => l.message).join("\n"),
          /"paused@file": Redis at 127\.0\.0\.1:\d+ is unavailable \(no answer from Redis within 200 ms\)/,
        );
      } finally {
        Deno.kill(pid, "SIGCONT");
      }
      await eventually(
        "the thawed Redis is used again",
        async () => (await status(`${node.url()}/paused/`)).status === 200,
      );
    } finally {
      await instances.close();
      await redis.stop();
      silent.close();
      for (const c of held) c.close();
    }
  },
});

async function redisPid(port: number): Promise<number> {
  const client = redisClient(port);
  try {
    const info = await client.info("server");
    return Number(/process_id:(\d+)/.exec(info)![1]);
  } finally {
    client.disconnect();
  }
}

Deno.test({
  name:
    "rateLimit.redis: TLS to Redis with the CA in tls.ca and a client certificate; an unknown CA is refused",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portico-redis-tls-" });
    await makePki(dir);
    const port = freePort();
    const server = spawnServer(await requireBinary("redis-server", "redis-server"), [
      "--port",
      "0",
      "--tls-port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--tls-cert-file",
      `${dir}/server.pem`,
      "--tls-key-file",
      `${dir}/server.key`,
      "--tls-ca-cert-file",
      `${dir}/ca.pem`,
      "--tls-auth-clients",
      "yes",
    ]);
    const client = `cert = "${dir}/client.pem", key = "${dir}/client.key"`;
    try {
      await waitForPort(port);
      const instances = await startRateLimitNodes(1, {
        mtls:
          `average = 10\nburst = 5\nredis = { endpoints = ["127.0.0.1:${port}"], tls = { ca = "${dir}/ca.pem", ${client} } }`,
        scheme:
          `average = 10\nburst = 5\nredis = { endpoints = ["rediss://127.0.0.1:${port}"], tls = { ca = "${dir}/ca.pem", ${client} } }`,
        unknownca:
          `average = 10\nburst = 5\nredis = { endpoints = ["127.0.0.1:${port}"], tls = { ${client} } }`,
      });
      const { nodes: [node], log } = instances;
      try {
        for (const mw of ["mtls", "scheme"]) {
          await eventually(
            `${mw} over TLS`,
            async () => (await status(`${node.url()}/${mw}/`)).status === 200,
            5000,
          );
        }
        const refused = await status(`${node.url()}/unknownca/`);
        assert.equal(refused.status, 500);
        assert.equal(refused.body, BUCKET_ERROR);
        await eventually(
          "the unknown CA is logged",
          () =>
            log.lines.some((l) => l.message.startsWith('middleware "unknownca@file": Redis at')),
        );
        assert.match(
          log.lines.find((l) => l.message.startsWith('middleware "unknownca@file"'))!.message,
          /is unavailable \(.*(certificate|issuer|UnknownIssuer).*\)/i,
        );
        assert.equal(
          log.lines.filter((l) => /"(mtls|scheme)@file"/.test(l.message) && l.level === "error")
            .length,
          0,
        );
      } finally {
        await instances.close();
      }
    } finally {
      await server.kill("SIGKILL");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "rateLimit.redis: several endpoints are a Redis Cluster; three instances share each source's bucket across its shards",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cluster = await startRedisCluster();
    const endpoints = cluster.ports.map((p) => `"127.0.0.1:${p}"`).join(", ");
    const instances = await startRateLimitNodes(3, {
      sharded:
        `average = 50\nburst = 10\nsourceCriterion = { requestHeaderName = "X-Key" }\nredis = { endpoints = [${endpoints}] }`,
    });
    const { nodes, log } = instances;
    try {
      const keys = ["k0", "k1", "k2", "k3", "k4", "k5"];
      const served = new Map(keys.map((k) => [k, 0]));
      let turn = 0;
      let other = 0;
      const started = performance.now();
      const end = started + 2000;
      await Promise.all(keys.map(async (key) => {
        while (performance.now() < end) {
          const res = await fetch(`${nodes[turn++ % 3].url()}/sharded/`, {
            headers: { "x-key": key },
          });
          await res.body?.cancel();
          if (res.status === 200) served.set(key, served.get(key)! + 1);
          else if (res.status !== 429) other++;
        }
      }));
      const elapsed = performance.now() - started;
      const expected = 10 + (50 * elapsed) / 1000;
      if (Deno.env.get("LOAD_DEBUG")) console.log({ served, expected });
      assert.equal(other, 0, "only 200 and 429");
      for (const [key, n] of served) {
        assert.ok(
          within(n, expected, 0.15),
          `${key}: ${n} served, expected ${expected.toFixed(0)}`,
        );
      }
      // The buckets really are spread over the cluster's masters.
      const holders = new Set<number>();
      for (const port of cluster.ports) {
        const node = redisClient(port);
        try {
          const here = await node.call("KEYS", "rate:sharded@file:*") as string[];
          if (here.length > 0) holders.add(port);
        } finally {
          node.disconnect();
        }
      }
      assert.ok(holders.size >= 2, `buckets on ${holders.size} of 3 masters`);
      assert.deepEqual(log.lines.filter((l) => l.level === "error"), [], "no Redis error");
    } finally {
      await instances.close();
      await cluster.stop();
    }
  },
});
