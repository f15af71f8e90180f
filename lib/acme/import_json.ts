/**
 * Imports Traefik `acme.json` files into the cluster's KV layout (see
 * lib/acme/kv_storage.ts): one key per certificate and one per account,
 * private keys sealed with the encryption key. A key already in the store
 * is never overwritten (each put is conditioned on the key being absent),
 * so running it twice, or after the cluster has ordered, is harmless.
 * Used by `portico storeconfig`.
 *
 * @module
 */

import type { KVStore } from "../kv/types.ts";
import { KvAcmeStorage } from "./kv_storage.ts";
import type { SecretBox } from "./secret_box.ts";
import { FileStorage } from "./storage.ts";

/** Counts of one import (never values). */
export interface AcmeImportReport {
  /** Resolver sections found in the file. */
  resolvers: number;
  imported: number;
  /** Certificates whose key was already in the store. */
  skipped: number;
  accountsImported: number;
  accountsSkipped: number;
  /** Entries that could not be read, each naming the file and entry. */
  errors: string[];
}

/** Options of {@linkcode importAcmeJson}. */
export interface AcmeImportOptions {
  store: KVStore;
  rootKey: string;
  box: SecretBox;
  /** Path of the acme.json file. */
  path: string;
  /** Count only; write nothing. */
  dryRun?: boolean;
}

/**
 * Imports every resolver section of the acme.json at `path`. Throws when
 * the file cannot be read or is not JSON (naming the path).
 *
 * @example
 * ```ts
 * const r = await importAcmeJson({ store, rootKey: "traefik", box, path: "/data/acme.json" });
 * console.log(`${r.imported} imported, ${r.skipped} already present`);
 * ```
 */
export async function importAcmeJson(options: AcmeImportOptions): Promise<AcmeImportReport> {
  const { store, path } = options;
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    throw new Error(`acme.json "${path}": ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(
      `acme.json "${path}": expected an object keyed by resolver name (Traefik v2/v3 format)`,
    );
  }
  const file = new FileStorage(path);
  const kv = new KvAcmeStorage(store, options.rootKey, options.box, () => {
    throw new Error("the importer writes with its own conditions");
  });
  const report: AcmeImportReport = {
    resolvers: 0,
    imported: 0,
    skipped: 0,
    accountsImported: 0,
    accountsSkipped: 0,
    errors: [],
  };
  /** Puts `value` at `key` unless the key exists; true when written (or would be). */
  const putIfAbsent = async (key: string, value: () => Promise<string>) => {
    if (options.dryRun) return (await store.get(key)) === undefined;
    return await store.transaction([{ key, kind: "absent" }], [{
      kind: "put",
      key,
      value: await value(),
    }]);
  };
  for (const resolver of Object.keys(raw)) {
    if (!/^[A-Za-z0-9._-]+$/.test(resolver)) {
      report.errors.push(`acme.json "${path}": resolver name "${resolver}" is not usable as a key`);
      continue;
    }
    report.resolvers++;
    try {
      const account = await file.loadAccount(resolver);
      if (account) {
        const written = await putIfAbsent(
          kv.accountKey(resolver),
          () => kv.encodeAccount(account),
        );
        if (written) report.accountsImported++;
        else report.accountsSkipped++;
      }
    } catch (err) {
      report.errors.push(`acme.json "${path}": ${resolver}.Account: ${(err as Error).message}`);
    }
    const { certificates, errors } = await file.loadCertificates(resolver);
    report.errors.push(...errors);
    for (const c of certificates) {
      if (!c.main || c.main.includes("/")) {
        report.errors.push(
          `acme.json "${path}": ${resolver}: certificate without a usable main domain`,
        );
        continue;
      }
      const written = await putIfAbsent(
        kv.certificateKey(resolver, c.main),
        () => kv.encodeCertificate(c),
      );
      if (written) report.imported++;
      else report.skipped++;
    }
  }
  return report;
}
