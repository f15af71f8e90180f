/**
 * `portico storeconfig`: writes the file provider's dynamic configuration
 * into each configured KV store (`[providers.etcd]`, `[providers.redis]`,
 * `[providers.consul]`) in Traefik v3's key layout.
 *
 * - The changes are computed against what the store holds under `rootKey/`:
 *   keys added, keys whose value changed, and keys the new configuration no
 *   longer has (removed unless `--keep`). Only those are written.
 * - They are written in one transaction where the store allows it. etcd
 *   takes at most 128 operations per transaction (its default
 *   `--max-txn-ops`) and Consul 64, so a larger change is split into several
 *   transactions, in an order that keeps every intermediate state
 *   consistent: services and middlewares first, then routers, then removals
 *   of routers before the services they used. The output says so.
 * - `--dry-run` prints the same report and writes nothing.
 * - Only keys are printed, never values or the store's credentials.
 *
 * ACME: each existing `acme.json` (every `certificatesResolvers.NAME.acme.storage`
 * file, or `--acme-json=PATH`) is imported into the store's certificate
 * keys (lib/acme/import_json.ts), private keys sealed with `[cluster]
 * encryptionKey` or `PORTICO_ENCRYPTION_KEY`; keys already present are
 * skipped. Only counts are printed.
 *
 * @module
 */

import { findStaticConfigFile, loadFileProviderConfig, loadStaticFile } from "../config/load.ts";
import { ConfigError } from "../config/errors.ts";
import type { KVOperation } from "../kv/types.ts";
import { openKVStore } from "../kv/open.ts";
import { encodeDynamicConfig, isPorticoStateKey } from "../providers/kv_codec.ts";
import { configuredKVProviders, kvStoreOptions } from "../server/kv_setup.ts";
import type { ParsedArgs } from "./args.ts";
import type { StaticConfig } from "../config/types.ts";
import type { KVStore } from "../kv/types.ts";
import { importAcmeJson } from "../acme/import_json.ts";
import { SecretBox } from "../acme/secret_box.ts";
import { ENCRYPTION_KEY_ENV, readEnv } from "../env.ts";

/** Where the command writes its report; the console by default. */
export interface StoreConfigOutput {
  out(line: string): void;
  err(line: string): void;
}

/** The changes that make a store hold `desired` under its root. */
export interface StoreConfigPlan {
  added: string[];
  changed: string[];
  removed: string[];
  /** Puts and deletes in a safe order (see {@linkcode planStoreConfig}). */
  operations: KVOperation[];
}

/** The most operations each store accepts in one transaction. */
export const MAX_TRANSACTION_OPS: Readonly<Record<string, number>> = {
  etcd: 128,
  consul: 64,
  redis: Infinity,
  memory: Infinity,
};

/**
 * Compares what a store holds (`current`, the keys under the root) with what
 * it should hold. Puts come first, routers last among them, so a router
 * never appears before its service; deletes come last, routers first among
 * them, so a service is never removed while a router still uses it.
 *
 * @example
 * ```ts
 * const plan = planStoreConfig(new Map([["traefik/a", "1"]]), new Map([["traefik/b", "2"]]), false);
 * // { added: ["traefik/b"], changed: [], removed: ["traefik/a"], operations: [put b, delete a] }
 * ```
 */
export function planStoreConfig(
  current: ReadonlyMap<string, string>,
  desired: ReadonlyMap<string, string>,
  keep: boolean,
): StoreConfigPlan {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [key, value] of desired) {
    const old = current.get(key);
    if (old === undefined) added.push(key);
    else if (old !== value) changed.push(key);
  }
  if (!keep) { for (const key of current.keys()) if (!desired.has(key)) removed.push(key); }
  const isRouter = (key: string) => /\/http\/routers\//i.test(key);
  const byRouterLast = (a: string, b: string) =>
    Number(isRouter(a)) - Number(isRouter(b)) || (a < b ? -1 : a > b ? 1 : 0);
  const puts = [...added, ...changed].sort(byRouterLast);
  const deletes = [...removed].sort((a, b) => -byRouterLast(a, b));
  return {
    added: added.sort(),
    changed: changed.sort(),
    removed: removed.sort(),
    operations: [
      ...puts.map((key): KVOperation => ({ kind: "put", key, value: desired.get(key)! })),
      ...deletes.map((key): KVOperation => ({ kind: "delete", key })),
    ],
  };
}

/**
 * Splits operations into transactions of at most `max`, never splitting the
 * keys of one object (a router, a service, a certificate) across two
 * transactions unless that object alone exceeds `max`: a watcher that
 * applies a half-written router would reject it (`rule` without `service`).
 */
export function chunkOperations(operations: KVOperation[], max: number): KVOperation[][] {
  if (operations.length === 0) return [];
  if (!Number.isFinite(max)) return [operations];
  // `traefik/http/routers/NAME/...` → `traefik/http/routers/NAME`.
  const objectOf = (key: string) => key.split("/", 4).join("/");
  const groups: KVOperation[][] = [];
  for (const op of operations) {
    const last = groups.at(-1);
    if (last && objectOf(last[0].key) === objectOf(op.key) && last[0].kind === op.kind) {
      last.push(op);
    } else groups.push([op]);
  }
  const chunks: KVOperation[][] = [];
  let current: KVOperation[] = [];
  for (const group of groups) {
    if (current.length + group.length > max && current.length > 0) {
      chunks.push(current);
      current = [];
    }
    for (let i = 0; i < group.length; i += max) {
      const part = group.slice(i, i + max);
      if (current.length + part.length > max) {
        chunks.push(current);
        current = [];
      }
      current.push(...part);
    }
  }
  if (current.length) chunks.push(current);
  return chunks;
}

/** An endpoint as it can be printed: any `user:password@` is masked. */
export function printableEndpoint(endpoint: string): string {
  return endpoint.replace(/\/\/[^@/]*@/, "//***@");
}

const consoleOutput: StoreConfigOutput = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/**
 * Runs `storeconfig` and returns the exit code: 0 when every store was
 * written (or would be, with `--dry-run`), 1 otherwise.
 */
export async function runStoreConfig(
  args: ParsedArgs,
  output: StoreConfigOutput = consoleOutput,
): Promise<number> {
  const flag = (name: string) => {
    const v = args.flags.get(name);
    return v !== undefined && v !== "false";
  };
  const keep = flag("keep");
  const dryRun = flag("dry-run") || flag("dryRun");
  const fail = (message: string) => {
    output.err(`portico storeconfig: ${message}`);
    return 1;
  };

  const file = await findStaticConfigFile(
    args.flags.get("configFile") ?? args.flags.get("configfile"),
  );
  if (file === undefined) {
    return fail("no static configuration: pass --configFile=FILE or create ./portico.toml");
  }
  let dynamic;
  let staticConfig;
  try {
    staticConfig = await loadStaticFile(file);
    if (!staticConfig.providers.file) {
      return fail(`${file}: no [providers.file]; it names the dynamic configuration to upload`);
    }
    dynamic = await loadFileProviderConfig(staticConfig.providers.file);
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message);
    throw error;
  }
  const stores = configuredKVProviders(staticConfig);
  if (stores.length === 0) {
    return fail(
      `${file}: no KV store configured; add [providers.etcd], [providers.redis] or [providers.consul]`,
    );
  }

  let failures = 0;
  for (const { kind, config } of stores) {
    const where = `${kind} (${
      config.endpoints.map(printableEndpoint).join(", ")
    }, root key "${config.rootKey}")`;
    const store = await openKVStore(kind, kvStoreOptions(config));
    try {
      const desired = encodeDynamicConfig(dynamic, config.rootKey);
      const { entries } = await store.list(`${config.rootKey}/`);
      // The cluster's and ACME's own keys are state, not configuration: never removed.
      const current = entries.filter((e) => !isPorticoStateKey(e.key, config.rootKey));
      const plan = planStoreConfig(new Map(current.map((e) => [e.key, e.value])), desired, keep);
      output.out(
        `${where}: ${plan.added.length} added, ${plan.changed.length} changed, ${plan.removed.length} removed` +
          (keep ? " (--keep: keys no longer in the configuration are left in place)" : ""),
      );
      for (const key of plan.added) output.out(`  + ${key}`);
      for (const key of plan.changed) output.out(`  ~ ${key}`);
      for (const key of plan.removed) output.out(`  - ${key}`);
      const max = MAX_TRANSACTION_OPS[kind] ?? Infinity;
      const chunks = chunkOperations(plan.operations, max);
      if (dryRun) {
        output.out(`${kind}: dry run, nothing written`);
        failures += await importAcme(store, config.rootKey, kind, staticConfig, args, true, output);
        continue;
      }
      if (chunks.length === 0) {
        output.out(`${kind}: already up to date, nothing written`);
        failures += await importAcme(
          store,
          config.rootKey,
          kind,
          staticConfig,
          args,
          false,
          output,
        );
        continue;
      }
      for (const [i, chunk] of chunks.entries()) {
        if (!(await store.transaction([], chunk))) {
          throw new Error(`the store refused transaction ${i + 1} of ${chunks.length}`);
        }
        // Progress for large trees: one line per transaction when there are several.
        if (chunks.length > 1) output.out(`${kind}: transaction ${i + 1}/${chunks.length} written (${chunk.length} operations)`);
      }
      output.out(
        chunks.length === 1
          ? `${kind}: written in one transaction (${plan.operations.length} operations)`
          : `${kind}: written in ${chunks.length} transactions of at most ${max} operations (${kind}'s limit); ` +
            "instances may briefly see a partial update, ordered so that it stays consistent",
      );
      failures += await importAcme(store, config.rootKey, kind, staticConfig, args, dryRun, output);
    } catch (error) {
      failures++;
      output.err(`portico storeconfig: ${where}: ${(error as Error).message}`);
    } finally {
      await store.close().catch(() => {});
    }
  }
  return failures === 0 ? 0 : 1;
}

/** The acme.json files to import: `--acme-json=PATH`, else every resolver's `storage`. */
export function acmeJsonPaths(staticConfig: StaticConfig, args: ParsedArgs): {
  paths: string[];
  explicit: boolean;
} {
  const flag = args.flags.get("acme-json") ?? args.flags.get("acmeJson");
  if (flag && flag !== "true") return { paths: [flag], explicit: true };
  const paths = Object.values(staticConfig.certificatesResolvers ?? {})
    .map((r) => r.acme.storage)
    .filter((p): p is string => Boolean(p));
  return { paths: [...new Set(paths)], explicit: false };
}

/** Imports the acme.json files into one store; returns 1 on failure, else 0. Prints counts only. */
async function importAcme(
  store: KVStore,
  rootKey: string,
  kind: string,
  staticConfig: StaticConfig,
  args: ParsedArgs,
  dryRun: boolean,
  output: StoreConfigOutput,
  env: (name: string) => string | undefined = readEnv,
): Promise<number> {
  const { paths, explicit } = acmeJsonPaths(staticConfig, args);
  const present: string[] = [];
  for (const p of paths) {
    try {
      await Deno.stat(p);
      present.push(p);
    } catch {
      if (explicit) {
        output.err(`portico storeconfig: --acme-json: no file at "${p}"`);
        return 1;
      }
      // A resolver that has never run has no file yet: nothing to import.
    }
  }
  if (present.length === 0) return 0;
  const configured = staticConfig.cluster?.encryptionKey;
  const keyText = configured ?? env(ENCRYPTION_KEY_ENV);
  if (!keyText) {
    output.err(
      `portico storeconfig: importing acme.json needs the encryption key: set [cluster] encryptionKey or ${ENCRYPTION_KEY_ENV}`,
    );
    return 1;
  }
  let failed = 0;
  try {
    const box = await SecretBox.fromBase64(
      configured ? "[cluster] encryptionKey" : ENCRYPTION_KEY_ENV,
      keyText,
    );
    for (const path of present) {
      const r = await importAcmeJson({ store, rootKey, box, path, dryRun });
      output.out(
        `${kind}: acme.json "${path}": ${r.imported} certificates ${
          dryRun ? "to import" : "imported"
        }, ${r.skipped} already present (skipped), ${r.accountsImported} accounts ${
          dryRun ? "to import" : "imported"
        }, ${r.accountsSkipped} accounts already present, ${r.errors.length} unreadable`,
      );
      for (const e of r.errors) output.err(`portico storeconfig: ${e}`);
      if (r.errors.length) failed = 1;
    }
  } catch (err) {
    output.err(`portico storeconfig: ${(err as Error).message}`);
    return 1;
  }
  return failed;
}
