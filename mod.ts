/**
 * Portico's command line.
 *
 * ```sh
 * deno run -A mod.ts [serve] --configFile=portico.toml
 * deno run -A mod.ts check --configFile=portico.toml
 * deno run -A mod.ts version
 * ```
 *
 * @module
 */

import { runCli } from "./lib/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}

export { runCli };
export { startServer } from "./lib/server/server.ts";
export { VERSION } from "./lib/version.ts";
