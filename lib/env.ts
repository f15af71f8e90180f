/**
 * Every environment variable Portico reads, by name, and the one way to read
 * one: without `--allow-env` a read gives undefined rather than throwing, so
 * a locked-down run behaves as if the variable were unset.
 *
 * @module
 */

/** May hold the cluster secret instead of the config file. */
export const CLUSTER_SECRET_ENV = "PORTICO_CLUSTER_SECRET";
/** The key that seals ACME private keys in the KV store when `[cluster] encryptionKey` is not set. */
export const ENCRYPTION_KEY_ENV = "PORTICO_ENCRYPTION_KEY";
/** Previous sealing keys, comma-separated, besides `[cluster] previousEncryptionKeys`. */
export const PREVIOUS_ENCRYPTION_KEYS_ENV = "PORTICO_PREVIOUS_ENCRYPTION_KEYS";
/** `node` keeps every upstream request on node:http (comparison runs in the bench). */
export const UPSTREAM_CLIENT_ENV = "PORTICO_UPSTREAM_CLIENT";
/** Switches on the hooks that only tests use (peer routes, a short renewal check); "1" = on. */
export const TEST_HOOKS_ENV = "PORTICO_TEST_HOOKS";
/** With the test hooks on: a map of peer address to the address to dial instead. */
export const TEST_PEER_ROUTES_ENV = "PORTICO_TEST_PEER_ROUTES";
/** With the test hooks on: the renewal check interval, ms. */
export const TEST_RENEWAL_CHECK_ENV = "PORTICO_TEST_RENEWAL_CHECK_MS";
/** Static config overrides: `PORTICO_<SECTION>_<KEY>` (see cli/overrides.ts). */
export const ENV_PREFIX = "PORTICO_";

/** An environment variable, or undefined when unset or not readable (no `--allow-env`). */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
