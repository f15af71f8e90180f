/**
 * `portico check`: validates the dynamic config the file provider would
 * load, and each router's rule, printing every problem.
 *
 * @module
 */

import { loadDynamicDirectory, loadDynamicFile } from "../config/load.ts";
import type { StaticConfig } from "../config/types.ts";
import { compileRule } from "../rules/mod.ts";

export async function checkDynamic(config: StaticConfig): Promise<number> {
  const file = config.providers.file;
  let problems = 0;
  if (file) {
    try {
      const dynamic = file.filename ? await loadDynamicFile(file.filename) : await loadDynamicDirectory(file.directory!);
      for (const [name, router] of Object.entries(dynamic.http.routers)) {
        try {
          compileRule(router.rule);
        } catch (err) {
          problems++;
          console.error(`${file.filename ?? file.directory}: http.routers.${name}.rule: ${(err as Error).message}`);
        }
      }
    } catch (err) {
      problems++;
      console.error((err as Error).message);
    }
  }
  if (problems === 0) console.log(`configuration ${config.sourceFile ?? ""} is valid`);
  return problems === 0 ? 0 : 1;
}
