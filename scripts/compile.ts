/**
 * `deno task compile`: builds `dist/portico`, a standalone executable.
 *
 * Two routes, both starting from the bundle (`scripts/bundle.ts`):
 *
 * - **`deno compile`**, when `DENORT_BIN` names a Deno runtime binary
 *   (`denort`, from the `denort-<target>.zip` release asset of the same Deno
 *   version). `deno compile` downloads denort from dl.deno.land otherwise,
 *   which a machine without internet cannot do.
 * - **The launcher** (default without `DENORT_BIN`, or with `--launcher`):
 *   a small C program (`scripts/launcher/launcher.c`, built with the system
 *   `cc`) followed by this machine's Deno binary and the bundle. On its first
 *   run it unpacks both into a private cache directory and then execs
 *   `deno run` on the bundle; later runs exec at once. Everything comes from
 *   this machine, so it builds offline.
 *
 * ```sh
 * deno task compile                          # launcher route
 * DENORT_BIN=/opt/denort deno task compile   # deno compile route
 * PORTICO_DENO_BIN=/path/to/deno deno task compile   # embed another Deno
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { bundle, formatSize } from "./bundle.ts";

const repoRoot = new URL("../", import.meta.url).pathname;

/** Must match `MAGIC` and `struct trailer` in launcher.c. */
const MAGIC = "PORTICO-PAYLOAD1";
const TRAILER_SIZE = 64;

/** What {@link compile} produced. */
export interface CompileResult {
  path: string;
  size: number;
  route: "deno-compile" | "launcher";
}

/** Options for {@link compile}. */
export interface CompileOptions {
  /** Output executable; default `dist/portico`. */
  outFile?: string;
  /** Force the launcher route even when `DENORT_BIN` is set. */
  launcher?: boolean;
  /** Deno binary to embed (launcher route); default `PORTICO_DENO_BIN` or the running Deno. */
  denoBin?: string;
  quiet?: boolean;
}

/**
 * The 64-byte trailer launcher.c reads: four little-endian u64 (deno offset
 * and size, bundle offset and size), a 16-char hash, the magic. Pure.
 */
export function encodeTrailer(
  parts: {
    denoOffset: number;
    denoSize: number;
    bundleOffset: number;
    bundleSize: number;
    hash: string;
  },
): Uint8Array {
  if (!/^[0-9a-f]{16}$/.test(parts.hash)) {
    throw new Error(`trailer hash must be 16 hex digits, got "${parts.hash}"`);
  }
  const out = new Uint8Array(TRAILER_SIZE);
  const view = new DataView(out.buffer);
  [parts.denoOffset, parts.denoSize, parts.bundleOffset, parts.bundleSize].forEach((v, i) =>
    view.setBigUint64(i * 8, BigInt(v), true)
  );
  out.set(new TextEncoder().encode(parts.hash), 32);
  out.set(new TextEncoder().encode(MAGIC), 48);
  return out;
}

async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    env,
    cwd: repoRoot,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${text}`);
  }
}

async function hashFiles(paths: string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const path of paths) {
    using file = await Deno.open(path);
    for await (const chunk of file.readable) hash.update(chunk);
  }
  return hash.digest("hex").slice(0, 16);
}

async function appendFile(out: Deno.FsFile, path: string): Promise<void> {
  using file = await Deno.open(path);
  for await (const chunk of file.readable) {
    for (let written = 0; written < chunk.length;) {
      written += await out.write(chunk.subarray(written));
    }
  }
}

async function compileWithDenort(
  bundlePath: string,
  outFile: string,
  denort: string,
): Promise<void> {
  const info = await Deno.stat(denort).catch(() => undefined);
  if (!info?.isFile) {
    throw new Error(
      `DENORT_BIN=${denort} is not a file; unpack denort-<target>.zip of Deno ${Deno.version.deno} ` +
        `and point DENORT_BIN at the denort binary, or unset it to build with the launcher`,
    );
  }
  await run(Deno.execPath(), [
    "compile",
    "-A",
    "--unstable-net",
    "--no-config",
    "--no-lock",
    "--no-check",
    "--output",
    outFile,
    bundlePath,
  ], { DENORT_BIN: denort });
}

async function compileWithLauncher(
  bundlePath: string,
  outFile: string,
  denoBin: string,
): Promise<void> {
  const buildDir = `${repoRoot}.portico-cache/compile`;
  await Deno.mkdir(buildDir, { recursive: true });
  const launcher = `${buildDir}/launcher`;
  const cc = Deno.env.get("CC") ?? "cc";
  try {
    await run(cc, ["-O2", "-s", "-Wall", "-o", launcher, `${repoRoot}scripts/launcher/launcher.c`]);
  } catch (err) {
    throw new Error(
      `building the launcher needs a C compiler (${cc}; set CC to choose one): ${
        (err as Error).message
      }`,
    );
  }
  const deno = await Deno.realPath(denoBin);
  const launcherSize = (await Deno.stat(launcher)).size;
  const denoSize = (await Deno.stat(deno)).size;
  const bundleSize = (await Deno.stat(bundlePath)).size;
  const trailer = encodeTrailer({
    denoOffset: launcherSize,
    denoSize,
    bundleOffset: launcherSize + denoSize,
    bundleSize,
    hash: await hashFiles([deno, bundlePath]),
  });
  const tmp = `${outFile}.tmp-${Deno.pid}`;
  try {
    {
      using out = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o755 });
      for (const part of [launcher, deno, bundlePath]) await appendFile(out, part);
      await out.write(trailer);
    }
    await Deno.chmod(tmp, 0o755);
    await Deno.rename(tmp, outFile);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Builds the bundle, then the executable.
 *
 * @example
 * ```ts
 * const { path, size, route } = await compile({ quiet: true });
 * ```
 */
export async function compile(options: CompileOptions = {}): Promise<CompileResult> {
  const outFile = options.outFile ?? `${repoRoot}dist/portico`;
  const built = await bundle({ quiet: options.quiet });
  const denort = Deno.env.get("DENORT_BIN");
  let route: CompileResult["route"];
  if (denort && !options.launcher) {
    route = "deno-compile";
    await compileWithDenort(built.path, outFile, denort);
  } else {
    route = "launcher";
    const denoBin = options.denoBin ?? Deno.env.get("PORTICO_DENO_BIN") ?? Deno.execPath();
    await compileWithLauncher(built.path, outFile, denoBin);
  }
  const { size } = await Deno.stat(outFile);
  if (!options.quiet) console.log(`${outFile}  ${formatSize(size)}  (${route})`);
  return { path: outFile, size, route };
}

if (import.meta.main) {
  try {
    await compile({ launcher: Deno.args.includes("--launcher") });
  } catch (err) {
    console.error(`compile: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
