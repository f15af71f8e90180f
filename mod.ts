/**
 * Portico's command line.
 *
 * ```sh
 * deno run -A mod.ts [serve] --configFile=portico.toml
 * deno run -A mod.ts check --configFile=portico.toml
 * deno run -A mod.ts version
 * ```
 *
 * Embedding: `loadStaticFile` then `startServer` run the same server as the
 * command line, with every middleware available.
 *
 * @module
 */

import { runCli } from "./lib/cli/main.ts";
import { inWorker, runDataWorker } from "./lib/server/data_worker.ts";

// A bundle or binary starts its data-plane workers from this same module.
if (inWorker()) {
  runDataWorker();
} else if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}

export { runCli };
export { startServer } from "./lib/server/server.ts";
export { loadStaticFile } from "./lib/config/load.ts";
export { VERSION } from "./lib/version.ts";
