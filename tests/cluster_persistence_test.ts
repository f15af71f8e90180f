/** Tests for the durable {term, votedFor} file. @module */
import assert from "node:assert/strict";
import { loadState, saveState, STATE_FILE, StateFileError } from "../lib/cluster/persistence.ts";

async function withDir(f: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "portico_cluster_" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("missing file means a fresh node", () =>
  withDir(async (dir) => {
    assert.deepEqual(await loadState(`${dir}/not-yet`), { term: 0, votedFor: null });
  }));

Deno.test("save then load round-trips and replaces atomically", () =>
  withDir(async (dir) => {
    const data = `${dir}/nested/data`;
    await saveState(data, { term: 3, votedFor: "n2" });
    assert.deepEqual(await loadState(data), { term: 3, votedFor: "n2" });
    await saveState(data, { term: 4, votedFor: null });
    assert.deepEqual(await loadState(data), { term: 4, votedFor: null });
    // no temporary files left behind
    const names = [];
    for await (const e of Deno.readDir(data)) names.push(e.name);
    assert.deepEqual(names, [STATE_FILE]);
  }));

Deno.test("corrupted files give an error naming the file and the field", () =>
  withDir(async (dir) => {
    const cases: [string, string, RegExp][] = [
      ["truncated", '{"term": 3, "vot', /not valid JSON/],
      ["array", "[1,2]", /not a JSON object/],
      ["negative term", '{"term": -1, "votedFor": null}', /"term"/],
      ["fractional term", '{"term": 1.5, "votedFor": null}', /"term"/],
      ["missing term", '{"votedFor": "a"}', /"term"/],
      ["numeric vote", '{"term": 1, "votedFor": 7}', /"votedFor"/],
      ["empty vote", '{"term": 1, "votedFor": ""}', /"votedFor"/],
    ];
    for (const [name, text, detail] of cases) {
      await Deno.writeTextFile(`${dir}/${STATE_FILE}`, text);
      await assert.rejects(loadState(dir), (e: unknown) => {
        assert.ok(e instanceof StateFileError, name);
        assert.equal(e.path, `${dir}/${STATE_FILE}`);
        assert.ok(e.message.includes(`${dir}/${STATE_FILE}`), name);
        assert.match(e.message, detail, name);
        return true;
      });
    }
  }));

Deno.test("saving an invalid state is refused before touching the disk", () =>
  withDir(async (dir) => {
    await assert.rejects(saveState(dir, { term: -2, votedFor: null }), StateFileError);
    await assert.rejects(Deno.stat(`${dir}/${STATE_FILE}`), Deno.errors.NotFound);
  }));
