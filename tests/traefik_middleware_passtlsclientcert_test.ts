/**
 * Traefik's passTLSClientCert test table (tests/data/traefik_mw_passtlsclientcert.json),
 * twice: the header formatting over Traefik's own test certificates, and
 * end to end over real mutual-TLS connections to Portico. Traefik's
 * certificates come without their keys, so for the second the client
 * presents copies made with fresh keys that keep every field the
 * middleware reads (subject and issuer names in their order, serial,
 * validity, alternative names); Traefik's expected headers apply to them
 * unchanged.
 */

import assert from "node:assert/strict";
import tls from "node:tls";
import * as x509 from "@peculiar/x509";
import { startTestProxy } from "./fixtures/proxy.ts";
import { startEchoBackend } from "./fixtures/backend.ts";
import { makePki, makeServerCert } from "./fixtures/pki.ts";
import {
  certificateInfo,
  goQueryEscape,
  type InfoFields,
  pemHeader,
} from "../lib/middlewares/pass_tls_client_cert/cert_info.ts";

interface Case {
  desc: string;
  certs: string[];
  config: { pem?: boolean; info?: Record<string, unknown> };
}
interface Table {
  certificates: Record<string, string>;
  pemCases: (Case & { header: boolean })[];
  infoCases: (Case & { expected: string | null })[];
}

const table: Table = JSON.parse(
  Deno.readTextFileSync(new URL("./data/traefik_mw_passtlsclientcert.json", import.meta.url)),
);

function derOf(pem: string): Uint8Array {
  const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

/** Traefik's getCleanCertContents: the PEM without armour and line breaks. */
function cleaned(pems: string[]): string {
  return pems.map((p) => p.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\n/g, ""))
    .join(",");
}

/** The table's config as the fields the formatter takes (absent booleans are false, as in Go). */
function fieldsOf(info: Record<string, unknown>): InfoFields {
  const b = (o: Record<string, unknown> | undefined, k: string) => o?.[k] === true;
  const dn = (o: unknown) => {
    if (o === undefined) return undefined;
    const r = o as Record<string, unknown>;
    return {
      commonName: b(r, "commonName"),
      country: b(r, "country"),
      domainComponent: b(r, "domainComponent"),
      locality: b(r, "locality"),
      organization: b(r, "organization"),
      organizationalUnit: b(r, "organizationalUnit"),
      province: b(r, "province"),
      serialNumber: b(r, "serialNumber"),
    };
  };
  return {
    notAfter: b(info, "notAfter"),
    notBefore: b(info, "notBefore"),
    sans: b(info, "sans"),
    serialNumber: b(info, "serialNumber"),
    subject: dn(info.subject),
    issuer: dn(info.issuer),
  };
}

Deno.test("passTLSClientCert formatting: Traefik's table over Traefik's certificates", async (t) => {
  for (const c of table.infoCases.filter((c) => c.certs.length && c.config.info)) {
    await t.step(c.desc, () => {
      const ders = c.certs.map((n) => derOf(table.certificates[n]));
      assert.equal(certificateInfo(x509, ders, fieldsOf(c.config.info!)), c.expected ?? "");
    });
  }
  for (const c of table.pemCases.filter((c) => c.header)) {
    await t.step(`pem: ${c.desc}`, () => {
      const pems = c.certs.map((n) => table.certificates[n]);
      assert.equal(pemHeader(pems.map(derOf)), cleaned(pems));
    });
  }
  await t.step("Go's url.QueryEscape", () => {
    assert.equal(
      goQueryEscape(`Subject="C=FR, O=A*B";(x)!'~`),
      "Subject%3D%22C%3DFR%2C+O%3DA%2AB%22%3B%28x%29%21%27~",
    );
  });
});

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

function pemOf(label: string, der: ArrayBuffer): string {
  const b64 = btoa(String.fromCharCode(...new Uint8Array(der)));
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

/** A copy of `pem` with a fresh key: same names, serial, validity and alternative names. */
async function remint(pem: string, signer: CryptoKeyPair): Promise<{ cert: string; key: string }> {
  const original = new x509.X509Certificate(pem);
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
  const san = original.getExtension(x509.SubjectAlternativeNameExtension);
  const copy = await x509.X509CertificateGenerator.create({
    serialNumber: original.serialNumber,
    subject: original.subjectName,
    issuer: original.issuerName,
    notBefore: original.notBefore,
    notAfter: original.notAfter,
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: signer.privateKey,
    extensions: san ? [san] : [],
  });
  return {
    cert: copy.toString("pem") + "\n",
    key: pemOf("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
  };
}

Deno.test("passTLSClientCert over real mutual TLS: Traefik's table, end to end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-passtls-" });
  await makePki(dir);
  await makeServerCert(dir, "edge", ["*.mw.test"]);
  const signer = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
  const minted: Record<string, { cert: string; key: string }> = {};
  for (const [name, pem] of Object.entries(table.certificates)) {
    minted[name] = await remint(pem, signer);
  }
  const backend = startEchoBackend("b");
  const cases = [
    ...table.pemCases.map((c) => ({ ...c, kind: "pem" as const })),
    ...table.infoCases.map((c) => ({ ...c, kind: "info" as const })),
  ];
  let toml = `
[http.services.b.loadBalancer]
[[http.services.b.loadBalancer.servers]]
url = "${backend.url}"
[[tls.certificates]]
certFile = "${dir}/edge.pem"
keyFile = "${dir}/edge.key"
[tls.options.default.clientAuth]
clientAuthType = "RequestClientCert"
`;
  cases.forEach((c, i) => {
    toml += `
[http.routers.c${i}]
rule = "Host(\`c${i}.mw.test\`)"
service = "b"
middlewares = ["m${i}"]
tls = {}
[http.middlewares.m${i}.passTLSClientCert]
`;
    if (c.config.pem !== undefined) toml += `pem = ${c.config.pem}\n`;
    if (c.config.info) {
      toml += tomlTable(`http.middlewares.m${i}.passTLSClientCert.info`, c.config.info);
    }
  });
  const proxy = await startTestProxy({
    entryPoints: ["edge"],
    entryPointExtra: { edge: "[entryPoints.edge.http.tls]\n" },
    dynamic: toml,
  });
  const port = proxy.port("edge");
  try {
    const failed: string[] = [];
    for (const [i, c] of cases.entries()) {
      const chain = c.certs.map((n) => minted[n]);
      const headers = await requestHeaders(
        port,
        `c${i}.mw.test`,
        await Deno.readTextFile(`${dir}/ca.pem`),
        chain,
      );
      const pemGot = headers["x-forwarded-tls-client-cert"];
      const infoGot = headers["x-forwarded-tls-client-cert-info"];
      if (c.kind === "pem") {
        const want = c.header ? cleaned(chain.map((m) => m.cert.trim())) : undefined;
        if (pemGot !== want) failed.push(`${c.desc} (pem): got ${pemGot}, want ${want}`);
      } else {
        const want = c.expected ?? undefined;
        const got = infoGot === undefined
          ? undefined
          : decodeURIComponent(infoGot.replace(/\+/g, " "));
        if ((got || undefined) !== want) failed.push(`${c.desc} (info): got ${got}, want ${want}`);
      }
    }
    assert.deepEqual(failed, []);

    // Without a certificate, a client-sent header is removed rather than forwarded.
    const forged = await requestHeaders(
      port,
      `c${cases.findIndex((c) => c.kind === "pem" && c.config.pem && !c.certs.length)}.mw.test`,
      await Deno.readTextFile(`${dir}/ca.pem`),
      [],
      {
        "X-Forwarded-Tls-Client-Cert": "forged",
      },
    );
    assert.equal(forged["x-forwarded-tls-client-cert"], undefined);
  } finally {
    await proxy.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A TOML table (and its sub-tables) for a flat-or-nested object of booleans. */
function tomlTable(path: string, o: Record<string, unknown>): string {
  let out = `[${path}]\n`;
  const nested: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v && typeof v === "object") {
      nested.push(tomlTable(`${path}.${k}`, v as Record<string, unknown>));
    } else out += `${k} = ${JSON.stringify(v)}\n`;
  }
  return out + nested.join("");
}

/** GET over node:tls presenting `chain` (leaf first); the headers the backend saw. */
function requestHeaders(
  port: number,
  host: string,
  ca: string,
  chain: { cert: string; key: string }[],
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    let got = "";
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: host,
      ca: [ca],
      ...(chain.length ? { cert: chain.map((c) => c.cert).join(""), key: chain[0].key } : {}),
    }, () => {
      const lines = Object.entries(extra).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      socket.write(`GET /echo HTTP/1.1\r\nHost: ${host}\r\n${lines}Connection: close\r\n\r\n`);
    });
    const timer = setTimeout(() => socket.destroy(new Error(`no answer from ${host}`)), 10_000);
    socket.on("data", (b: Uint8Array) => (got += new TextDecoder().decode(b)));
    socket.on("end", () => {
      clearTimeout(timer);
      const body = got.slice(got.indexOf("\r\n\r\n") + 4);
      try {
        resolve(JSON.parse(body).headers);
      } catch {
        reject(new Error(`${host}: not an echo: ${got.slice(0, 300)}`));
      }
    });
    socket.on("error", (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
