/**
 * The etcd backend over TLS with client-certificate authentication, against
 * a real etcd: the provider's `tls` options (ca, cert, key) are used, and a
 * client without a certificate is refused.
 */

import assert from "node:assert/strict";
import { EtcdKVStore } from "../lib/kv/etcd.ts";
import { startEtcd } from "./fixtures/etcd.ts";

async function openssl(args: string[], cwd: string): Promise<void> {
  const { code, stderr } = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (code !== 0) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(stderr)}`);
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
async function makePki(dir: string) {
  await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=portico test CA"], dir);
  for (const [name, ext] of [["server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"], ["client", "extendedKeyUsage=clientAuth"]]) {
    await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
    await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir);
    await openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`], dir);
  }
}

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
