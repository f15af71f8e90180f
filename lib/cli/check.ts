/**
 * `portico check`: validates the static config and the dynamic config the
 * file provider would load, including what only building the routers finds
 * (rules, unknown services and middlewares, bad middleware options), and
 * prints every problem as `FILE:LINE: KEY: MESSAGE` with a hint. Exit code
 * 0 when valid, 1 when not.
 *
 * @module
 */

import { DNS_PROVIDERS } from "../acme/dns/providers.ts";
import { configuredKVProviders, kvStoreOptions } from "../server/kv_setup.ts";
import { openKVStore } from "../kv/open.ts";
import type { KVStore } from "../kv/types.ts";
import { decodeKVEntries, isPorticoStateKey } from "../providers/kv_codec.ts";
import { ConfigError, type ConfigIssue } from "../config/errors.ts";
import { loadDynamicDirectory, loadDynamicFile } from "../config/load.ts";
import type { StaticConfig } from "../config/types.ts";
import { mergeProviders } from "../providers/merge.ts";
import { UpstreamPools } from "../proxy/pools.ts";
import { buildRouter } from "../router/build.ts";
import { compileTerminationOptions } from "../tls/options.ts";
import type { Service } from "../services/types.ts";

/** Internal services a user router may name; check only needs them to exist. */
const INTERNAL = [
  "api@internal",
  "dashboard@internal",
  "ping@internal",
  "prometheus@internal",
  "noop@internal",
  "cluster@internal",
];

/**
 * The 1-based line in TOML `text` that defines dotted `path` (or its nearest
 * defined ancestor), or undefined. Best effort: tables, dotted keys and
 * `key = value` lines; list indices map to the list's own line.
 */
export function locateKey(text: string, path: string): number | undefined {
  const want = path.replace(/\[\d+\]/g, "").toLowerCase().split(".").filter(Boolean);
  const clean = (k: string) => k.trim().replace(/^["']|["']$/g, "").toLowerCase();
  let table: string[] = [];
  let best: { line: number; depth: number } | undefined;
  const consider = (keyPath: string[], line: number) => {
    if (keyPath.length > want.length) return;
    for (let i = 0; i < keyPath.length; i++) if (keyPath[i] !== want[i]) return;
    if (!best || keyPath.length > best.depth) best = { line, depth: keyPath.length };
  };
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    const header = /^\[\[?([^\]]+)\]\]?$/.exec(line);
    if (header) {
      table = header[1].split(".").map(clean);
      consider(table, i + 1);
      return;
    }
    const kv = /^([A-Za-z0-9_."' -]+?)\s*=/.exec(line);
    if (kv) consider([...table, ...kv[1].split(".").map(clean)], i + 1);
  });
  return best?.line;
}

/** Splits "what is wrong; expected …" into the problem and a hint. */
function withHint(message: string): { problem: string; hint?: string } {
  // "expected X, found Y" is the problem itself and stays on its line; what
  // to write instead (the keys that exist, a close spelling) is the hint.
  const m = /^(.*?)[;,]?\s*((?:expected one of:|did you mean|configure)\s.*)$/s.exec(message);
  return m && m[1] ? { problem: m[1], hint: m[2] } : { problem: message };
}

async function readLines(
  source: string,
  cache: Map<string, string | null>,
): Promise<string | null> {
  if (!cache.has(source)) cache.set(source, await Deno.readTextFile(source).catch(() => null));
  return cache.get(source)!;
}

/** Prints issues as `FILE:LINE: KEY: MESSAGE` plus `  hint: …`. */
export async function printIssues(
  issues: readonly ConfigIssue[],
  write: (line: string) => void = console.error,
): Promise<void> {
  const cache = new Map<string, string | null>();
  for (const issue of issues) {
    const text = issue.path ? await readLines(issue.source, cache) : null;
    const line = text !== null ? locateKey(text, issue.path) : undefined;
    const where = line !== undefined ? `${issue.source}:${line}` : issue.source;
    const { problem, hint } = withHint(issue.message);
    write(`${where}: ${issue.path ? `${issue.path}: ` : ""}${problem}`);
    if (hint) write(`  hint: ${hint}`);
  }
}

/**
 * The dynamic config's problems that only building routers reveals. Exported
 * for the Traefik docs corpus tests, which check snippets exactly as `check` does.
 */
export function buildIssues(
  config: StaticConfig,
  source: string,
  dynamic: Parameters<typeof mergeProviders>[0],
): ConfigIssue[] {
  const stub = (name: string): Service => ({
    name,
    serve: () => Promise.resolve(new Response(null)),
    available: () => true,
    serverStatus: () => ({}),
    start() {},
    stop() {},
  });
  const pools = new UpstreamPools();
  const generation = buildRouter({
    generation: 0,
    staticConfig: config,
    merged: mergeProviders(dynamic),
    pools,
    internalServices: new Map(INTERNAL.map((n) => [n, stub(n)])),
    serverName: "check",
  });
  const issues: ConfigIssue[] = [];
  const bare = (name: string) => name.replace(/@[^@]*$/, "");
  for (const r of generation.routers.values()) {
    for (const e of r.errors) {
      // Point at the key the error is about, so the line is the right one.
      const key = /^rule /.test(e)
        ? ".rule"
        : /^service /.test(e)
        ? ".service"
        : /^entryPoint /.test(e)
        ? ".entryPoints"
        : /^middleware /.test(e)
        ? ".middlewares"
        : "";
      issues.push({ source, path: `http.routers.${bare(r.name)}${key}`, message: e });
    }
  }
  for (const s of generation.serviceStates.values()) {
    for (const e of s.errors) {
      issues.push({ source, path: `http.services.${bare(s.name)}`, message: e });
    }
  }
  for (const m of generation.middlewareStates.values()) {
    for (const e of m.errors) {
      issues.push({ source, path: `http.middlewares.${bare(m.name)}`, message: e });
    }
  }
  const tcp = generation.tcp;
  for (const r of tcp.routers.values()) {
    for (const e of r.errors) {
      const key = /^rule |^invalid rule|^unknown matcher/.test(e) ? ".rule" : /^TCP service /.test(e) ? ".service" : /^entryPoint /.test(e) ? ".entryPoints" : /^TCP middleware /.test(e) ? ".middlewares" : "";
      issues.push({ source, path: `tcp.routers.${bare(r.name)}${key}`, message: e });
    }
  }
  for (const s of tcp.services.values()) {
    for (const e of s.errors) issues.push({ source, path: `tcp.services.${bare(s.name)}`, message: e });
  }
  for (const m of tcp.middlewares.values()) {
    for (const e of m.errors) issues.push({ source, path: `tcp.middlewares.${bare(m.name)}`, message: e });
  }
  // TLS options are compiled where Portico ends TLS (CA files read, versions mapped): the same errors here.
  for (const [name, options] of generation.merged.tls.options) {
    try {
      compileTerminationOptions(name, options);
    } catch (err) {
      const message = (err as Error).message;
      const key = /^tls\.options\.[^.]+\.([A-Za-z.]+(?:\[\d+\])?)/.exec(message)?.[1];
      issues.push({ source, path: `tls.options.${name}${key ? `.${key}` : ""}`, message: message.replace(/^[^:]*: /, "") });
    }
  }
  generation.stop();
  pools.close();
  // A router broken only because its middleware is broken repeats that error; keep the middleware's.
  return issues.filter((issue, i) => issues.findIndex((o) => o.message === issue.message) === i);
}

/**
 * Runs `check`: `loadStatic` loads and validates the static config (with
 * overrides). Returns the exit code.
 */
export async function runCheck(
  loadStatic: () => Promise<StaticConfig>,
  options: { kvRequired?: boolean } = {},
): Promise<number> {
  let config: StaticConfig;
  try {
    config = await loadStatic();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    await printIssues(err.issues);
    console.error(`${err.issues.length} problem(s) in the static configuration`);
    return 1;
  }
  const staticProblems = dnsProviderIssues(config);
  if (staticProblems.length > 0) {
    await printIssues(staticProblems);
    console.error(`${staticProblems.length} problem(s) in the static configuration`);
    return 1;
  }
  const issues: ConfigIssue[] = [];
  const file = config.providers.file;
  if (file) {
    const source = file.filename ?? file.directory!;
    try {
      const dynamic = file.filename
        ? await loadDynamicFile(file.filename)
        : await loadDynamicDirectory(file.directory!);
      issues.push(...buildIssues(config, source, new Map([["file", dynamic]])));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      issues.push(...err.issues);
    }
  }
  issues.push(...await checkKVProviders(config, options.kvRequired ?? false));
  if (issues.length > 0) {
    await printIssues(issues);
    console.error(`${issues.length} problem(s) in the dynamic configuration`);
    return 1;
  }
  console.log(`configuration ${config.sourceFile ?? ""} is valid`);
  return 0;
}

/**
 * Reads each configured KV provider's tree and decodes it as the provider
 * would, so errors name the KV key. A store that cannot be reached gets a
 * warning saying its contents went unchecked (the files can still be valid),
 * or, with `kvRequired`, an error.
 */
async function checkKVProviders(config: StaticConfig, kvRequired: boolean): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (const { kind, config: provider } of configuredKVProviders(config)) {
    let store: KVStore | undefined;
    try {
      store = await openKVStore(kind, { ...kvStoreOptions(provider), timeoutMs: 3000 });
      const { entries } = await store.list(`${provider.rootKey}/`);
      const tree = new Map<string, string>();
      for (const e of entries) {
        if (!isPorticoStateKey(e.key, provider.rootKey)) tree.set(e.key, e.value);
      }
      try {
        const dynamic = decodeKVEntries(tree, provider.rootKey, kind);
        issues.push(...buildIssues(config, kind, new Map([[kind, dynamic]])));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        issues.push(...err.issues);
      }
    } catch (err) {
      const unread = `the store could not be read, so its configuration was not checked: ${(err as Error).message}`;
      // A config is often checked away from its store (CI, before deploying),
      // so an unreachable store is a warning unless the caller requires it.
      if (kvRequired) {
        issues.push({ source: config.sourceFile ?? "static configuration", path: `providers.${kind}`, message: unread });
      } else {
        console.error(`warning: providers.${kind}: ${unread} (--kv-required makes this an error)`);
      }
    } finally {
      await store?.close().catch(() => {});
    }
  }
  return issues;
}

/**
 * A DNS provider Portico does not have: the server only fails that
 * resolver's orders (the rest keeps serving), but `check` says so up front.
 */
function dnsProviderIssues(config: StaticConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [name, resolver] of Object.entries(config.certificatesResolvers ?? {})) {
    const provider = resolver.acme?.dnsChallenge?.provider;
    if (provider !== undefined && !DNS_PROVIDERS.includes(provider)) {
      issues.push({
        source: config.sourceFile ?? "static configuration",
        path: `certificatesResolvers.${name}.acme.dnsChallenge.provider`,
        message: `unknown DNS provider ${JSON.stringify(provider)}; supported: ${DNS_PROVIDERS.join(", ")}`,
      });
    }
  }
  return issues;
}
