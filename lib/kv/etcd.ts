/**
 * A {@link KVStore} on etcd v3, through the `etcd3` npm client (gRPC).
 *
 * - Revisions are etcd's: an entry's revision is its `mod_revision`, a list's
 *   revision is the store revision in the response header.
 * - Conditions become `Txn` compares: "absent" is `create_revision == 0`,
 *   "equals" compares the value.
 * - Watches use etcd's watch stream. The client resumes a broken stream from
 *   the revision after the last one it delivered; if etcd has compacted that
 *   revision away the watch is cancelled, and we re-list and emit `reset`.
 * - Leases are etcd leases kept alive by the client (every TTL/3). TTLs are
 *   whole seconds in etcd, so `ttlMs` is rounded up.
 *
 * @example
 * ```ts
 * const store = new EtcdKVStore({ endpoints: ["http://127.0.0.1:2379"] });
 * await store.put("traefik/http/routers/r/rule", "Host(`a.com`)");
 * ```
 *
 * @module
 */

import { type ComparatorBuilder, Etcd3, type IOptions, type Lease, type Watcher } from "etcd3";
import { Buffer } from "node:buffer";
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

const BACKEND = "etcd";

/** Options for {@link EtcdKVStore}. */
export interface EtcdKVOptions {
  /** `http://host:port` or `host:port` (then `https://` when `tls` is set). */
  endpoints: string[];
  username?: string;
  password?: string;
  tls?: KVTLSOptions;
  /** Deadline for each unary call and for dialing (default 5000). */
  timeoutMs?: number;
}

interface RawKV {
  key: Buffer;
  value: Buffer;
  mod_revision: string;
}

/** The etcd backend. */
export class EtcdKVStore implements KVStore {
  readonly kind = "etcd";
  readonly #client: Etcd3;
  #closed = false;
  #leases = new Set<Lease>();
  #watches = new Set<KVWatch>();

  constructor(options: EtcdKVOptions) {
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
      throw new KVError(`${BACKEND}: endpoints must list at least one "http://host:port"`);
    }
    const timeoutMs = options.timeoutMs ?? 5000;
    const scheme = options.tls ? "https" : "http";
    const hosts = options.endpoints.map((e) => (/^[a-z]+:\/\//i.test(e) ? e : `${scheme}://${e}`));
    if (options.tls) {
      // gRPC sends the endpoint's host as the TLS server name, and Deno's
      // node:tls refuses an IP there; fail now with the fix instead of a
      // connection error on every call.
      const ip = hosts.find((h) => /^[a-z]+:\/\/(\[[0-9a-f:.]+\]|\d+\.\d+\.\d+\.\d+)(:|\/|$)/i.test(h));
      if (ip) {
        throw new KVError(
          `${BACKEND}: endpoint "${ip}" is an IP address; with TLS, name etcd endpoints by a host name ` +
            `that the server certificate covers (for example etcd-1.internal:2379)`,
        );
      }
    }
    const config: IOptions = {
      hosts,
      dialTimeout: timeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
      faultHandling: {
        // The default per-host circuit breaker refuses every call for 5 s after
        // three failures, which turns a 1 s etcd restart into 5 s of errors.
        // Calls still fail over to the next host and are retried by the
        // client's global policy.
        host: () => passThroughPolicy as never,
        // The default watch backoff grows to 30 s; a config watch should come
        // back within a couple of seconds of etcd doing so.
        watchBackoff: cappedBackoff(100, 2000) as never,
      },
    };
    if (options.username !== undefined) {
      config.auth = { username: options.username, password: options.password ?? "" };
    }
    if (options.tls) {
      const { ca, cert, key } = options.tls;
      config.credentials = {
        rootCertificate: ca ? Buffer.from(loadPem(BACKEND, "tls.ca", ca)) : Buffer.alloc(0),
        certChain: cert ? Buffer.from(loadPem(BACKEND, "tls.cert", cert)) : undefined,
        privateKey: key ? Buffer.from(loadPem(BACKEND, "tls.key", key)) : undefined,
      };
    }
    this.#client = new Etcd3(config);
  }

  async get(key: string): Promise<KVEntry | undefined> {
    this.#open();
    checkKey(BACKEND, key);
    const res = await this.#call(key, () => this.#client.get(key).exec());
    const kv = res.kvs[0] as RawKV | undefined;
    return kv && toEntry(kv);
  }

  async list(prefix: string): Promise<{ entries: KVEntry[]; revision: number }> {
    this.#open();
    checkPrefix(BACKEND, prefix);
    const builder = this.#client.getAll().sort("Key", "Ascend");
    const res = await this.#call(
      prefix,
      () => (prefix === "" ? builder.all() : builder.prefix(prefix)).exec(),
    );
    return {
      entries: (res.kvs as RawKV[]).map(toEntry),
      revision: Number(res.header.revision),
    };
  }

  async put(key: string, value: string, options: { lease?: KVLease } = {}): Promise<void> {
    this.#open();
    checkKey(BACKEND, key);
    checkValue(BACKEND, key, value);
    const put = this.#client.put(key).value(value);
    if (options.lease) put.lease(options.lease.id);
    await this.#call(key, () => put.exec());
  }

  async delete(key: string): Promise<void> {
    this.#open();
    checkKey(BACKEND, key);
    await this.#call(key, () => this.#client.delete().key(key).exec());
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.#open();
    checkPrefix(BACKEND, prefix);
    const builder = this.#client.delete();
    const res = await this.#call(
      prefix,
      () => (prefix === "" ? builder.all() : builder.prefix(prefix)).exec(),
    );
    return Number(res.deleted);
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
    const first = conditions[0]?.key ?? operations[0]?.key;
    let txn: ComparatorBuilder;
    if (conditions.length === 0) {
      // etcd3's builder starts from a compare; "no key is absent-or-not" is
      // not expressible, so an unconditional transaction compares nothing.
      txn = this.#client.if(first ?? "\0", "Version", ">", -1);
    } else {
      const [head, ...rest] = conditions;
      txn = addCompare(this.#client.if.bind(this.#client), head);
      for (const c of rest) txn = addCompare(txn.and.bind(txn), c);
    }
    txn.then(
      ...operations.map((op) => {
        if (op.kind === "delete") return this.#client.delete().key(op.key);
        const put = this.#client.put(op.key).value(op.value);
        if (op.lease) put.lease(op.lease.id);
        return put;
      }),
    );
    const res = await this.#call(first, () => txn.commit());
    return res.succeeded;
  }

  watch(prefix: string, options: KVWatchOptions): KVWatch {
    this.#open();
    checkPrefix(BACKEND, prefix);
    const queue = new EventQueue(options.onEvents);
    const stop = new AbortController();
    let last = options.fromRevision;
    let watcher: Watcher | undefined;
    let state: "connected" | "disconnected" | undefined;
    const report = (next: "connected" | "disconnected", error?: Error) => {
      if (state === next || stop.signal.aborted) return;
      state = next;
      options.onState?.(next, error);
    };

    // Lists (when we have nothing to resume from) and opens an etcd watch
    // from the next revision. Retries until it works or the watch closes.
    const begin = async (): Promise<void> => {
      const backoff = new Backoff(100, 2000);
      while (!stop.signal.aborted) {
        try {
          if (last === undefined) {
            const { entries, revision } = await this.list(prefix);
            if (stop.signal.aborted) return;
            queue.push([{ kind: "reset", entries, revision }]);
            last = revision;
          }
          const builder = this.#client.watch().startRevision(String(last + 1));
          const w = await (prefix === ""
            ? builder.inRange({ start: "\0", end: "\0" })
            : builder.prefix(prefix)).create();
          if (stop.signal.aborted) {
            return void (await w.cancel().catch(() => {}));
          }
          watcher = w;
          attach(w);
          report("connected");
          return;
        } catch (error) {
          report("disconnected", asError(error));
          await sleep(backoff.next(), stop.signal);
        }
      }
    };

    const attach = (w: Watcher) => {
      w.on("data", (res) => {
        const events: KVWatchEvent[] = [];
        // Every event of one transaction shares a revision, so the replay
        // check compares with what was delivered before this batch.
        const floor = last;
        for (const ev of res.events) {
          const kv = ev.kv as RawKV;
          const revision = Number(kv.mod_revision);
          if (floor !== undefined && revision <= floor) continue; // replayed after a reconnect
          const key = kv.key.toString();
          events.push(
            ev.type === "Put"
              ? { kind: "put", key, value: kv.value.toString(), revision }
              : { kind: "delete", key, revision },
          );
          last = revision;
        }
        queue.push(events);
      });
      w.on("disconnected", (error) => report("disconnected", asError(error)));
      w.on("connected", () => report("connected"));
      // etcd cancelled the watch, typically because the revision we resume
      // from was compacted: start over from a fresh list.
      w.on("error", (error) => {
        if (stop.signal.aborted) return;
        report("disconnected", asError(error));
        watcher = undefined;
        w.removeAllListeners();
        w.cancel().catch(() => {});
        last = undefined;
        void begin();
      });
    };

    const started = begin();
    const handle: KVWatch = {
      close: async () => {
        if (stop.signal.aborted) return;
        stop.abort();
        queue.close();
        this.#watches.delete(handle);
        await started;
        const w = watcher;
        watcher = undefined;
        w?.removeAllListeners();
        // Swallow errors from a late cancel: the stream may already be gone.
        w?.on("error", () => {});
        await w?.cancel().catch(() => {});
      },
    };
    this.#watches.add(handle);
    return handle;
  }

  async grantLease(ttlMs: number): Promise<KVLease> {
    this.#open();
    checkTtl(BACKEND, ttlMs);
    const lease = this.#client.lease(Math.max(1, Math.ceil(ttlMs / 1000)), { autoKeepAlive: true });
    // A lost lease is reported by its keys disappearing; without a listener
    // the EventEmitter would throw.
    lease.on("lost", () => this.#leases.delete(lease));
    const id = await this.#call(undefined, () => lease.grant());
    this.#leases.add(lease);
    return {
      id,
      revoke: async () => {
        this.#leases.delete(lease);
        await this.#call(undefined, () => lease.revoke());
      },
    };
  }

  /**
   * Closes watches and the connection. Leases stop being renewed but are not
   * revoked: their keys stay until the TTL runs out, as for a crashed node.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#watches].map((w) => w.close()));
    for (const lease of this.#leases) lease.release();
    this.#leases.clear();
    this.#client.close();
  }

  #open(): void {
    if (this.#closed) throw new KVError(`${BACKEND}: store is closed`);
  }

  async #call<T>(key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw new KVError(`${BACKEND}: ${asError(error).message}`, key, { cause: error });
    }
  }
}

function toEntry(kv: RawKV): KVEntry {
  return { key: kv.key.toString(), value: kv.value.toString(), revision: Number(kv.mod_revision) };
}

type AddCompare = (
  key: string,
  column: "Create" | "Value",
  cmp: "==",
  value: string | number,
) => ComparatorBuilder;

function addCompare(add: AddCompare, c: KVCondition): ComparatorBuilder {
  return c.kind === "absent" ? add(c.key, "Create", "==", 0) : add(c.key, "Value", "==", c.value);
}

/** A cockatiel-shaped policy that just runs the call. */
const passThroughPolicy = {
  execute: <T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => T): Promise<Awaited<T>> =>
    Promise.resolve().then(() =>
      fn({ signal: new AbortController().signal, attempt: 0 })
    ) as Promise<
      Awaited<T>
    >,
};

/** A cockatiel-shaped backoff factory: doubles from `baseMs` up to `maxMs`. */
function cappedBackoff(baseMs: number, maxMs: number) {
  type Step = { duration: number; next(): Step };
  const step = (ms: number): Step => ({ duration: ms, next: () => step(Math.min(maxMs, ms * 2)) });
  return { next: () => step(baseMs) };
}
