/**
 * `portico check` also validates the configuration held in a KV store, with
 * errors naming the KV key, and warns when the store cannot be read.
 */

import assert from "node:assert/strict";
import { startEtcd } from "./fixtures/etcd.ts";
import { freePort } from "./fixtures/ports.ts";
import { EtcdKVStore } from "../lib/kv/etcd.ts";

const repoRoot = new URL("../", import.meta.url).pathname;

async function check(configFile: string, ...extra: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${repoRoot}mod.ts`, "check", `--configFile=${configFile}`, ...extra],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, out: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

Deno.test({
  name: "check: KV errors name the key; a fixed store passes; an unreachable one is a warning, an error with --kv-required",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const etcd = await startEtcd();
  const dir = await Deno.makeTempDir();
  const store = new EtcdKVStore({ endpoints: [etcd.endpoint] });
  try {
    await store.put("traefik/http/routers/app/rule", "Host(`a.test`)");
    await store.put("traefik/http/routers/app/service", "app");
    await store.put("traefik/http/services/app/loadbalancer/servers/0/url", "http://127.0.0.1:9");
    await store.put("traefik/http/services/app/loadbalancer/servers/0/weight", "abc");
    await store.put("traefik/cluster/leader", JSON.stringify({ nodeId: "n1", term: 1, since: "x" }));
    const file = `${dir}/portico.toml`;
    await Deno.writeTextFile(file, `[entryPoints.web]\naddress = "127.0.0.1:${freePort()}"\n[providers.etcd]\nendpoints = ["${etcd.endpoint}"]\n`);

    const bad = await check(file);
    assert.equal(bad.code, 1, bad.out);
    assert.match(bad.out, /traefik\/http\/services\/app\/loadbalancer\/servers\/0\/weight/);

    await store.put("traefik/http/services/app/loadbalancer/servers/0/weight", "2");
    const good = await check(file);
    assert.equal(good.code, 0, good.out);

    await Deno.writeTextFile(file, `[entryPoints.web]\naddress = "127.0.0.1:${freePort()}"\n[providers.redis]\nendpoints = ["127.0.0.1:${freePort()}"]\n`);
    const unreachable = await check(file);
    assert.equal(unreachable.code, 0, unreachable.out);
    assert.match(unreachable.out, /warning: providers\.redis: the store could not be read, so its configuration was not checked/);
    const required = await check(file, "--kv-required");
    assert.equal(required.code, 1, required.out);
    assert.match(required.out, /providers\.redis: the store could not be read, so its configuration was not checked/);
    assert.doesNotMatch(required.out, /warning:/);
  } finally {
    await store.close();
    await etcd.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
