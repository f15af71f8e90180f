/**
 * The contract every KV backend (etcd, Redis, Consul, memory) fulfils. The
 * config provider, the cluster's fencing and the ACME store only ever see this
 * interface, so they never learn which store is behind it.
 *
 * Conditions compare values, not store-specific revisions: that is the one
 * kind of check all three stores can make atomically (etcd Txn compare,
 * Redis Lua script, Consul /v1/txn with check-index read in the same call).
 *
 * @module
 */

/** One key and its value as stored. */
export interface KVEntry {
  key: string;
  value: string;
  /** Store-specific modification counter (etcd mod_revision, Consul ModifyIndex, Redis: backend-defined). */
  revision: number;
}

/** A condition that must hold for a transaction to apply. */
export type KVCondition =
  | { key: string; kind: "absent" }
  | { key: string; kind: "equals"; value: string };

/** One write in a transaction. */
export type KVOperation =
  | { kind: "put"; key: string; value: string; lease?: KVLease }
  | { kind: "delete"; key: string };

/** A change seen by a watch. `reset` replaces everything the watcher knew under its prefix. */
export type KVWatchEvent =
  | { kind: "put"; key: string; value: string; revision: number }
  | { kind: "delete"; key: string; revision: number }
  | { kind: "reset"; entries: KVEntry[]; revision: number };

/** The connection state a backend reports to its listeners. */
export type KVConnectionState = "connected" | "disconnected";

/** A lease (etcd) or session (Consul) or TTL (Redis) that expires unless kept alive. */
export interface KVLease {
  readonly id: string;
  /** Stops keep-alives and releases the lease; keys attached to it go away. */
  revoke(): Promise<void>;
}

/** A running watch. */
export interface KVWatch {
  close(): Promise<void>;
}

export interface KVWatchOptions {
  /** Resume after this revision instead of starting with a `reset`. */
  fromRevision?: number;
  /** Called with batches of events, in order. Never called concurrently. */
  onEvents(events: KVWatchEvent[]): void;
  /** Optional: told when the watch loses or regains its connection. */
  onState?(state: KVConnectionState, error?: Error): void;
}

/**
 * A key-value store. Keys are plain strings such as `traefik/http/routers/r/rule`.
 *
 * A watch must never silently miss a change: after a reconnect it resumes from
 * the last revision it delivered where the store allows, and otherwise emits a
 * `reset` with the full current contents of the prefix.
 */
export interface KVStore {
  /** "etcd", "redis", "consul" or "memory". */
  readonly kind: string;
  get(key: string): Promise<KVEntry | undefined>;
  /** All entries whose key starts with `prefix`, sorted by key, with the store revision they were read at. */
  list(prefix: string): Promise<{ entries: KVEntry[]; revision: number }>;
  put(key: string, value: string, options?: { lease?: KVLease }): Promise<void>;
  delete(key: string): Promise<void>;
  /** Deletes every key under `prefix`; returns how many were removed. */
  deletePrefix(prefix: string): Promise<number>;
  /** Sets `key` to `value` only if its current value is `expected` (`undefined` = absent). */
  compareAndSet(key: string, expected: string | undefined, value: string): Promise<boolean>;
  /** Applies every operation atomically if and only if every condition holds. */
  transaction(conditions: KVCondition[], operations: KVOperation[]): Promise<boolean>;
  watch(prefix: string, options: KVWatchOptions): KVWatch;
  /** Creates a lease that expires `ttlMs` after its holder stops renewing it; the backend renews it until revoked. */
  grantLease(ttlMs: number): Promise<KVLease>;
  close(): Promise<void>;
}

/** A failure talking to the store, naming the key involved when there is one. */
export class KVError extends Error {
  constructor(message: string, readonly key?: string, options?: ErrorOptions) {
    super(key ? `${message} (key ${key})` : message, options);
    this.name = "KVError";
  }
}
