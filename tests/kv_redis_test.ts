/**
 * The shared KV contract against a real Redis (Debian `redis-server`), plus
 * Redis-only behaviour: password and db options, and keys written by other
 * tools (plain SET, as Traefik's layout expects) showing up in watches.
 *
 * @module
 */

import assert from "node:assert/strict";
import { escapeGlob, RedisKVStore } from "../lib/kv/redis.ts";
import { type RedisServer, startRedis } from "./fixtures/redis.ts";
import { kvContract, waitFor, WatchView } from "./fixtures/kv_contract.ts";
import { KVError } from "../lib/kv/types.ts";

let server: RedisServer | undefined;
kvContract({
  name: "redis",
  start: async () => {
    server = await startRedis();
  },
  stop: async () => {
    await server?.stop();
  },
  open: () => Promise.resolve(new RedisKVStore({ endpoints: [server!.endpoint], timeoutMs: 3000 })),
  restart: () => server!.restart(),
  leaseTtlMs: 500,
  coalescesWatchEvents: true,
});

Deno.test("redis: password, db, and keys written by other clients", async () => {
  const redis = await startRedis({ password: "s3cret" });
  const store = new RedisKVStore({
    endpoints: [`redis://${redis.endpoint}`],
    password: "s3cret",
    db: 2,
  });
  const other = new RedisKVStore({ endpoints: [redis.endpoint], password: "s3cret", db: 3 });
  try {
    const view = new WatchView();
    const w = store.watch("traefik/", { onEvents: view.apply });
    await waitFor("reset", () => view.resets === 1);
    // A plain SET in the same db, as `redis-cli -n 2 set` would do.
    const cli = new Deno.Command("redis-cli", {
      args: [
        "-p",
        String(redis.port),
        "-a",
        "s3cret",
        "--no-auth-warning",
        "-n",
        "2",
        "SET",
        "traefik/http/routers/r/rule",
        "Host(`a`)",
      ],
      stdout: "null",
    });
    assert.equal((await cli.output()).code, 0);
    await other.put("traefik/http/routers/r/rule", "other db");
    await waitFor(
      "plain SET seen",
      () => view.values.get("traefik/http/routers/r/rule") === "Host(`a`)",
    );
    assert.equal((await store.get("traefik/http/routers/r/rule"))?.value, "Host(`a`)");
    assert.equal((await other.get("traefik/http/routers/r/rule"))?.value, "other db");
    await w.close();
  } finally {
    await store.close();
    await other.close();
    await redis.stop();
  }
});

Deno.test("redis: a wrong password is a KVError, and it never shows the password", async () => {
  const redis = await startRedis({ password: "right" });
  const store = new RedisKVStore({
    endpoints: [redis.endpoint],
    password: "wrong-pass-123",
    timeoutMs: 1000,
  });
  try {
    await assert.rejects(() => store.get("k"), (e: Error) => {
      assert.ok(e instanceof KVError);
      assert.match(e.message, /redis/);
      assert.doesNotMatch(e.message, /wrong-pass-123/);
      return true;
    });
  } finally {
    await store.close();
    await redis.stop();
  }
});

Deno.test("redis: escapeGlob makes prefixes literal", () => {
  const cases: [string, string][] = [
    ["traefik/", "traefik/"],
    ["a*b", "a\\*b"],
    ["q?[x]\\", "q\\?\\[x\\]\\\\"],
  ];
  for (const [input, want] of cases) assert.equal(escapeGlob(input), want, input);
});
