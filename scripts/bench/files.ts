/**
 * The benchmark's scratch files: a self-signed EC P-256 certificate (for
 * `bench.local`, `*.bench.local` and 127.0.0.1), the combined PEM HAProxy
 * wants, and the 100 KB body the backend serves.
 *
 * @module
 */

import { type BenchFiles, BIG_BODY_BYTES } from "./configs.ts";
import { run } from "./procs.ts";

/** Creates every file under `dir` (which must exist) and returns their paths. */
export async function prepareFiles(dir: string): Promise<BenchFiles> {
  const files: BenchFiles = {
    dir,
    wwwDir: `${dir}/www`,
    certFile: `${dir}/cert.pem`,
    keyFile: `${dir}/key.pem`,
    pemFile: `${dir}/cert_key.pem`,
  };
  await Deno.mkdir(files.wwwDir, { recursive: true });
  const out = await run([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "30",
    "-subj",
    "/CN=bench.local",
    "-addext",
    "subjectAltName=DNS:bench.local,DNS:*.bench.local,IP:127.0.0.1",
    // A leaf, not a CA: rustls (Deno's readiness probe) rejects a CA used as a server cert.
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "extendedKeyUsage=serverAuth",
    "-keyout",
    files.keyFile,
    "-out",
    files.certFile,
  ]);
  if (out.code !== 0) {
    throw new Error(`openssl could not make the benchmark certificate: ${out.stderr.trim()}`);
  }
  const cert = await Deno.readTextFile(files.certFile);
  const key = await Deno.readTextFile(files.keyFile);
  await Deno.writeTextFile(files.pemFile, cert + key);
  // Bytes that do not compress, so a compressing peer gains nothing.
  const big = new Uint8Array(BIG_BODY_BYTES);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  await Deno.writeFile(`${files.wwwDir}/big`, big);
  return files;
}
