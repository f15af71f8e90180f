/**
 * The etcd backend over TLS with client-certificate authentication, against
 * a real etcd: the provider's `tls` options (ca, cert, key) are used, and a
 * client without a certificate is refused.
 */

import assert from "node:assert/strict";
import { EtcdKVStore } from "../lib/kv/etcd.ts";
import { startEtcd } from "./fixtures/etcd.ts";
import { makePki } from "./fixtures/pki.ts";

Deno.test({
  name: "etcd over TLS: ca, cert and key are used; no client certificate is refused",
  // etcd3's gRPC client leaves a reconnect timer after close (see kv_etcd_test.ts).
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-etcd-tls-" });
  await makePki(dir);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  const etcd = await startEtcd({
    tls: {
      certFile: `${dir}/server.pem`,
      keyFile: `${dir}/server.key`,
      caFile: `${dir}/ca.pem`,
      clientCert: await read("client.pem"),
      clientKey: await read("client.key"),
    },
  });
  try {
    assert.match(etcd.endpoint, /^https:/);
    const byName = etcd.endpoint.replace("127.0.0.1", "localhost");
    // An IP endpoint with TLS is refused up front, with the fix in the message.
    assert.throws(
      () => new EtcdKVStore({ endpoints: [etcd.endpoint], tls: { ca: `${dir}/ca.pem` } }),
      /IP address; with TLS, name etcd endpoints by a host name/,
    );
    // Paths work as well as PEM text.
    const store = new EtcdKVStore({
      endpoints: [byName],
      tls: { ca: `${dir}/ca.pem`, cert: `${dir}/client.pem`, key: await read("client.key") },
      timeoutMs: 3000,
    });
    try {
      await store.put("traefik/http/routers/r/rule", "Host(`tls.test`)");
      assert.equal((await store.get("traefik/http/routers/r/rule"))?.value, "Host(`tls.test`)");
    } finally {
      await store.close();
    }
    const anonymous = new EtcdKVStore({ endpoints: [byName], tls: { ca: `${dir}/ca.pem` }, timeoutMs: 2000 });
    try {
      await assert.rejects(anonymous.get("traefik/x"), /etcd/);
    } finally {
      await anonymous.close();
    }
  } finally {
    await etcd.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
