/**
 * `tls.options` where Portico ends TLS itself, over real sockets: on a
 * terminating TCP router (version bounds, client certificates, sniStrict)
 * and on HTTPS routers whose options ask for client certificates (every
 * Traefik clientAuthType against a CA-signed, a foreign and no
 * certificate), with node:tls and openssl clients.
 */

import assert from "node:assert/strict";
import tls from "node:tls";
import { startTestProxy } from "./fixtures/proxy.ts";
import { startEchoBackend } from "./fixtures/backend.ts";
import { makePki, makeServerCert } from "./fixtures/pki.ts";

const enc = new TextEncoder();

interface Pki {
  dir: string;
  ca: string;
  client: { cert: string; key: string };
  /** A client certificate from another CA. */
  foreign: { cert: string; key: string };
}

async function makeFixturePki(): Promise<Pki> {
  const dir = await Deno.makeTempDir({ prefix: "portico-mtls-" });
  await Deno.mkdir(`${dir}/other`);
  await makePki(dir);
  await makePki(`${dir}/other`);
  await makeServerCert(dir, "fallback", ["fallback.test"]);
  await makeServerCert(dir, "edge", [
    "t.test",
    "m.test",
    "open.test",
    "req.test",
    "any.test",
    "ifgiven.test",
    "verify.test",
    "v13.test",
  ]);
  const read = (f: string) => Deno.readTextFileSync(`${dir}/${f}`);
  return {
    dir,
    ca: read("ca.pem"),
    client: { cert: read("client.pem"), key: read("client.key") },
    foreign: { cert: read("other/client.pem"), key: read("other/client.key") },
  };
}

interface Outcome {
  /** The handshake finished and the server answered with these bytes (empty when it closed instead). */
  answer?: string;
  error?: string;
  protocol?: string;
}

/** Connects with node:tls, sends `payload` (then half-closes), reads to EOF with a deadline. */
function exchange(
  port: number,
  servername: string,
  pki: Pki,
  options: tls.ConnectionOptions,
  payload: string,
  halfClose = true,
): Promise<Outcome> {
  return new Promise((resolve) => {
    let answer = "";
    let protocol: string | undefined;
    let settled = false;
    const done = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Destroyed on a later turn: node:tls on Deno trips over a socket destroyed inside its own error event.
      setTimeout(() => socket.destroy(), 0);
      resolve(o);
    };
    const socket = tls.connect(
      { host: "127.0.0.1", port, servername, ca: [pki.ca], ...options },
      () => {
        protocol = socket.getProtocol() ?? undefined;
        socket.write(payload);
        if (halfClose) socket.end();
      },
    );
    const timer = setTimeout(() => done({ error: "timed out", answer, protocol }), 10_000);
    socket.on("data", (b: Uint8Array) => (answer += new TextDecoder().decode(b)));
    socket.on("end", () => done({ answer, protocol }));
    socket.on(
      "close",
      () => done(protocol ? { answer, protocol } : { error: "closed during the handshake" }),
    );
    socket.on(
      "error",
      (e: Error) => done(protocol ? { answer, protocol, error: e.message } : { error: e.message }),
    );
  });
}

function startTcpEcho(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const chunks: Uint8Array[] = [];
        const buf = new Uint8Array(4096);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          chunks.push(buf.slice(0, n));
        }
        const got = chunks.map((c) => new TextDecoder().decode(c)).join("");
        await conn.write(enc.encode(`echo:${got}`)).catch(() => {});
        conn.close();
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

Deno.test("tls.options on a terminating TCP router: version bounds and client certificates", async (t) => {
  const pki = await makeFixturePki();
  const echo = startTcpEcho();
  const proxy = await startTestProxy({
    entryPoints: ["edge"],
    dynamic: `
[tcp.routers.open]
rule = "HostSNI(\`t.test\`)"
service = "echo"
tls = {}
[tcp.routers.v13]
rule = "HostSNI(\`v13.test\`)"
service = "echo"
tls = { options = "modern" }
[tcp.routers.mutual]
rule = "HostSNI(\`m.test\`)"
service = "echo"
tls = { options = "mutual@file" }
[tcp.routers.strict]
rule = "HostSNI(\`v13.test\`) || HostSNI(\`nocert.test\`)"
priority = 1
service = "echo"
tls = { options = "strict" }
[tcp.routers.lenient]
rule = "HostSNI(\`nocert2.test\`)"
service = "echo"
tls = {}
[tcp.routers.missing]
rule = "HostSNI(\`x.test\`)"
service = "echo"
tls = { options = "nowhere" }
[tcp.services.echo.loadBalancer]
[[tcp.services.echo.loadBalancer.servers]]
address = "127.0.0.1:${echo.port}"
[tls.options.modern]
minVersion = "VersionTLS13"
[tls.options.strict]
sniStrict = true
[tls.stores.default.defaultCertificate]
certFile = "${pki.dir}/fallback.pem"
keyFile = "${pki.dir}/fallback.key"
[tls.options.mutual.clientAuth]
caFiles = ["${pki.dir}/ca.pem"]
clientAuthType = "RequireAndVerifyClientCert"
[[tls.certificates]]
certFile = "${pki.dir}/edge.pem"
keyFile = "${pki.dir}/edge.key"
`,
  });
  const port = proxy.port("edge");
  try {
    await t.step("a router naming options that do not exist is disabled with the error", () => {
      const routers = proxy.server.watcher.current.tcp.routers;
      assert.equal(routers.get("missing@file")?.status, "disabled");
      assert.match(
        routers.get("missing@file")!.errors.join(),
        /tls\.options "nowhere" does not exist/,
      );
      for (const name of ["open@file", "v13@file", "mutual@file"]) {
        assert.equal(routers.get(name)?.status, "enabled", name);
      }
    });

    await t.step(
      "minVersion = VersionTLS13: a TLS 1.2 client is refused, a TLS 1.3 one relayed",
      async () => {
        const old = await exchange(port, "v13.test", pki, { maxVersion: "TLSv1.2" }, "hi");
        assert.equal(
          old.protocol,
          undefined,
          `the TLS 1.2 handshake must fail: ${JSON.stringify(old)}`,
        );
        assert.ok(!old.answer);
        const modern = await exchange(port, "v13.test", pki, {}, "hi");
        assert.equal(modern.protocol, "TLSv1.3");
        assert.equal(modern.answer, "echo:hi");
        // The same client on the router without options still gets TLS 1.2.
        const open = await exchange(port, "t.test", pki, { maxVersion: "TLSv1.2" }, "hi");
        assert.equal(open.protocol, "TLSv1.2");
        assert.equal(open.answer, "echo:hi");
      },
    );

    await t.step(
      "RequireAndVerifyClientCert: no certificate and a foreign one are refused, the CA's accepted",
      async () => {
        const none = await exchange(port, "m.test", pki, {}, "secret");
        assert.notEqual(none.answer, "echo:secret", JSON.stringify(none));
        const foreign = await exchange(port, "m.test", pki, pki.foreign, "secret");
        assert.notEqual(foreign.answer, "echo:secret", JSON.stringify(foreign));
        assert.ok(!foreign.answer, "nothing reaches the backend for a foreign certificate");
        const good = await exchange(port, "m.test", pki, pki.client, "secret");
        assert.equal(good.answer, "echo:secret", JSON.stringify(good));
      },
    );

    await t.step(
      "sniStrict: a name without its own certificate is refused instead of getting the default one",
      async () => {
        const strict = await exchange(
          port,
          "nocert.test",
          pki,
          { rejectUnauthorized: false },
          "hi",
        );
        assert.equal(strict.protocol, undefined, JSON.stringify(strict));
        const lenient = await exchange(
          port,
          "nocert2.test",
          pki,
          { rejectUnauthorized: false },
          "hi",
        );
        assert.equal(lenient.answer, "echo:hi", JSON.stringify(lenient));
      },
    );

    await t.step("openssl s_client -tls1_2 is refused under VersionTLS13", async () => {
      const out = await new Deno.Command("openssl", {
        args: [
          "s_client",
          "-connect",
          `127.0.0.1:${port}`,
          "-servername",
          "v13.test",
          "-CAfile",
          `${pki.dir}/ca.pem`,
          "-tls1_2",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.doesNotMatch(text, /Cipher is (?!\(NONE\))/, text);
      assert.notEqual(out.code, 0, text);
    });
  } finally {
    await proxy.close();
    echo.close();
    await Deno.remove(pki.dir, { recursive: true });
  }
});

/** One HTTP/1.1 request over a node:tls connection; the status line, or why there was none. */
async function httpsGet(
  port: number,
  host: string,
  pki: Pki,
  options: tls.ConnectionOptions,
): Promise<Outcome> {
  return await exchange(
    port,
    host,
    pki,
    options,
    `GET /who HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    false,
  );
}

const CLIENT_AUTH_TYPES = [
  "NoClientCert",
  "RequestClientCert",
  "RequireAnyClientCert",
  "VerifyClientCertIfGiven",
  "RequireAndVerifyClientCert",
];

/** What Go's crypto/tls does per type, for (no certificate, the CA's, a foreign one): served or refused. */
const EXPECTED: Record<string, [boolean, boolean, boolean]> = {
  NoClientCert: [true, true, true],
  RequestClientCert: [true, true, true],
  RequireAnyClientCert: [false, true, true],
  VerifyClientCertIfGiven: [true, true, false],
  RequireAndVerifyClientCert: [false, true, false],
};

const HOSTS: Record<string, string> = {
  NoClientCert: "open.test",
  RequestClientCert: "req.test",
  RequireAnyClientCert: "any.test",
  VerifyClientCertIfGiven: "ifgiven.test",
  RequireAndVerifyClientCert: "verify.test",
};

function httpsMutualConfig(pki: Pki, backend: string): string {
  let toml = `
[http.services.who.loadBalancer]
[[http.services.who.loadBalancer.servers]]
url = "${backend}"
[[tls.certificates]]
certFile = "${pki.dir}/edge.pem"
keyFile = "${pki.dir}/edge.key"
`;
  for (const type of CLIENT_AUTH_TYPES) {
    toml += `
[http.routers.${type}]
rule = "Host(\`${HOSTS[type]}\`)"
service = "who"
entryPoints = ["edge"]
tls = { options = "${type}" }
[tls.options.${type}.clientAuth]
clientAuthType = "${type}"
caFiles = ["${pki.dir}/ca.pem"]
`;
  }
  return toml;
}

for (const entryPointTls of [true, false]) {
  Deno.test(`HTTPS routers with clientAuth, every clientAuthType (${entryPointTls ? "entrypoint http.tls" : "router tls on a plain entrypoint"})`, async (t) => {
    const pki = await makeFixturePki();
    const backend = await startEchoBackend("who");
    const proxy = await startTestProxy({
      entryPoints: ["edge"],
      entryPointExtra: entryPointTls ? { edge: `[entryPoints.edge.http.tls]\n` } : {},
      dynamic: httpsMutualConfig(pki, backend.url),
    });
    const port = proxy.port("edge");
    try {
      for (const type of CLIENT_AUTH_TYPES) {
        await t.step(type, async () => {
          const [none, ok, foreign] = EXPECTED[type];
          for (
            const [label, opts, served] of [["no certificate", {}, none], [
              "the CA's certificate",
              pki.client,
              ok,
            ], ["a foreign certificate", pki.foreign, foreign]] as const
          ) {
            const got = await httpsGet(port, HOSTS[type], pki, opts);
            if (served) {
              assert.match(
                got.answer ?? "",
                /^HTTP\/1\.1 200 /,
                `${type} with ${label}: ${JSON.stringify(got)}`,
              );
            } else {assert.doesNotMatch(
                got.answer ?? "",
                /^HTTP\/1\.1 /,
                `${type} with ${label} must be refused: ${JSON.stringify(got)}`,
              );}
          }
        });
      }
      await t.step(
        "curl with the client certificate gets HTTP/1.1 from a RequireAndVerifyClientCert name",
        async () => {
          const out = await new Deno.Command("curl", {
            args: [
              "-sS",
              "--cacert",
              `${pki.dir}/ca.pem`,
              "--cert",
              `${pki.dir}/client.pem`,
              "--key",
              `${pki.dir}/client.key`,
              "--resolve",
              `verify.test:${port}:127.0.0.1`,
              "-o",
              "/dev/null",
              "-w",
              "%{http_code} %{http_version}",
              `https://verify.test:${port}/who`,
            ],
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.equal(
            new TextDecoder().decode(out.stdout),
            "200 1.1",
            new TextDecoder().decode(out.stderr),
          );
          const refused = await new Deno.Command("curl", {
            args: [
              "-sS",
              "--cacert",
              `${pki.dir}/ca.pem`,
              "--resolve",
              `verify.test:${port}:127.0.0.1`,
              "-o",
              "/dev/null",
              "-w",
              "%{http_code}",
              `https://verify.test:${port}/who`,
            ],
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.notEqual(new TextDecoder().decode(refused.stdout), "200");
        },
      );
    } finally {
      await proxy.close();
      await backend.close();
      await Deno.remove(pki.dir, { recursive: true });
    }
  });
}
