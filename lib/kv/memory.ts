/**
 * An in-process {@link KVStore} with the same semantics as the networked
 * backends: a store-wide revision counter, prefix watches that can resume
 * from a revision (or `reset` when that revision has left the history),
 * leases that expire unless renewed, and atomic transactions.
 *
 * The state lives in a {@link MemoryKVBackend} (the "server"); each
 * {@link MemoryKVStore} is a client of it with its own watches and lease
 * keep-alives. Several stores can share one backend, which is how tests
 * simulate several nodes, and how a crashed holder (a closed store) lets its
 * leases expire. Time comes from an injectable {@link KVClock}.
 *
 * @example
 * ```ts
 * const store = new MemoryKVStore();
 * await store.put("traefik/http/routers/r/rule", "Host(`a.com`)");
 * const { entries } = await store.list("traefik/");
 * ```
 *
 * @module
 */

import {
  type KVCondition,
  type KVEntry,
  KVError,
  type KVLease,
  type KVOperation,
  type KVStore,
  type KVWatch,
  type KVWatchEvent,
  type KVWatchOptions,
} from "./types.ts";
import {
  checkKey,
  checkPrefix,
  checkTransaction,
  checkTtl,
  checkValue,
  EventQueue,
} from "./common.ts";

const BACKEND = "memory";

/** Time source for leases, so tests can drive expiry without sleeping. */
export interface KVClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The wall clock and real timers. */
export const systemClock: KVClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};

interface StoredEntry {
  value: string;
  revision: number;
  leaseId?: string;
}

interface LeaseRecord {
  ttlMs: number;
  keys: Set<string>;
  timer: unknown;
}

type Change = Exclude<KVWatchEvent, { kind: "reset" }>;

/** Options for {@link MemoryKVBackend}. */
export interface MemoryKVBackendOptions {
  clock?: KVClock;
  /** How many changes are kept for watches resuming with `fromRevision` (default 10000). */
  historyLimit?: number;
}

/** The shared state of one in-memory store: entries, revision, history and leases. */
export class MemoryKVBackend {
  readonly clock: KVClock;
  #entries = new Map<string, StoredEntry>();
  #revision = 0;
  #history: Change[] = [];
  #historyLimit: number;
  /** Changes with a revision at or below this are no longer in the history. */
  #compactedThrough = 0;
  #leases = new Map<string, LeaseRecord>();
  #subscribers = new Set<(changes: Change[]) => void>();
  #nextLease = 1;

  constructor(options: MemoryKVBackendOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.#historyLimit = options.historyLimit ?? 10000;
  }

  /** The revision of the latest change. */
  get revision(): number {
    return this.#revision;
  }

  get(key: string): KVEntry | undefined {
    const e = this.#entries.get(key);
    return e && { key, value: e.value, revision: e.revision };
  }

  list(prefix: string): { entries: KVEntry[]; revision: number } {
    const entries: KVEntry[] = [];
    for (const [key, e] of this.#entries) {
      if (key.startsWith(prefix)) entries.push({ key, value: e.value, revision: e.revision });
    }
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { entries, revision: this.#revision };
  }

  /**
   * Applies `operations` if every condition holds, as one revision. Throws if
   * an operation names a lease that does not exist (expired or revoked).
   */
  apply(conditions: KVCondition[], operations: KVOperation[]): boolean {
    for (const c of conditions) {
      const e = this.#entries.get(c.key);
      if (c.kind === "absent" ? e !== undefined : e?.value !== c.value) return false;
    }
    for (const op of operations) {
      if (op.kind === "put" && op.lease && !this.#leases.has(op.lease.id)) {
        throw new KVError(`${BACKEND}: lease ${op.lease.id} has expired or was revoked`, op.key);
      }
    }
    if (operations.length === 0) return true;
    const revision = ++this.#revision;
    const changes: Change[] = [];
    for (const op of operations) {
      const old = this.#entries.get(op.key);
      if (old?.leaseId) this.#leases.get(old.leaseId)?.keys.delete(op.key);
      if (op.kind === "put") {
        const leaseId = op.lease?.id;
        this.#entries.set(op.key, { value: op.value, revision, leaseId });
        if (leaseId) this.#leases.get(leaseId)!.keys.add(op.key);
        changes.push({ kind: "put", key: op.key, value: op.value, revision });
      } else if (old) {
        this.#entries.delete(op.key);
        changes.push({ kind: "delete", key: op.key, revision });
      }
    }
    this.#publish(changes);
    return true;
  }

  /** Deletes every key under `prefix` as one revision; returns how many went. */
  deletePrefix(prefix: string): number {
    const keys = [...this.#entries.keys()].filter((k) => k.startsWith(prefix));
    if (keys.length > 0) this.apply([], keys.map((key) => ({ kind: "delete", key })));
    return keys.length;
  }

  /** The changes after `revision`, or `undefined` if some of them were compacted away. */
  changesSince(revision: number): Change[] | undefined {
    if (revision < this.#compactedThrough) return undefined;
    return this.#history.filter((c) => c.revision > revision);
  }

  /** Drops all history (like etcd's compaction), forcing resuming watches to reset. */
  compact(): void {
    this.#history = [];
    this.#compactedThrough = this.#revision;
  }

  subscribe(fn: (changes: Change[]) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  grantLease(ttlMs: number): string {
    const id = `memory-lease-${this.#nextLease++}`;
    const record: LeaseRecord = { ttlMs, keys: new Set(), timer: undefined };
    this.#leases.set(id, record);
    this.#arm(id, record);
    return id;
  }

  /** Pushes the lease's expiry `ttlMs` into the future; false if it already expired. */
  renewLease(id: string): boolean {
    const record = this.#leases.get(id);
    if (!record) return false;
    this.clock.clearTimeout(record.timer);
    this.#arm(id, record);
    return true;
  }

  /** Ends the lease now and deletes its keys. */
  revokeLease(id: string): void {
    const record = this.#leases.get(id);
    if (!record) return;
    this.clock.clearTimeout(record.timer);
    this.#leases.delete(id);
    const keys = [...record.keys];
    if (keys.length > 0) this.apply([], keys.map((key) => ({ kind: "delete", key })));
  }

  /** Stops every lease timer, for shutting a test down. */
  dispose(): void {
    for (const record of this.#leases.values()) this.clock.clearTimeout(record.timer);
    this.#leases.clear();
  }

  #arm(id: string, record: LeaseRecord): void {
    record.timer = this.clock.setTimeout(() => this.revokeLease(id), record.ttlMs);
  }

  #publish(changes: Change[]): void {
    if (changes.length === 0) return;
    this.#history.push(...changes);
    if (this.#history.length > this.#historyLimit) {
      const dropped = this.#history.splice(0, this.#history.length - this.#historyLimit);
      this.#compactedThrough = dropped[dropped.length - 1].revision;
    }
    for (const fn of this.#subscribers) fn(changes);
  }
}

/** Options for {@link MemoryKVStore}. */
export interface MemoryKVStoreOptions {
  /** Share state with other stores; by default each store gets its own backend. */
  backend?: MemoryKVBackend;
  /** Used when no backend is given. */
  clock?: KVClock;
}

/** A {@link KVStore} client of a {@link MemoryKVBackend}. */
export class MemoryKVStore implements KVStore {
  readonly kind = "memory";
  readonly backend: MemoryKVBackend;
  #closed = false;
  #watches = new Set<{ close(): Promise<void> }>();
  #keepAlives = new Map<string, unknown>();

  constructor(options: MemoryKVStoreOptions = {}) {
    this.backend = options.backend ?? new MemoryKVBackend({ clock: options.clock });
  }

  async get(key: string): Promise<KVEntry | undefined> {
    this.#open();
    checkKey(BACKEND, key);
    return this.backend.get(key);
  }

  async list(prefix: string): Promise<{ entries: KVEntry[]; revision: number }> {
    this.#open();
    checkPrefix(BACKEND, prefix);
    return this.backend.list(prefix);
  }

  async put(key: string, value: string, options: { lease?: KVLease } = {}): Promise<void> {
    this.#open();
    checkKey(BACKEND, key);
    checkValue(BACKEND, key, value);
    this.backend.apply([], [{ kind: "put", key, value, lease: options.lease }]);
  }

  async delete(key: string): Promise<void> {
    this.#open();
    checkKey(BACKEND, key);
    this.backend.apply([], [{ kind: "delete", key }]);
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.#open();
    checkPrefix(BACKEND, prefix);
    return this.backend.deletePrefix(prefix);
  }

  async compareAndSet(key: string, expected: string | undefined, value: string): Promise<boolean> {
    this.#open();
    checkKey(BACKEND, key);
    checkValue(BACKEND, key, value);
    const condition: KVCondition = expected === undefined
      ? { key, kind: "absent" }
      : { key, kind: "equals", value: expected };
    return this.backend.apply([condition], [{ kind: "put", key, value }]);
  }

  async transaction(conditions: KVCondition[], operations: KVOperation[]): Promise<boolean> {
    this.#open();
    checkTransaction(BACKEND, conditions, operations);
    return this.backend.apply(conditions, operations);
  }

  watch(prefix: string, options: KVWatchOptions): KVWatch {
    this.#open();
    checkPrefix(BACKEND, prefix);
    const queue = new EventQueue(options.onEvents);
    const from = options.fromRevision;
    const replay = from === undefined ? undefined : this.backend.changesSince(from);
    if (replay === undefined) {
      const { entries, revision } = this.backend.list(prefix);
      queue.push([{ kind: "reset", entries, revision }]);
    } else {
      queue.push(replay.filter((c) => c.key.startsWith(prefix)));
    }
    const unsubscribe = this.backend.subscribe((changes) => {
      queue.push(changes.filter((c) => c.key.startsWith(prefix)));
    });
    queueMicrotask(() => options.onState?.("connected"));
    const watch = {
      close: () => {
        unsubscribe();
        queue.close();
        this.#watches.delete(watch);
        return Promise.resolve();
      },
    };
    this.#watches.add(watch);
    return watch;
  }

  async grantLease(ttlMs: number): Promise<KVLease> {
    this.#open();
    checkTtl(BACKEND, ttlMs);
    const id = this.backend.grantLease(ttlMs);
    const clock = this.backend.clock;
    const renew = () => {
      if (!this.backend.renewLease(id)) return void this.#keepAlives.delete(id);
      this.#keepAlives.set(id, clock.setTimeout(renew, ttlMs / 3));
    };
    this.#keepAlives.set(id, clock.setTimeout(renew, ttlMs / 3));
    const lease: KVLease = {
      id,
      revoke: () => {
        clock.clearTimeout(this.#keepAlives.get(id));
        this.#keepAlives.delete(id);
        this.backend.revokeLease(id);
        return Promise.resolve();
      },
    };
    return lease;
  }

  /**
   * Closes watches and stops renewing leases without revoking them, so keys
   * attached to them expire after their TTL, as when a real holder dies.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const handle of this.#keepAlives.values()) this.backend.clock.clearTimeout(handle);
    this.#keepAlives.clear();
    await Promise.all([...this.#watches].map((w) => w.close()));
  }

  #open(): void {
    if (this.#closed) throw new KVError(`${BACKEND}: store is closed`);
  }
}
