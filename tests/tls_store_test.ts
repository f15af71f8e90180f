import assert from "node:assert/strict";
import { parseCertificate, type StoredCertificate } from "../lib/tls/certificate.ts";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";
import { CertificateStore } from "../lib/tls/store.ts";

async function cert(names: string[], source = "file", days = 30): Promise<StoredCertificate> {
  const { certPem, keyPem } = await generateSelfSigned({
    commonName: names[0],
    dnsNames: names,
    days,
  });
  return parseCertificate(names.join(","), certPem, keyPem, source);
}

const def = await cert(["default.invalid"], "default");
const a = await cert(["a.test", "www.a.test"]);
const wild = await cert(["*.w.test"]);
const deep = await cert(["x.w.test"]);

Deno.test("SNI selection: exact, then one-level wildcard, then default", () => {
  const store = new CertificateStore(def);
  store.replaceSource("file", [a, wild, deep]);
  const table: [string, StoredCertificate, string][] = [
    ["a.test", a, "exact"],
    ["WWW.A.TEST", a, "exact"],
    ["a.test.", a, "exact"],
    ["x.w.test", deep, "exact"],
    ["y.w.test", wild, "wildcard"],
    ["z.y.w.test", def, "default"], // wildcards cover one level only
    ["w.test", def, "default"],
    ["", def, "default"],
    ["other.test", def, "default"],
  ];
  for (const [sni, want, via] of table) {
    const got = store.select(sni);
    assert.equal(got.kind, "certificate", sni);
    if (got.kind !== "certificate") continue;
    assert.equal(got.pair.cert, want.certPem, `certificate for "${sni}"`);
    assert.equal(got.via, via, `via for "${sni}"`);
  }
});

Deno.test("sources replace independently; the longest-valid certificate of a name wins", async () => {
  const store = new CertificateStore(def);
  const longer = await cert(["a.test"], "acme:le", 90);
  let changes = 0;
  store.onChange(() => changes++);
  store.replaceSource("file", [a]);
  store.replaceSource("acme:le", [longer]);
  assert.equal(store.lookup("a.test")?.certificate, longer);
  store.replaceSource("acme:le", []);
  assert.equal(store.lookup("a.test")?.certificate, a);
  store.replaceSource("file", []);
  assert.equal(store.lookup("a.test"), undefined);
  assert.equal(changes, 4);
});

Deno.test("sniStrict and fail-closed policies refuse; challenge certificates win", async () => {
  const store = new CertificateStore(def);
  store.replaceSource("file", [a]);
  store.setPolicy((name) =>
    name === "locked.test"
      ? { sniStrict: false, refuse: "clientAuth not supported" }
      : { sniStrict: true }
  );
  assert.equal(store.select("a.test").kind, "certificate");
  assert.equal(store.select("b.test").kind, "refuse");
  assert.equal(store.select("locked.test").kind, "refuse");
  const challenge = await generateSelfSigned({ dnsNames: ["b.test"] });
  store.setChallengeCertificate("b.test", { cert: challenge.certPem, key: challenge.keyPem });
  const got = store.select("b.test");
  assert.equal(got.kind === "certificate" && got.via, "challenge");
  store.setChallengeCertificate("b.test", undefined);
  assert.equal(store.select("b.test").kind, "refuse");
});

Deno.test("parseCertificate names the field on bad input", () => {
  assert.throws(
    () => parseCertificate("tls.certificates[2]", "nope", a.keyPem, "file"),
    /tls\.certificates\[2\]: expected a PEM CERTIFICATE/,
  );
  assert.throws(
    () => parseCertificate("tls.certificates[2]", a.certPem, "nope", "file"),
    /tls\.certificates\[2\]: expected a PEM PRIVATE KEY/,
  );
  const broken = a.certPem.replace(/\n[A-Za-z0-9+/]{20}/, "\nAAAAAAAAAAAAAAAAAAAA");
  assert.throws(
    () => parseCertificate("k", broken, a.keyPem, "file"),
    /k: certificate is not valid X\.509/,
  );
});
