/**
 * The commands behind `mod.ts`. User errors print one line and return 1;
 * only bugs print a stack trace.
 *
 * @module
 */

import { ConfigError } from "../config/errors.ts";
import { findStaticConfigFile, loadStaticFile } from "../config/load.ts";
import type { StaticConfig } from "../config/types.ts";
import { startServer, StartupError } from "../server/server.ts";
import { startMemoryRelease } from "../server/memory_release.ts";
import { VERSION } from "../version.ts";
import { parseArgs } from "./args.ts";
import { type AppliedOverride, applyOverrides, relabelIssues } from "./overrides.ts";
import { validateStatic } from "../config/static.ts";

const HELP: Record<string, string> = {
  serve: `portico [serve] [--configFile=FILE] [--KEY=VALUE ...]

Starts the proxy. The static config is read from --configFile, else
./portico.toml, else ./traefik.toml. Any static option can be overridden
Traefik-style by a flag or an environment variable (flags win):
  --entryPoints.web.address=:8000    PORTICO_ENTRYPOINTS_WEB_ADDRESS=:8000
  --api.insecure=true                PORTICO_API_INSECURE=true
  --metrics.prometheus               PORTICO_METRICS_PROMETHEUS=true`,
  check: `portico check [--configFile=FILE] [--kv-required] [--KEY=VALUE ...]

Validates the static config and the dynamic config of the file provider and
of every KV provider (rules, services, middlewares), prints every error as
FILE:LINE: KEY: MESSAGE (or STORE: KEY: MESSAGE) with a hint,
and exits 0 if valid, 1 if not. A KV store that cannot be reached is a
warning saying its configuration went unchecked; with --kv-required it is
an error.`,
  storeconfig: `portico storeconfig [--configFile=FILE] [--keep] [--dry-run]

Writes the file provider's dynamic configuration into the configured KV
store (etcd, Redis or Consul) in Traefik v3's key layout, in one transaction
where the store allows. Keys under the root that the new configuration no
longer has are removed unless --keep is given. --dry-run prints the changes
and writes nothing.`,
  version: `portico version

Prints the version.`,
};

const USAGE = `portico ${VERSION}: a Traefik-compatible edge router

Commands:
  serve (default)  run the proxy
  check            validate configuration
  storeconfig      upload the file provider's dynamic config into the KV store
  version          print the version

Run 'portico COMMAND --help' for a command's options.`;

async function loadStatic(flags: Map<string, string>): Promise<StaticConfig> {
  const file = await findStaticConfigFile(flags.get("configFile") ?? flags.get("configfile"));
  const env = Deno.env.toObject();
  let applied: AppliedOverride[] = [];
  const transform = (raw: Record<string, unknown>) => {
    const result = applyOverrides(raw, flags, env);
    applied = result.applied;
    return result.tree;
  };
  try {
    if (file) return await loadStaticFile(file, { transform });
    // No file: flags and environment variables alone may configure the instance.
    const raw = transform({});
    if (applied.length === 0) {
      throw new StartupError(
        "no static configuration: pass --configFile=FILE, create ./portico.toml (./traefik.toml is read too), " +
          "or set options as flags (--entryPoints.web.address=:80) or PORTICO_* environment variables",
      );
    }
    return validateStatic(raw, "command line");
  } catch (err) {
    throw err instanceof ConfigError ? relabelIssues(err, applied) : err;
  }
}

function fail(err: unknown): number {
  if (err instanceof ConfigError || err instanceof StartupError) {
    console.error(`portico: ${err.message}`);
    return 1;
  }
  if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
    console.error(`portico: ${(err as Error).message}`);
    return 1;
  }
  console.error(err);
  return 1;
}

/** Runs one command and returns its exit code (serve returns after shutdown). */
export async function runCli(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.flags.has("help") || args.flags.has("h") || args.command === "help") {
    // `portico --help` without a command lists the commands; `portico serve --help` explains serve.
    const named = argv.some((a) => !a.startsWith("-") && a === args.command);
    console.log((named ? HELP[args.command] : undefined) ?? USAGE);
    return 0;
  }
  try {
    switch (args.command) {
      case "version":
        console.log(`portico ${VERSION}`);
        return 0;
      case "storeconfig": {
        const { runStoreConfig } = await import("./storeconfig.ts");
        return await runStoreConfig(args);
      }
      case "check": {
        const { runCheck } = await import("./check.ts");
        // Not a static-config override: taken out before the overrides are read.
        const kvRequired = args.flags.has("kv-required") && args.flags.get("kv-required") !== "false";
        args.flags.delete("kv-required");
        return await runCheck(() => loadStatic(args.flags), { kvRequired });
      }
      case "serve": {
        const config = await loadStatic(args.flags);
        const server = await startServer(config);
        // Gives memory back once startup or a burst of load is over.
        const memory = startMemoryRelease();
        const stop = () => server.shutdown();
        Deno.addSignalListener("SIGTERM", stop);
        Deno.addSignalListener("SIGINT", stop);
        await server.finished;
        memory.stop();
        return 0;
      }
      default:
        console.error(`portico: unknown command "${args.command}"\n\n${USAGE}`);
        return 1;
    }
  } catch (err) {
    return fail(err);
  }
}
