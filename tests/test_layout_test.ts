/**
 * Every test lives in `tests/`, named `<area>_<subject>_test.ts`: a test
 * file anywhere else in the tree is refused here, so the rule in the
 * README's Contributing section stays true.
 */

import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const skipped = new Set([".git", "node_modules", "tests", "test-artifacts"]);

async function testFilesOutsideTests(dir: URL, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = prefix + entry.name;
    if (entry.isDirectory) {
      if (prefix === "" && skipped.has(entry.name)) continue;
      found.push(...await testFilesOutsideTests(new URL(`${entry.name}/`, dir), `${path}/`));
    } else if (/_test\.(ts|js|mjs|tsx)$|\.test\.(ts|js|mjs|tsx)$/.test(entry.name)) {
      found.push(path);
    }
  }
  return found;
}

Deno.test("test layout: no test file outside tests/", async () => {
  const stray = await testFilesOutsideTests(root);
  assert.deepEqual(stray.sort(), [], `move these into tests/: ${stray.join(", ")}`);
});

Deno.test("test layout: tests/ is flat, helpers in tests/fixtures/, data in tests/data/", async () => {
  const folders: string[] = [];
  for await (const entry of Deno.readDir(new URL("tests/", root))) {
    if (entry.isDirectory) folders.push(entry.name);
  }
  assert.deepEqual(folders.sort(), ["data", "fixtures"]);
});
