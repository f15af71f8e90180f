/**
 * `storeconfig`: the change plan (pure), and the command against the Consul
 * contract server: upload, idempotence, `--dry-run`, `--keep`, removals,
 * chunking past Consul's 64-operation limit, and no secrets printed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseArgs } from "../lib/cli/args.ts";
import {
  chunkOperations,
  planStoreConfig,
  printableEndpoint,
  runStoreConfig,
} from "../lib/cli/storeconfig.ts";
import { ConsulKVStore } from "../lib/kv/consul.ts";
import { decodeKVEntries } from "../lib/providers/kv_codec.ts";
import { startConsulServer } from "./fixtures/consul_server.ts";

Deno.test("the plan lists added, changed and removed keys in a safe order", () => {
  const current = new Map([
    ["t/http/routers/old/rule", "x"],
    ["t/http/services/old/loadbalancer/servers/0/url", "http://a"],
    ["t/http/services/app/loadbalancer/servers/0/url", "http://a"],
    ["t/http/routers/app/rule", "Path(`/`)"],
  ]);
  const desired = new Map([
    ["t/http/routers/app/rule", "Path(`/`)"],
    ["t/http/routers/app/service", "app"],
    ["t/http/services/app/loadbalancer/servers/0/url", "http://b"],
    ["t/http/services/new/loadbalancer/servers/0/url", "http://c"],
  ]);
  const plan = planStoreConfig(current, desired, false);
  assert.deepEqual(plan.added, [
    "t/http/routers/app/service",
    "t/http/services/new/loadbalancer/servers/0/url",
  ]);
  assert.deepEqual(plan.changed, ["t/http/services/app/loadbalancer/servers/0/url"]);
  assert.deepEqual(plan.removed, [
    "t/http/routers/old/rule",
    "t/http/services/old/loadbalancer/servers/0/url",
  ]);
  assert.deepEqual(plan.operations.map((o) => `${o.kind} ${o.key}`), [
    "put t/http/services/app/loadbalancer/servers/0/url",
    "put t/http/services/new/loadbalancer/servers/0/url",
    "put t/http/routers/app/service",
    "delete t/http/routers/old/rule",
    "delete t/http/services/old/loadbalancer/servers/0/url",
  ]);
  const kept = planStoreConfig(current, desired, true);
  assert.deepEqual(kept.removed, []);
  assert.ok(kept.operations.every((o) => o.kind === "put"));
  assert.deepEqual(planStoreConfig(desired, desired, false).operations, []);
});

Deno.test("operations are chunked to the store's limit", () => {
  const ops = Array.from({ length: 130 }, (_, i) => ({ kind: "delete" as const, key: `k${i}` }));
  assert.deepEqual(chunkOperations(ops, 64).map((c) => c.length), [64, 64, 2]);
  assert.deepEqual(chunkOperations(ops, Infinity).map((c) => c.length), [130]);
  assert.deepEqual(chunkOperations([], 64), []);
});

Deno.test("chunks never split one router's or service's keys", () => {
  // 30 routers of 3 keys each: 90 operations, limit 64 → 63 + 27, not 64 + 26.
  const ops = Array.from({ length: 30 }, (_, r) =>
    ["rule", "service", "priority"].map((f) => ({
      kind: "put" as const,
      key: `traefik/http/routers/r${r}/${f}`,
      value: "x",
    }))).flat();
  const chunks = chunkOperations(ops, 64);
  assert.deepEqual(chunks.map((c) => c.length), [63, 27]);
  const routersOf = (c: { key: string }[]) => new Set(c.map((o) => o.key.split("/")[3]));
  const [a, b] = chunks.map(routersOf);
  assert.equal([...a].filter((r) => b.has(r)).length, 0, "no router spans two transactions");
  // An object larger than the limit is still split (it cannot fit anywhere).
  const big = Array.from({ length: 70 }, (_, i) => ({ kind: "put" as const, key: `traefik/http/services/s/loadbalancer/servers/${i}/url`, value: "u" }));
  assert.deepEqual(chunkOperations(big, 64).map((c) => c.length), [64, 6]);
});

Deno.test("endpoints are printed without credentials", () => {
  assert.equal(printableEndpoint("redis://user:secret@10.0.0.1:6379"), "redis://***@10.0.0.1:6379");
  assert.equal(printableEndpoint("127.0.0.1:2379"), "127.0.0.1:2379");
});

function routersToml(n: number, backend: string): string {
  let toml =
    `[http.services.app.loadBalancer]\n[[http.services.app.loadBalancer.servers]]\nurl = "${backend}"\n`;
  for (let i = 0; i < n; i++) {
    toml +=
      `[http.routers.r${i}]\nrule = "Path(\`/r${i}\`)"\nservice = "app"\nentryPoints = ["web"]\n`;
  }
  return toml;
}

async function run(configFile: string, ...flags: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runStoreConfig(
    parseArgs(["storeconfig", `--configFile=${configFile}`, ...flags]),
    { out: (l) => out.push(l), err: (l) => err.push(l) },
  );
  return { code, out, err, text: [...out, ...err].join("\n") };
}

Deno.test("storeconfig uploads to Consul in chunks, then only the changes, and removes what is gone", async () => {
  const token = "s3cret-consul-token";
  const consul = await startConsulServer({ token });
  const dir = await Deno.makeTempDir({ prefix: "portico-storeconfig-" });
  const store = new ConsulKVStore({ endpoints: [consul.endpoint], token });
  try {
    const dynamic = `${dir}/dynamic.toml`;
    const staticFile = `${dir}/portico.toml`;
    await Deno.writeTextFile(
      staticFile,
      `[providers.file]\nfilename = "${dynamic}"\n[providers.consul]\nendpoints = ["${consul.endpoint}"]\ntoken = "${token}"\n`,
    );
    // 40 routers x 3 keys + 1 service key: more than Consul's 64 operations.
    await Deno.writeTextFile(dynamic, routersToml(40, "http://10.0.0.1"));
    await store.put("traefik-other/keep", "x");

    const dry = await run(staticFile, "--dry-run");
    assert.equal(dry.code, 0, dry.text);
    assert.match(
      dry.out[0],
      /^consul \(http:\/\/127\.0\.0\.1:\d+, root key "traefik"\): 121 added, 0 changed, 0 removed$/,
    );
    assert.ok(dry.out.includes("  + traefik/http/routers/r7/rule"));
    assert.ok(dry.out.includes("consul: dry run, nothing written"));
    assert.equal((await store.list("traefik/")).entries.length, 0, "a dry run writes nothing");

    const first = await run(staticFile);
    assert.equal(first.code, 0, first.text);
    assert.match(first.text, /written in 2 transactions of at most 64 operations/);
    assert.match(first.text, /consul: transaction 1\/2 written \(\d+ operations\)/, "progress per transaction");
    assert.match(first.text, /consul: transaction 2\/2 written/);
    assert.ok(!first.text.includes(token), "the token is never printed");
    const { entries } = await store.list("traefik/");
    assert.equal(entries.length, 121);
    const config = decodeKVEntries(
      entries.map((e) => [e.key, e.value] as const),
      "traefik",
      "consul",
    );
    assert.equal(Object.keys(config.http.routers).length, 40);

    const again = await run(staticFile);
    assert.match(again.out[0], /0 added, 0 changed, 0 removed/);
    assert.ok(again.out.includes("consul: already up to date, nothing written"));

    // Drop 30 routers and move the backend: one changed key, 90 removed.
    await Deno.writeTextFile(dynamic, routersToml(10, "http://10.0.0.2"));
    const kept = await run(staticFile, "--keep", "--dry-run");
    assert.match(kept.out[0], /0 added, 1 changed, 0 removed \(--keep/);
    const shrink = await run(staticFile);
    assert.equal(shrink.code, 0, shrink.text);
    assert.match(shrink.out[0], /0 added, 1 changed, 90 removed$/);
    assert.ok(shrink.out.includes("  ~ traefik/http/services/app/loadbalancer/servers/0/url"));
    assert.ok(shrink.out.includes("  - traefik/http/routers/r35/rule"));
    assert.equal((await store.list("traefik/")).entries.length, 31);
    assert.equal(
      (await store.get("traefik-other/keep"))?.value,
      "x",
      "keys outside the root are untouched",
    );
  } finally {
    await store.close();
    await consul.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("storeconfig reports configuration errors with the file named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-storeconfig-" });
  try {
    const staticFile = `${dir}/portico.toml`;
    await Deno.writeTextFile(staticFile, `[providers.consul]\nendpoints = ["127.0.0.1:1"]\n`);
    const noFile = await run(staticFile);
    assert.equal(noFile.code, 1);
    assert.match(noFile.err[0], /portico\.toml: no \[providers\.file\]/);

    await Deno.writeTextFile(staticFile, `[providers.file]\nfilename = "${dir}/d.toml"\n`);
    await Deno.writeTextFile(`${dir}/d.toml`, "");
    const noStore = await run(staticFile);
    assert.equal(noStore.code, 1);
    assert.match(noStore.err[0], /no KV store configured/);

    await Deno.writeTextFile(
      staticFile,
      `[providers.file]\nfilename = "${dir}/d.toml"\n[providers.consul]\nendpoints = ["127.0.0.1:1"]\n`,
    );
    await Deno.writeTextFile(`${dir}/d.toml`, `[http.routers.a]\nrule = "Path(\`/\`)"\n`);
    const bad = await run(staticFile);
    assert.equal(bad.code, 1);
    assert.match(bad.err[0], /d\.toml: http\.routers\.a\.service: missing/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
