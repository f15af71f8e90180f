/**
 * The file provider in directory mode: every TOML file merged, new files
 * picked up, a duplicate name across files rejected with both files named.
 */

import assert from "node:assert/strict";
import { FileProvider } from "../lib/providers/file.ts";
import type { DynamicConfig } from "../lib/config/types.ts";

function collector() {
  const configs: DynamicConfig[] = [];
  const errors: string[] = [];
  let wake: (() => void) | undefined;
  return {
    configs,
    errors,
    listener: {
      onConfig: (_: string, c: DynamicConfig) => {
        configs.push(c);
        wake?.();
      },
      onError: (_: string, e: Error) => {
        errors.push(e.message);
        wake?.();
      },
    },
    async next(count: () => number, target: number) {
      const deadline = Date.now() + 5000;
      while (count() < target) {
        if (Date.now() > deadline) throw new Error("no event within 5 s");
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
    },
  };
}

const router = (name: string) => `[http.routers.${name}]\nrule = "Path(\`/${name}\`)"\nservice = "s"\n`;
const service = `[http.services.s.loadBalancer]\nservers = [{ url = "http://127.0.0.1:1" }]\n`;

Deno.test("file provider: a directory is merged, watched, and a duplicate name is rejected", async () => {
  const dir = await Deno.makeTempDir();
  const c = collector();
  const provider = new FileProvider({ directory: dir, watch: true, settleMs: 20 });
  try {
    await Deno.writeTextFile(`${dir}/a.toml`, router("a") + service);
    await Deno.writeTextFile(`${dir}/b.toml`, router("b"));
    await Deno.writeTextFile(`${dir}/notes.txt`, "not toml: ignored");
    await provider.start(c.listener);
    assert.deepEqual(Object.keys(c.configs[0].http.routers).sort(), ["a", "b"]);

    await Deno.writeTextFile(`${dir}/c.toml`, router("c"));
    await c.next(() => c.configs.length, 2);
    assert.deepEqual(Object.keys(c.configs.at(-1)!.http.routers).sort(), ["a", "b", "c"]);

    await Deno.writeTextFile(`${dir}/d.toml`, router("a"));
    await c.next(() => c.errors.length, 1);
    assert.match(c.errors[0], /d\.toml/);
    assert.match(c.errors[0], /a\.toml/);
    assert.equal(c.configs.length, 2, "the rejected state emitted no config");
  } finally {
    await provider.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
