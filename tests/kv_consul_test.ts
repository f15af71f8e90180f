/**
 * The shared KV contract against the in-process Consul stand-in
 * (`tests/fixtures/consul_server.ts`, written from Consul's HTTP API docs),
 * plus Consul-only behaviour: ACL tokens, the index going backwards, and the
 * requests the client sends.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConsulKVStore } from "../lib/kv/consul.ts";
import { KVError } from "../lib/kv/types.ts";
import { type ConsulTestServer, startConsulServer } from "./fixtures/consul_server.ts";
import { kvContract, waitFor, WatchView } from "./fixtures/kv_contract.ts";

const TOKEN = "acl-token-for-tests";
let server: ConsulTestServer | undefined;
kvContract({
  name: "consul",
  start: async () => {
    server = await startConsulServer({ token: TOKEN, minSessionTtlMs: 1000 });
  },
  stop: async () => {
    await server?.stop();
  },
  open: () =>
    Promise.resolve(
      new ConsulKVStore({
        endpoints: [server!.endpoint],
        token: TOKEN,
        minSessionTtlMs: 1000,
        timeoutMs: 2000,
      }),
    ),
  restart: () => server!.restart(),
  leaseTtlMs: 1000,
  coalescesWatchEvents: true,
});

Deno.test("consul: a missing or wrong token is a KVError that does not echo the token", async () => {
  const consul = await startConsulServer({ token: TOKEN });
  const cases = [undefined, "not-the-token"];
  try {
    for (const token of cases) {
      const store = new ConsulKVStore({ endpoints: [consul.endpoint], token });
      await assert.rejects(() => store.get("traefik/x"), (e: Error) => {
        assert.ok(e instanceof KVError);
        assert.match(e.message, /consul: HTTP 403 \(check the ACL token\).*key traefik\/x/);
        if (token) assert.doesNotMatch(e.message, new RegExp(token));
        return true;
      });
      await store.close();
    }
  } finally {
    await consul.stop();
  }
});

Deno.test("consul: a watch resets when the index goes backwards (state lost)", async () => {
  const consul = await startConsulServer();
  const store = new ConsulKVStore({ endpoints: [consul.endpoint], watchWaitMs: 2000 });
  const view = new WatchView();
  const w = store.watch("p/", { onEvents: view.apply });
  try {
    for (let i = 0; i < 5; i++) await store.put(`p/k${i}`, String(i));
    await waitFor("five keys", () => view.values.size === 5);
    const resetsBefore = view.resets;
    await consul.restart({ wipe: true });
    await store.put("p/fresh", "1"); // the new cluster's index is far below the old one
    await waitFor(
      "reset to the wiped store",
      () => view.resets > resetsBefore && view.values.size === 1,
    );
    assert.deepEqual(view.snapshot(), { "p/fresh": "1" });
  } finally {
    await w.close();
    await store.close();
    await consul.stop();
  }
});

Deno.test("consul: reads are consistent, CAS uses ModifyIndex, txn uses check-index", async () => {
  const consul = await startConsulServer();
  const store = new ConsulKVStore({ endpoints: [consul.endpoint] });
  try {
    await store.put("f/leader", "n1");
    assert.equal(await store.compareAndSet("f/leader", "n1", "n2"), true);
    assert.equal(
      await store.transaction([{ key: "f/leader", kind: "equals", value: "n2" }], [{
        kind: "put",
        key: "f/cert",
        value: "c",
      }]),
      true,
    );
    const seen = consul.requests.join("\n");
    assert.match(seen, /GET \/v1\/kv\/f\/leader\?consistent/);
    assert.match(seen, /PUT \/v1\/kv\/f\/leader\?cas=\d+/);
    assert.match(seen, /PUT \/v1\/txn/);
  } finally {
    await store.close();
    await consul.stop();
  }
});

Deno.test("consul server: sessions below the documented 10 s minimum TTL are refused", async () => {
  const consul = await startConsulServer();
  try {
    const res = await fetch(`${consul.endpoint}/v1/session/create`, {
      method: "PUT",
      body: JSON.stringify({ TTL: "5s" }),
    });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Invalid Session TTL '5s'/);
    const store = new ConsulKVStore({ endpoints: [consul.endpoint] });
    const lease = await store.grantLease(1000); // raised to 10 s by the client
    const info = await (await fetch(`${consul.endpoint}/v1/session/info/${lease.id}`)).json();
    assert.equal(info[0].TTL, "10s");
    assert.equal(info[0].Behavior, "delete");
    await lease.revoke();
    await store.close();
  } finally {
    await consul.stop();
  }
});

Deno.test("consul server: blocking query waits for a change, txn is all-or-nothing", async () => {
  const consul = await startConsulServer();
  try {
    const put = (k: string, v: string, q = "") =>
      fetch(`${consul.endpoint}/v1/kv/${k}${q}`, { method: "PUT", body: v }).then((r) => r.json());
    assert.equal(await put("a", "1", "?cas=0"), true);
    assert.equal(await put("a", "2", "?cas=0"), false);
    const first = await fetch(`${consul.endpoint}/v1/kv/a`);
    const index = Number(first.headers.get("x-consul-index"));
    const [entry] = await first.json();
    assert.equal(atob(entry.Value), "1");
    const started = Date.now();
    const blocked = fetch(`${consul.endpoint}/v1/kv/a?index=${index}&wait=5s`);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(await put("a", "3", `?cas=${entry.ModifyIndex}`), true);
    const woke = await blocked;
    assert.ok(Date.now() - started >= 150, "answered before the change");
    assert.ok(Number(woke.headers.get("x-consul-index")) > index);
    assert.equal(atob((await woke.json())[0].Value), "3");
    const txn = await fetch(`${consul.endpoint}/v1/txn`, {
      method: "PUT",
      body: JSON.stringify([
        { KV: { Verb: "set", Key: "b", Value: btoa("x") } },
        { KV: { Verb: "check-not-exists", Key: "a" } },
      ]),
    });
    assert.equal(txn.status, 409);
    assert.equal((await txn.json()).Errors[0].OpIndex, 1);
    assert.equal(await fetch(`${consul.endpoint}/v1/kv/b`).then((r) => r.status), 404);
  } finally {
    await consul.stop();
  }
});
