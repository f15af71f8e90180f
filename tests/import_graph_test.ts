/**
 * The import graph of lib/ goes one way: every module imports only from its
 * own area or from areas below it, and no two files import each other,
 * directly or around a circle. Read from `deno info --json`, type imports
 * included. The layers are the README's architecture diagram.
 */
import assert from "node:assert/strict";

/** Areas of lib/, bottom first; an area may import from the ones before it. */
export const LAYERS: readonly (readonly string[])[] = [
  ["contracts", "version", "http_status", "constant_time", "env", "deadline"],
  ["config"],
  ["rules", "kv", "log", "tracing"],
  ["engine", "providers", "cluster"],
  ["tls", "proxy"],
  ["services"],
  ["acme", "middlewares", "tcp"],
  ["router"],
  ["instance"],
  ["metrics"],
  ["api"],
  ["server"],
  ["cli"],
  ["mod.ts"],
];

const root = new URL("../", import.meta.url);

function areaOf(path: string): string {
  if (!path.startsWith("lib/")) return path;
  return path.split("/")[1].replace(/\.ts$/, "");
}

function rankOf(area: string): number {
  const rank = LAYERS.findIndex((layer) => layer.includes(area));
  if (rank < 0) throw new Error(`${area} is in no layer of tests/import_graph_test.ts: place it`);
  return rank;
}

async function libFiles(dir: URL, prefix = "lib/"): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) out.push(...await libFiles(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) out.push(prefix + entry.name);
  }
  return out;
}

/** Every module edge among the repository's own files. */
async function moduleGraph(): Promise<Map<string, string[]>> {
  const files = ["mod.ts", ...await libFiles(new URL("lib/", root))];
  const entry = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(entry, files.map((f) => `import "${new URL(f, root).href}";`).join("\n"));
    const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json", entry], stdout: "piped", stderr: "piped" })
      .output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: { specifier: string; dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[] }[];
    };
    const edges = new Map<string, string[]>();
    for (const m of info.modules) {
      if (!m.specifier.startsWith(root.href)) continue;
      const from = m.specifier.slice(root.href.length);
      const to = new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          if (s?.startsWith(root.href)) to.add(s.slice(root.href.length));
        }
      }
      edges.set(from, [...to]);
    }
    return edges;
  } finally {
    await Deno.remove(entry);
  }
}

/** Strongly connected groups of more than one file (Tarjan). */
function cycles(edges: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

Deno.test("import graph: no file imports an area above its own", async () => {
  const edges = await moduleGraph();
  const upward: string[] = [];
  for (const [from, targets] of edges) {
    const fromArea = areaOf(from);
    for (const to of targets) {
      const toArea = areaOf(to);
      if (fromArea === toArea) continue;
      if (rankOf(toArea) >= rankOf(fromArea)) upward.push(`${from} -> ${to}`);
    }
  }
  assert.deepEqual(upward, [], `upward or sideways imports:\n${upward.join("\n")}`);
});

Deno.test("import graph: no import cycle between files", async () => {
  const found = cycles(await moduleGraph());
  assert.deepEqual(found, [], `cycles:\n${found.map((c) => c.join(" <-> ")).join("\n")}`);
});

Deno.test("import graph checker: it sees an upward edge and a cycle when there is one", () => {
  assert.ok(rankOf("server") > rankOf("router"));
  assert.deepEqual(
    cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]])),
    [["a", "b", "c"]],
  );
  assert.throws(() => rankOf("nowhere"), /in no layer/);
});
