/**
 * HTTPS upstreams on Portico's own client (`Deno.connectTls`): the chain is
 * verified against the servers transport's `rootCAs`, connections are
 * pooled and kept alive, bodies stream both ways, an untrusted certificate
 * is a 502, and `insecureSkipVerify` (which Deno's TLS client cannot do)
 * still works through node:https.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";
import { makePki } from "./fixtures/pki.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { startRawBackend } from "./fixtures/raw_backend.ts";
import { freePort } from "./fixtures/ports.ts";

async function startHttpsBackend(dir: string, hostname = "127.0.0.1") {
  const ports = new Set<number>();
  const server = Deno.serve({
    hostname,
    port: 0,
    cert: await Deno.readTextFile(`${dir}/server.pem`),
    key: await Deno.readTextFile(`${dir}/server.key`),
    onListen: () => {},
  }, async (request, info) => {
    ports.add(info.remoteAddr.port);
    const body = request.body ? (await request.arrayBuffer()).byteLength : 0;
    const url = new URL(request.url);
    return Response.json({
      path: url.pathname + url.search,
      proto: request.headers.get("x-forwarded-proto"),
      host: request.headers.get("host"),
      received: body,
    });
  });
  return { port: server.addr.port, connections: ports, close: () => server.shutdown() };
}

/** A router for `NAME.test` to a one-server service, through servers transport `transport` if given. */
function routeTo(name: string, url: string, transport?: string): string {
  return `
[http.routers.${name}]
rule = "Host(\`${name}.test\`)"
service = "${name}"
[http.services.${name}.loadBalancer]
${transport ? `serversTransport = "${transport}"` : ""}
servers = [{ url = "${url}" }]
`;
}

Deno.test({
  name: "HTTPS upstream: verified with rootCAs, pooled, bodies both ways; untrusted is 502; insecureSkipVerify works",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "portico-https-upstream-" });
    await makePki(dir);
    const backend = await startHttpsBackend(dir);
    const upstream = `https://127.0.0.1:${backend.port}`;
    const proxy = await startTestProxy({
      dynamic: `
[http.routers.trusted]
rule = "Host(\`trusted.test\`)"
service = "trusted"
[http.routers.untrusted]
rule = "Host(\`untrusted.test\`)"
service = "untrusted"
[http.routers.skip]
rule = "Host(\`skip.test\`)"
service = "skip"
[http.serversTransports.ca]
rootCAs = ["${dir}/ca.pem"]
[http.serversTransports.insecure]
insecureSkipVerify = true
[http.services.trusted.loadBalancer]
serversTransport = "ca"
servers = [{ url = "${upstream}/base" }]
[http.services.untrusted.loadBalancer]
servers = [{ url = "${upstream}" }]
[http.services.skip.loadBalancer]
serversTransport = "insecure"
servers = [{ url = "${upstream}" }]
`,
    });
    try {
      for (let i = 0; i < 20; i++) {
        const res = await rawGet(proxy.port(), `/a%2Fb?n=${i}`, { host: "trusted.test" });
        assert.equal(res.status, 200, res.body);
        const echo = JSON.parse(res.body);
        assert.equal(echo.path, `/base/a%2Fb?n=${i}`, "the raw path goes upstream as sent");
        assert.equal(echo.proto, "http");
        assert.equal(echo.host, "trusted.test");
      }
      assert.equal(backend.connections.size, 1, "20 sequential requests share one pooled TLS connection");

      const big = "x".repeat(300_000);
      const posted = await rawGet(proxy.port(), "/upload", { host: "trusted.test", "content-type": "text/plain" }, "POST", big);
      assert.equal(posted.status, 200);
      assert.equal(JSON.parse(posted.body).received, 300_000, "the whole request body arrived over TLS");

      const refused = await rawGet(proxy.port(), "/", { host: "untrusted.test" });
      assert.equal(refused.status, 502, "a certificate from an unknown CA is refused");

      const skipped = await rawGet(proxy.port(), "/s", { host: "skip.test" });
      assert.equal(skipped.status, 200, proxy.logs.slice(-5).join("\n"));
      assert.equal(JSON.parse(skipped.body).path, "/s");
    } finally {
      await proxy.close();
      await backend.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "servers transport serverName: the upstream certificate is checked against it, not the URL's address",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "portico-https-servername-" });
    await makePki(dir);
    const backend = await startHttpsBackend(dir, "127.0.0.2");
    // 127.0.0.2 is not in the certificate (it names localhost and 127.0.0.1): only serverName can make it pass.
    const upstream = `https://127.0.0.2:${backend.port}`;
    const route = (name: string) => routeTo(name, upstream, name);
    const proxy = await startTestProxy({
      dynamic: route("named") + route("wrong") + route("bare") + `
[http.serversTransports.named]
serverName = "localhost"
rootCAs = ["${dir}/ca.pem"]
[http.serversTransports.wrong]
serverName = "other.test"
rootCAs = ["${dir}/ca.pem"]
[http.serversTransports.bare]
rootCAs = ["${dir}/ca.pem"]
`,
    });
    try {
      const named = await rawGet(proxy.port(), "/n", { host: "named.test" });
      assert.equal(named.status, 200, named.body);
      assert.equal(JSON.parse(named.body).path, "/n");
      assert.equal((await rawGet(proxy.port(), "/", { host: "wrong.test" })).status, 502, "a name the certificate lacks");
      assert.equal((await rawGet(proxy.port(), "/", { host: "bare.test" })).status, 502, "the address 127.0.0.2 is not in the certificate");
    } finally {
      await proxy.close();
      await backend.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("servers transport maxIdleConnsPerHost: below 0 keeps no idle upstream connection; the default reuses one", async () => {
  const backend = startRawBackend();
  const route = (name: string, transport?: string) => routeTo(name, `http://127.0.0.1:${backend.port}`, transport);
  const proxy = await startTestProxy({
    dynamic: route("pooled") + route("unpooled", "noidle") + `
[http.serversTransports.noidle]
maxIdleConnsPerHost = -1
`,
  });
  try {
    for (let i = 0; i < 5; i++) assert.equal((await rawGet(proxy.port(), "/", { host: "pooled.test" })).status, 200);
    assert.equal(backend.received().length, 1, "five sequential requests on one kept-alive connection");
    for (let i = 0; i < 5; i++) assert.equal((await rawGet(proxy.port(), "/", { host: "unpooled.test" })).status, 200);
    assert.equal(backend.received().length, 6, "each request without an idle pool dials anew");
  } finally {
    await proxy.close();
    backend.close();
  }
});

/** nginx terminating TLS and requiring a client certificate signed by the test CA. */
async function startMtlsNginx(dir: string): Promise<{ port: number; close(): Promise<void> }> {
  const port = freePort();
  await Deno.writeTextFile(`${dir}/nginx.conf`, `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${dir};
  proxy_temp_path ${dir};
  fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir};
  scgi_temp_path ${dir};
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server.key;
    ssl_client_certificate ${dir}/ca.pem;
    ssl_verify_client on;
    location / { return 200 "client $ssl_client_s_dn"; }
  }
}
`);
  const child = new Deno.Command("nginx", { args: ["-p", dir, "-c", `${dir}/nginx.conf`], stdout: "null", stderr: "null" }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port,
    async close() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

Deno.test({
  name: "servers transport certificates: the client certificate reaches an upstream that requires one",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "portico-mtls-" });
    await makePki(dir);
    const nginx = await startMtlsNginx(dir);
    const route = (name: string) => routeTo(name, `https://127.0.0.1:${nginx.port}`, name);
    const proxy = await startTestProxy({
      dynamic: route("mtls") + route("nocert") + route("skipverify") + `
[http.serversTransports.mtls]
rootCAs = ["${dir}/ca.pem"]
certificates = [{ certFile = "${dir}/client.pem", keyFile = "${dir}/client.key" }]
[http.serversTransports.nocert]
rootCAs = ["${dir}/ca.pem"]
[http.serversTransports.skipverify]
insecureSkipVerify = true
certificates = [{ certFile = "${dir}/client.pem", keyFile = "${dir}/client.key" }]
`,
    });
    try {
      const mtls = await rawGet(proxy.port(), "/", { host: "mtls.test" });
      assert.equal(mtls.status, 200, mtls.body);
      assert.match(mtls.body, /^client CN=client$/);
      const skip = await rawGet(proxy.port(), "/", { host: "skipverify.test" });
      assert.equal(skip.status, 200, "node:https presents the certificate too");
      assert.match(skip.body, /CN=client/);
      const nocert = await rawGet(proxy.port(), "/", { host: "nocert.test" });
      assert.equal(nocert.status, 400, "nginx refuses a request without a client certificate");
    } finally {
      await proxy.close();
      await nginx.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("servers transport certificates: more than one, or with serverName, is refused with the key named", async () => {
  const { validateDynamic } = await import("../lib/config/dynamic.ts");
  const two = { certFile: "a.pem", keyFile: "a.key" };
  assert.throws(
    () => validateDynamic({ http: { serversTransports: { t: { certificates: [two, two] } } } }, "d.toml"),
    /http\.serversTransports\.t\.certificates\[1\]: not supported yet: more than one client certificate/,
  );
  assert.throws(
    () => validateDynamic({ http: { serversTransports: { t: { serverName: "a", certificates: [two] } } } }, "d.toml"),
    /http\.serversTransports\.t\.serverName: not possible on Deno 2\.9\.6/,
  );
});
