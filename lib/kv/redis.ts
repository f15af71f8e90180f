/**
 * A {@link KVStore} on Redis, through the `ioredis` npm client.
 *
 * Layout and bookkeeping:
 * - Every KV key is a plain Redis string key with the same name, which is the
 *   layout Traefik's Redis provider reads (`traefik/http/routers/r/rule`).
 * - Redis has no revisions, so this backend keeps them outside the user's
 *   tree: `portico:rev` is a counter incremented once per write, and the hash
 *   `portico:revs` maps each key to the counter value of its last write
 *   through this backend. A key written by something else (redis-cli,
 *   another tool) reads with revision 0 until Portico writes it. Both names
 *   can be changed with `revisionKey` / `revisionsKey`.
 * - Every write, conditional or not, is one Lua script (EVAL), so conditions
 *   are checked and all operations applied atomically.
 * - Leases are client-side: a lease is a set of keys written with `PX ttl`,
 *   and the holder re-`PEXPIRE`s them every TTL/3. If the holder dies, Redis
 *   expires the keys.
 *
 * Watching uses keyspace notifications (`PSUBSCRIBE __keyspace@DB__:PREFIX*`).
 * The backend tries `CONFIG SET notify-keyspace-events KEA` when the server's
 * setting does not already include keyspace events for strings, generic
 * commands and expiry; where CONFIG is forbidden (managed Redis, ACLs) the
 * operator must set `notify-keyspace-events` to include `K$gx` (or `KEA`), or
 * watches will miss changes. Notifications are fire-and-forget, so every
 * (re)connect of the watch starts with a `reset` from a full SCAN of the
 * prefix, and `fromRevision` cannot resume: the first batch is always a reset.
 * Each notification triggers a read of the key's current value; only real
 * changes are emitted.
 *
 * @example
 * ```ts
 * const store = new RedisKVStore({ endpoints: ["127.0.0.1:6379"], db: 0 });
 * await store.put("traefik/http/routers/r/rule", "Host(`a.com`)");
 * ```
 *
 * @module
 */

import { settleWithin } from "../deadline.ts";
import { Redis, type RedisOptions } from "ioredis";
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
  asError,
  Backoff,
  checkKey,
  checkPrefix,
  checkTransaction,
  checkTtl,
  checkValue,
  EventQueue,
  sleep,
} from "./common.ts";
import { type KVTLSOptions, loadPem } from "./tls.ts";

const BACKEND = "redis";

/** Options for {@link RedisKVStore}. */
export interface RedisKVOptions {
  /** `host:port`, `redis://host:port` or `rediss://host:port`; only the first is used (no Sentinel/Cluster). */
  endpoints: string[];
  db?: number;
  username?: string;
  password?: string;
  tls?: KVTLSOptions;
  /** Connect and command timeout (default 5000). */
  timeoutMs?: number;
  /** The revision counter key (default `portico:rev`). */
  revisionKey?: string;
  /** The hash of per-key revisions (default `portico:revs`). */
  revisionsKey?: string;
}

// Checks every condition, then applies every operation under one new revision.
// KEYS[1] counter, KEYS[2] revision hash, KEYS[3..] the keys named in ARGV[1]:
// {"c": [[keyIndex, "a"|"e", value]], "o": [[keyIndex, "p"|"d", value, pttl]]}.
const TXN_SCRIPT = `
local spec = cjson.decode(ARGV[1])
for _, c in ipairs(spec.c) do
  local k = KEYS[c[1]]
  local cur = false
  if redis.call('EXISTS', k) == 1 then
    if redis.call('TYPE', k).ok ~= 'string' then
      return redis.error_reply('key ' .. k .. ' holds a non-string Redis type')
    end
    cur = redis.call('GET', k)
  end
  if c[2] == 'a' then
    if cur then return 0 end
  elseif cur ~= c[3] then
    return 0
  end
end
if #spec.o == 0 then return 1 end
local rev = redis.call('INCR', KEYS[1])
for _, o in ipairs(spec.o) do
  local k = KEYS[o[1]]
  if o[2] == 'p' then
    if o[4] > 0 then
      redis.call('SET', k, o[3], 'PX', o[4])
    else
      redis.call('SET', k, o[3])
    end
    redis.call('HSET', KEYS[2], k, rev)
  else
    redis.call('DEL', k)
    redis.call('HDEL', KEYS[2], k)
  end
end
return 1
`;

// Reads one key: {value or nil, its revision or nil, the counter or nil}.
const READ_SCRIPT = `
local v = false
if redis.call('TYPE', KEYS[1]).ok == 'string' then v = redis.call('GET', KEYS[1]) end
return {v, redis.call('HGET', KEYS[3], KEYS[1]), redis.call('GET', KEYS[2])}
`;

// Deletes KEYS[3..] (only those with a TTL when ARGV[1] == "ttl"); returns how many.
const DELETE_SCRIPT = `
local n = 0
for i = 3, #KEYS do
  if ARGV[1] ~= 'ttl' or redis.call('PTTL', KEYS[i]) > 0 then
    n = n + redis.call('DEL', KEYS[i])
    redis.call('HDEL', KEYS[2], KEYS[i])
  end
end
if n > 0 then redis.call('INCR', KEYS[1]) end
return n
`;

// Renews the TTL of KEYS that still carry one; returns the keys that no longer do.
const RENEW_SCRIPT = `
local gone = {}
for i = 1, #KEYS do
  if redis.call('PTTL', KEYS[i]) > 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  else
    table.insert(gone, KEYS[i])
  end
end
return gone
`;

interface RedisLease extends KVLease {
  ttlMs: number;
  keys: Set<string>;
  timer?: ReturnType<typeof setTimeout>;
}

/** The Redis backend. */
export class RedisKVStore implements KVStore {
  readonly kind = "redis";
  readonly #client: Redis;
  readonly #db: number;
  readonly #revKey: string;
  readonly #revsKey: string;
  #closed = false;
  #leases = new Map<string, RedisLease>();
  #watches = new Set<KVWatch>();
  #warnedConfig = false;

  constructor(options: RedisKVOptions) {
    const endpoint = options.endpoints?.[0];
    if (typeof endpoint !== "string" || endpoint === "") {
      throw new KVError(`${BACKEND}: endpoints must list at least one "host:port"`);
    }
    const db = options.db ?? 0;
    if (!Number.isInteger(db) || db < 0) {
      throw new KVError(`${BACKEND}: db must be a non-negative integer, got ${db}`);
    }
    this.#db = db;
    this.#revKey = options.revisionKey ?? "portico:rev";
    this.#revsKey = options.revisionsKey ?? "portico:revs";
    this.#client = new Redis(connectionOptions(endpoint, options));
    // ioredis prints unhandled "error" events; failures reach callers as rejections.
    this.#client.on("error", () => {});
    this.#client.defineCommand("porticoTxn", { lua: TXN_SCRIPT });
    this.#client.defineCommand("porticoRead", { lua: READ_SCRIPT });
    this.#client.defineCommand("porticoDelete", { lua: DELETE_SCRIPT });
    this.#client.defineCommand("porticoRenew", { lua: RENEW_SCRIPT });
  }

  async get(key: string): Promise<KVEntry | undefined> {
    this.#open();
    checkKey(BACKEND, key);
    const { value, revision } = await this.#read(key);
    return value === null ? undefined : { key, value, revision };
  }

  async list(prefix: string): Promise<{ entries: KVEntry[]; revision: number }> {
    this.#open();
    checkPrefix(BACKEND, prefix);
    return await this.#call(prefix, async () => {
      const revision = Number(await this.#client.get(this.#revKey) ?? 0);
      const keys = await this.#scan(prefix);
      const entries: KVEntry[] = [];
      for (let i = 0; i < keys.length; i += 500) {
        const batch = keys.slice(i, i + 500);
        const [values, revs] = await Promise.all([
          this.#client.mget(...batch),
          this.#client.hmget(this.#revsKey, ...batch),
        ]);
        batch.forEach((key, j) => {
          const value = values[j];
          // MGET answers nil for keys deleted since the scan and for non-string types.
          if (value !== null) entries.push({ key, value, revision: Number(revs[j] ?? 0) });
        });
      }
      entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      return { entries, revision };
    });
  }

  async put(key: string, value: string, options: { lease?: KVLease } = {}): Promise<void> {
    this.#open();
    checkKey(BACKEND, key);
    checkValue(BACKEND, key, value);
    await this.#apply([], [{ kind: "put", key, value, lease: options.lease }]);
  }

  async delete(key: string): Promise<void> {
    this.#open();
    checkKey(BACKEND, key);
    await this.#apply([], [{ kind: "delete", key }]);
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.#open();
    checkPrefix(BACKEND, prefix);
    return await this.#call(prefix, async () => {
      const keys = await this.#scan(prefix);
      let removed = 0;
      for (let i = 0; i < keys.length; i += 500) {
        const batch = keys.slice(i, i + 500);
        removed += Number(
          await this.#script("porticoDelete", [...this.#meta(), ...batch], ["all"]),
        );
      }
      for (const key of keys) this.#forgetLeased(key);
      return removed;
    });
  }

  compareAndSet(key: string, expected: string | undefined, value: string): Promise<boolean> {
    const condition: KVCondition = expected === undefined
      ? { key, kind: "absent" }
      : { key, kind: "equals", value: expected };
    return this.transaction([condition], [{ kind: "put", key, value }]);
  }

  async transaction(conditions: KVCondition[], operations: KVOperation[]): Promise<boolean> {
    this.#open();
    checkTransaction(BACKEND, conditions, operations);
    return await this.#apply(conditions, operations);
  }

  watch(prefix: string, options: KVWatchOptions): KVWatch {
    this.#open();
    checkPrefix(BACKEND, prefix);
    const queue = new EventQueue(options.onEvents);
    const stop = new AbortController();
    const channelPrefix = `__keyspace@${this.#db}__:`;
    const pattern = `${channelPrefix}${escapeGlob(prefix)}*`;
    const view = new Map<string, string>();
    // Work is serialised: a resync (full SCAN + reset) or the keys notified since.
    let resyncNeeded = true;
    const pendingKeys = new Set<string>();
    let wake: (() => void) | undefined;
    let state: "connected" | "disconnected" | undefined;
    const report = (next: "connected" | "disconnected", error?: Error) => {
      if (state === next || stop.signal.aborted) return;
      state = next;
      options.onState?.(next, error);
    };
    const poke = () => {
      wake?.();
      wake = undefined;
    };

    const sub = this.#client.duplicate({ lazyConnect: true });
    sub.on("error", () => {});
    sub.on("pmessage", (_pattern: string, channel: string, event: string) => {
      // "expire" only moves a TTL (lease renewals): the value did not change.
      if (event === "expire") return;
      const key = channel.slice(channelPrefix.length);
      if (!key.startsWith(prefix) || this.#isMeta(key)) return;
      pendingKeys.add(key);
      poke();
    });
    sub.on("ready", () => {
      // After any reconnect, notifications sent while we were away are lost.
      resyncNeeded = true;
      poke();
    });
    sub.on("close", () => report("disconnected", new Error("redis subscriber connection closed")));

    const resync = async () => {
      await sub.psubscribe(pattern); // idempotent; makes sure it is active before the scan
      await this.#ensureNotifications();
      const { entries, revision } = await this.list(prefix);
      if (stop.signal.aborted) return;
      view.clear();
      for (const e of entries) view.set(e.key, e.value);
      queue.push([{ kind: "reset", entries, revision }]);
      report("connected");
    };

    const refresh = async (keys: string[]) => {
      const events: KVWatchEvent[] = [];
      for (const key of keys) {
        const { value, revision, counter } = await this.#read(key);
        if (stop.signal.aborted) return;
        if (value === null) {
          if (view.delete(key)) events.push({ kind: "delete", key, revision: counter });
        } else if (view.get(key) !== value) {
          view.set(key, value);
          events.push({ kind: "put", key, value, revision: revision || counter });
        }
      }
      queue.push(events);
    };

    const loop = async () => {
      const backoff = new Backoff(100, 2000);
      try {
        await sub.connect();
      } catch (error) {
        report("disconnected", asError(error)); // ioredis keeps retrying; "ready" will follow
      }
      while (!stop.signal.aborted) {
        try {
          if (resyncNeeded) {
            resyncNeeded = false;
            pendingKeys.clear(); // the scan reads them anyway
            await resync();
          } else if (pendingKeys.size > 0) {
            const keys = [...pendingKeys];
            pendingKeys.clear();
            await refresh(keys);
          } else {
            await new Promise<void>((resolve) => (wake = resolve));
          }
          backoff.reset();
        } catch (error) {
          if (stop.signal.aborted) return;
          resyncNeeded = true;
          report("disconnected", asError(error));
          await sleep(backoff.next(), stop.signal);
        }
      }
    };

    const running = loop();
    const handle: KVWatch = {
      close: async () => {
        if (stop.signal.aborted) return;
        stop.abort();
        queue.close();
        poke();
        this.#watches.delete(handle);
        sub.disconnect();
        // A command queued while the server was never reachable (ioredis's
        // offline queue) may never settle; closing must not wait on it.
        await settleWithin(running, 1000);
      },
    };
    stop.signal.addEventListener("abort", poke);
    this.#watches.add(handle);
    return handle;
  }

  async grantLease(ttlMs: number): Promise<KVLease> {
    this.#open();
    checkTtl(BACKEND, ttlMs);
    const ttl = Math.ceil(ttlMs);
    const lease: RedisLease = {
      id: crypto.randomUUID(),
      ttlMs: ttl,
      keys: new Set(),
      revoke: async () => {
        clearTimeout(lease.timer);
        this.#leases.delete(lease.id);
        const keys = [...lease.keys];
        lease.keys.clear();
        if (keys.length > 0) {
          await this.#call(
            keys[0],
            () => this.#script("porticoDelete", [...this.#meta(), ...keys], ["ttl"]),
          );
        }
      },
    };
    const renew = async () => {
      if (!this.#leases.has(lease.id)) return;
      const keys = [...lease.keys];
      try {
        if (keys.length > 0) {
          const gone = await this.#script("porticoRenew", keys, [String(ttl)]) as string[];
          for (const key of gone) lease.keys.delete(key);
        }
      } catch {
        // Redis unreachable: try again at the next tick; the TTL decides.
      }
      if (this.#leases.has(lease.id)) lease.timer = setTimeout(renew, ttl / 3);
    };
    this.#leases.set(lease.id, lease);
    lease.timer = setTimeout(renew, ttl / 3);
    return lease;
  }

  /**
   * Closes watches and connections. Leases stop being renewed but are not
   * revoked: their keys expire after the TTL, as for a crashed node.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const lease of this.#leases.values()) clearTimeout(lease.timer);
    this.#leases.clear();
    await Promise.all([...this.#watches].map((w) => w.close()));
    if (this.#client.status !== "ready") {
      this.#client.disconnect();
      return;
    }
    try {
      await settleWithin(this.#client.quit(), 1000);
    } catch {
      // fall through to the hard disconnect
    }
    this.#client.disconnect();
  }

  async #apply(conditions: KVCondition[], operations: KVOperation[]): Promise<boolean> {
    const keys: string[] = [];
    const index = (key: string) => {
      let i = keys.indexOf(key);
      if (i < 0) i = keys.push(key) - 1;
      return i + 3; // Lua KEYS are 1-based and the first two are the bookkeeping keys
    };
    const leases = operations.map((op) => {
      if (op.kind !== "put" || !op.lease) return undefined;
      const lease = this.#leases.get(op.lease.id);
      if (!lease) {
        throw new KVError(
          `${BACKEND}: lease ${op.lease.id} is not held by this store (revoked, or granted by another client)`,
          op.key,
        );
      }
      return lease;
    });
    const spec = {
      c: conditions.map((
        c,
      ) => [index(c.key), c.kind === "absent" ? "a" : "e", c.kind === "equals" ? c.value : ""]),
      o: operations.map((op, i) => [
        index(op.key),
        op.kind === "put" ? "p" : "d",
        op.kind === "put" ? op.value : "",
        leases[i]?.ttlMs ?? 0,
      ]),
    };
    const first = conditions[0]?.key ?? operations[0]?.key;
    const ok = await this.#call(
      first,
      () => this.#script("porticoTxn", [...this.#meta(), ...keys], [JSON.stringify(spec)]),
    );
    if (Number(ok) !== 1) return false;
    operations.forEach((op, i) => {
      this.#forgetLeased(op.key);
      leases[i]?.keys.add(op.key);
    });
    return true;
  }

  async #read(key: string): Promise<{ value: string | null; revision: number; counter: number }> {
    const [value, revision, counter] = await this.#call(
      key,
      () => this.#script("porticoRead", [key, ...this.#meta()], []),
    ) as [string | null, string | null, string | null];
    return { value, revision: Number(revision ?? 0), counter: Number(counter ?? 0) };
  }

  /** Keys starting with `prefix`, without the bookkeeping keys. */
  async #scan(prefix: string): Promise<string[]> {
    const found = new Set<string>();
    let cursor = "0";
    do {
      const [next, keys] = await this.#client.scan(
        cursor,
        "MATCH",
        `${escapeGlob(prefix)}*`,
        "COUNT",
        1000,
      );
      cursor = next;
      for (const key of keys) if (key.startsWith(prefix) && !this.#isMeta(key)) found.add(key);
    } while (cursor !== "0");
    return [...found];
  }

  /** Turns on keyspace notifications unless the server already sends the ones we need. */
  async #ensureNotifications(): Promise<void> {
    try {
      const [, flags = ""] = await this.#client.config("GET", "notify-keyspace-events") as string[];
      const hasAll = flags.includes("A") || ["$", "g", "x"].every((f) => flags.includes(f));
      if (flags.includes("K") && hasAll) return;
      await this.#client.config("SET", "notify-keyspace-events", "KEA");
    } catch (error) {
      if (!this.#warnedConfig) {
        this.#warnedConfig = true;
        console.warn(
          `${BACKEND}: could not enable keyspace notifications (${asError(error).message}); ` +
            `set notify-keyspace-events to KEA (or at least K$gx) on the server, or watches will miss changes`,
        );
      }
    }
  }

  #script(name: string, keys: string[], args: string[]): Promise<unknown> {
    const fn =
      (this.#client as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[
        name
      ];
    return fn.call(this.#client, keys.length, ...keys, ...args);
  }

  #meta(): [string, string] {
    return [this.#revKey, this.#revsKey];
  }

  #isMeta(key: string): boolean {
    return key === this.#revKey || key === this.#revsKey;
  }

  #forgetLeased(key: string): void {
    for (const lease of this.#leases.values()) lease.keys.delete(key);
  }

  #open(): void {
    if (this.#closed) throw new KVError(`${BACKEND}: store is closed`);
  }

  async #call<T>(key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof KVError) throw error;
      throw new KVError(`${BACKEND}: ${asError(error).message}`, key, { cause: error });
    }
  }
}

function connectionOptions(endpoint: string, options: RedisKVOptions): RedisOptions {
  const url = new URL(/^[a-z]+:\/\//i.test(endpoint) ? endpoint : `redis://${endpoint}`);
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new KVError(
      `${BACKEND}: endpoint ${JSON.stringify(endpoint)} must be host:port or redis://host:port`,
    );
  }
  const timeout = options.timeoutMs ?? 5000;
  const result: RedisOptions = {
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : 6379,
    db: options.db ?? 0,
    username: options.username,
    password: options.password,
    connectTimeout: timeout,
    lazyConnect: false,
    // Keep retrying while the server is away, a little at a time.
    retryStrategy: (times: number) => Math.min(50 * times, 1000),
    maxRetriesPerRequest: Math.max(3, Math.ceil(timeout / 500)),
  };
  if (options.tls || url.protocol === "rediss:") {
    const tls = options.tls ?? {};
    result.tls = {
      ca: tls.ca ? loadPem(BACKEND, "tls.ca", tls.ca) : undefined,
      cert: tls.cert ? loadPem(BACKEND, "tls.cert", tls.cert) : undefined,
      key: tls.key ? loadPem(BACKEND, "tls.key", tls.key) : undefined,
    };
  }
  return result;
}

/** Escapes Redis glob metacharacters so a prefix matches literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

