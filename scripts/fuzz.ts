/**
 * `deno task fuzz`: runs the property-based fuzz tests with many more cases
 * than CI does. `FUZZ_RUNS` (default 20000) sets the cases per property.
 *
 * @module
 */

const runs = Deno.env.get("FUZZ_RUNS") ?? "20000";
const files = [...Deno.readDirSync(new URL("../tests/", import.meta.url))]
  .map((e) => e.name)
  .filter((n) => /^fuzz_.*_test\.ts$/.test(n) || n === "rules_print_property_test.ts")
  .sort()
  .map((n) => `tests/${n}`);
console.log(`fuzzing with FUZZ_RUNS=${runs}: ${files.join(" ")}`);
const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", ...files],
  env: { FUZZ_RUNS: runs },
  cwd: new URL("../", import.meta.url).pathname,
}).spawn();
Deno.exit((await child.status).code);
