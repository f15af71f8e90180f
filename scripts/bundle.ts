/**
 * `deno task bundle`: builds `dist/portico.js`, one ES module holding Portico
 * and every npm dependency, so an operator can copy one file to a VM and run
 * `deno run -A portico.js --configFile=portico.toml`.
 *
 * How: esbuild (npm) cannot read Deno's npm cache layout, and JSR (for
 * `@luca/esbuild-deno-loader`) is out of reach, so the script materialises a
 * `node_modules` tree in `.portico-cache/bundle/` with `deno install`, from
 * deno.json's `npm:` imports and a copy of deno.lock, so the bundle holds the
 * exact versions `mod.ts` runs with and works offline once Deno's cache is
 * warm. esbuild then resolves bare imports there.
 *
 * Two things need care in a single file:
 * - CommonJS dependencies call `require("fs")` and read `__dirname`; a banner
 *   supplies both from `import.meta.url`.
 * - etcd3 loads `proto/rpc.proto` from disk when it is imported. The plugin
 *   below parses the protos at build time and embeds them as JSON fed to
 *   `@grpc/proto-loader`'s `fromJSON`, so the bundle never reads them.
 *
 * ```sh
 * deno task bundle            # → dist/portico.js
 * deno task bundle --minify   # smaller, harder to read stack traces
 * ```
 *
 * @module
 */

import * as esbuild from "esbuild";
import { builtinModules, createRequire } from "node:module";

const repoRoot = new URL("../", import.meta.url).pathname;

/** What {@link bundle} produced. */
export interface BundleResult {
  /** Absolute path of the bundle. */
  path: string;
  /** Size in bytes. */
  size: number;
}

/** Options for {@link bundle}. */
export interface BundleOptions {
  /** Entry module; default the repo's `mod.ts`. */
  entryPoint?: string;
  /** Output file; default `dist/portico.js` in the repo. */
  outFile?: string;
  /** Minify whitespace and syntax (identifiers stay readable). */
  minify?: boolean;
  /** Print nothing (tests). */
  quiet?: boolean;
}

/** npm packages in deno.json that never reach the runtime graph. */
const BUILD_ONLY = new Set(["esbuild"]);

/**
 * Turns deno.json `imports` into package.json `dependencies`
 * (`"etcd3": "npm:etcd3@1.1.2"` → `"etcd3": "1.1.2"`). Pure.
 *
 * @example
 * ```ts
 * npmDependencies({ "hono": "npm:hono@4.13.19", "hono/": "npm:/hono@4.13.19/" });
 * // → { hono: "4.13.19" }
 * ```
 */
export function npmDependencies(imports: Record<string, string>): Record<string, string> {
  const deps: Record<string, string> = {};
  for (const [key, target] of Object.entries(imports)) {
    // "hono/" style prefix entries point at a package already listed.
    if (key.endsWith("/")) continue;
    const m = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)@([^/]+)$/.exec(target);
    if (!m) continue;
    const [, name, version] = m;
    if (BUILD_ONLY.has(name)) continue;
    deps[name] = version;
  }
  return deps;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`${cmd} ${args.join(" ")} failed in ${cwd}:\n${text}`);
  }
}

/** Materialises `node_modules` for the bundle; returns its path. */
async function installDependencies(cacheDir: string): Promise<string> {
  const denoJson = JSON.parse(await Deno.readTextFile(`${repoRoot}deno.json`));
  const dependencies = npmDependencies(denoJson.imports ?? {});
  await Deno.mkdir(cacheDir, { recursive: true });
  await Deno.writeTextFile(
    `${cacheDir}/package.json`,
    JSON.stringify({ private: true, name: "portico-bundle-deps", dependencies }, null, 2) + "\n",
  );
  // Its own deno.json makes this directory a project of its own rather than
  // a stray package.json under the repo's config.
  await Deno.writeTextFile(
    `${cacheDir}/deno.json`,
    JSON.stringify({ nodeModulesDir: "auto" }) + "\n",
  );
  // The repo's lock pins transitive versions too.
  await Deno.copyFile(`${repoRoot}deno.lock`, `${cacheDir}/deno.lock`);
  await run(Deno.execPath(), ["install", "--quiet"], cacheDir);
  return `${cacheDir}/node_modules`;
}

/**
 * etcd3's protos as a protobufjs JSON tree, parsed exactly as etcd3's
 * `loadSync(..., { keepCase: true })` would parse them.
 */
function etcdProtoJson(nodeModules: string): string {
  const requireFromEtcd = createRequire(
    `${Deno.realPathSync(`${nodeModules}/etcd3`)}/lib/index.js`,
  );
  const loaderDir = requireFromEtcd.resolve("@grpc/proto-loader").replace(/index\.js$/, "");
  const requireFromLoader = createRequire(loaderDir);
  const util = requireFromLoader("./util.js") as {
    loadProtosWithOptionsSync(
      file: string,
      options: Record<string, unknown>,
    ): { toJSON(): unknown };
  };
  const root = util.loadProtosWithOptionsSync(
    `${Deno.realPathSync(`${nodeModules}/etcd3`)}/proto/rpc.proto`,
    { keepCase: true },
  );
  return JSON.stringify(root.toJSON());
}

/** Rewrites etcd3's proto file load into `fromJSON` on an embedded tree. */
function etcdProtoPlugin(nodeModules: string): esbuild.Plugin {
  return {
    name: "portico-etcd3-protos",
    setup(build) {
      build.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
        const source = await Deno.readTextFile(args.path);
        const call = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`,/;
        if (!call.test(source)) {
          // Fail the build rather than ship a bundle that reads a missing file.
          throw new Error(
            `${args.path}: etcd3 no longer loads proto/rpc.proto the way scripts/bundle.ts expects; update etcdProtoPlugin`,
          );
        }
        const contents = `const __porticoEtcdProtos = ${etcdProtoJson(nodeModules)};\n` +
          source.replace(call, "(0, proto_loader_1.fromJSON)(__porticoEtcdProtos,");
        return { contents, loader: "js" };
      });
    },
  };
}

/**
 * The OTLP/gRPC exporter loads @grpc/grpc-js through its own
 * `createRequire` (`__require("@grpc/grpc-js")`), which esbuild cannot
 * follow and the lone bundle cannot satisfy at run time: made a plain
 * `require` so the package is bundled.
 */
function otlpGrpcRequirePlugin(): esbuild.Plugin {
  return {
    name: "portico-otlp-grpc-require",
    setup(build) {
      build.onLoad({ filter: /[\\/]otlp-grpc-exporter-base[\\/]dist[\\/].*\.mjs$/ }, async (args) => {
        const source = await Deno.readTextFile(args.path);
        return { contents: source.replaceAll('__require("@grpc/grpc-js")', 'require("@grpc/grpc-js")'), loader: "js" };
      });
    },
  };
}

/**
 * Rewrites bare Node builtins (`import "crypto"`) to `node:crypto`: Deno
 * resolves bare names only as npm packages, and fails on them under
 * `--no-npm`, which the standalone launcher uses.
 */
function nodeBuiltinsPlugin(): esbuild.Plugin {
  const names = builtinModules.filter((m) => !m.startsWith("_")).map((m) =>
    m.replace(/[/]/g, "\\/")
  );
  const filter = new RegExp(`^(${names.join("|")})$`);
  return {
    name: "portico-node-builtins",
    setup(build) {
      build.onResolve({ filter }, (args) => ({ path: `node:${args.path}`, external: true }));
    },
  };
}

// CommonJS code in the bundle calls require() for Node builtins and reads
// __dirname; an ES module has neither, so derive them from import.meta.url.
const BANNER = [
  `import { createRequire as __porticoCreateRequire } from "node:module";`,
  `import { fileURLToPath as __porticoFileURLToPath } from "node:url";`,
  `const require = __porticoCreateRequire(import.meta.url);`,
  `const __porticoFilename = __porticoFileURLToPath(import.meta.url);`,
  `const __porticoDirname = __porticoFilename.slice(0, __porticoFilename.lastIndexOf("/"));`,
].join("\n");

/**
 * Builds the single-file bundle.
 *
 * @example
 * ```ts
 * const { path, size } = await bundle({ quiet: true });
 * ```
 */
export async function bundle(options: BundleOptions = {}): Promise<BundleResult> {
  const outFile = options.outFile ?? `${repoRoot}dist/portico.js`;
  const nodeModules = await installDependencies(`${repoRoot}.portico-cache/bundle`);
  try {
    const result = await esbuild.build({
      entryPoints: [options.entryPoint ?? `${repoRoot}mod.ts`],
      outfile: outFile,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "esnext",
      nodePaths: [nodeModules],
      // Dashboard assets, should a module import them as text.
      loader: { ".html": "text", ".css": "text", ".svg": "text", ".proto": "text" },
      banner: { js: BANNER },
      define: { __dirname: "__porticoDirname", __filename: "__porticoFilename" },
      minifySyntax: options.minify ?? false,
      minifyWhitespace: options.minify ?? false,
      legalComments: "eof",
      logLevel: options.quiet ? "silent" : "warning",
      plugins: [nodeBuiltinsPlugin(), etcdProtoPlugin(nodeModules), otlpGrpcRequirePlugin()],
      metafile: false,
    });
    if (result.errors.length) {
      throw new Error(`esbuild failed: ${result.errors.map((e) => e.text).join("; ")}`);
    }
  } finally {
    await esbuild.stop();
  }
  const { size } = await Deno.stat(outFile);
  if (!options.quiet) console.log(`${outFile}  ${formatSize(size)}`);
  return { path: outFile, size };
}

/** "3.4 MiB (3565012 bytes)". */
export function formatSize(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return `${
    mib >= 1 ? `${mib.toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`
  } (${bytes} bytes)`;
}

if (import.meta.main) {
  try {
    await bundle({ minify: Deno.args.includes("--minify") });
  } catch (err) {
    console.error(`bundle: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
