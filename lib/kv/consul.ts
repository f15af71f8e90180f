/**
 * A {@link KVStore} on Consul's HTTP API, with `fetch` and no client library.
 *
 * - Reads use `?consistent`, so a node sees what another node just wrote
 *   (an ACME challenge token, a fencing record). An entry's revision is its
 *   `ModifyIndex`; a list's revision is the `X-Consul-Index` header.
 * - `compareAndSet` reads the key and writes with `?cas=ModifyIndex` (or
 *   `?cas=0` for "absent"), retrying if another write slipped in between
 *   while the value still matches.
 * - `transaction` turns value conditions into index conditions: it reads
 *   each condition's key, checks the value, then sends one `/v1/txn` with
 *   `check-index` (or `check-not-exists`) ahead of the writes. If the
 *   transaction is refused because an index moved, it reads and tries again.
 *   Consul allows at most 64 operations per transaction.
 * - Leases are sessions (`Behavior=delete`, `LockDelay=0s`) renewed every
 *   TTL/3; keys are written with `?acquire=SESSION` (or the txn `lock`
 *   verb), so Consul deletes them when the session is destroyed or expires.
 *   Consul refuses session TTLs under 10 s, so shorter leases are raised to
 *   `minSessionTtlMs`; Consul may also wait up to twice the TTL to expire it.
 * - A watch is a loop of blocking queries (`?recurse&index=N&wait=...`) on
 *   the prefix. Successive answers are diffed into put/delete events. Errors
 *   back off and retry from the last index; when the index goes backwards
 *   (a restored or rebuilt cluster) the watch emits a `reset`, as Consul's
 *   blocking-query docs say to.
 *
 * @example
 * ```ts
 * const store = new ConsulKVStore({ endpoints: ["http://127.0.0.1:8500"], token: "..." });
 * await store.put("traefik/http/routers/r/rule", "Host(`a.com`)");
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

const BACKEND = "consul";
const MAX_TXN_OPS = 64;
const CAS_ATTEMPTS = 20;

/** Options for {@link ConsulKVStore}. */
export interface ConsulKVOptions {
  /** `http://host:8500`, `https://host:8501` or `host:port`; tried in order when one fails. */
  endpoints: string[];
  /** ACL token, sent as `X-Consul-Token`. */
  token?: string;
  tls?: KVTLSOptions;
  /** Timeout for each non-blocking request (default 5000). */
  timeoutMs?: number;
  /** How long a watch's blocking query waits on the server (default 30000). */
  watchWaitMs?: number;
  /** Session TTL floor (Consul's own minimum is 10 s; default 10000). */
  minSessionTtlMs?: number;
}

interface ConsulEntry {
  Key: string;
  Value: string | null;
  ModifyIndex: number;
  Session?: string;
}

interface ConsulLease extends KVLease {
  timer?: ReturnType<typeof setTimeout>;
}

/** The Consul backend. */
export class ConsulKVStore implements KVStore {
  readonly kind = "consul";
  readonly #endpoints: string[];
  readonly #token?: string;
  readonly #timeoutMs: number;
  readonly #waitMs: number;
  readonly #minTtlMs: number;
  readonly #http?: Deno.HttpClient;
  #current = 0;
  #closed = false;
  #leases = new Map<string, ConsulLease>();
  #watches = new Set<KVWatch>();

  constructor(options: ConsulKVOptions) {
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
      throw new KVError(`${BACKEND}: endpoints must list at least one "http://host:8500"`);
    }
    const scheme = options.tls ? "https" : "http";
    this.#endpoints = options.endpoints.map((e) => {
      const url = /^[a-z]+:\/\//i.test(e) ? e : `${scheme}://${e}`;
      try {
        return new URL(url).origin;
      } catch {
        throw new KVError(`${BACKEND}: endpoint ${JSON.stringify(e)} is not host:port or a URL`);
      }
    });
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#waitMs = options.watchWaitMs ?? 30000;
    this.#minTtlMs = options.minSessionTtlMs ?? 10000;
    if (options.tls) {
      const { ca, cert, key } = options.tls;
      this.#http = Deno.createHttpClient({
        caCerts: ca ? [loadPem(BACKEND, "tls.ca", ca)] : undefined,
        ...(cert && key
          ? { cert: loadPem(BACKEND, "tls.cert", cert), key: loadPem(BACKEND, "tls.key", key) }
          : {}),
      });
    }
  }

  async get(key: string): Promise<KVEntry | undefined> {
    this.#open();
    checkKey(BACKEND, key);
    return (await this.#read(key)).entry;
  }

  async list(prefix: string): Promise<{ entries: KVEntry[]; revision: number }> {
    this.#open();
    checkPrefix(BACKEND, prefix);
    const { entries, index } = await this.#listAt(prefix, {});
    return { entries, revision: index };
  }

  async put(key: string, value: string, options: { lease?: KVLease } = {}): Promise<void> {
    this.#open();
    checkKey(BACKEND, key);
    checkValue(BACKEND, key, value);
    const query: Record<string, string> = {};
    if (options.lease) query.acquire = this.#session(options.lease, key);
    const ok = await this.#json<boolean>("PUT", kvPath(key), { key, query, body: value });
    if (!ok) {
      throw new KVError(`${BACKEND}: write refused: the key is locked by another session`, key);
    }
  }

  async delete(key: string): Promise<void> {
    this.#open();
    checkKey(BACKEND, key);
    await this.#json("DELETE", kvPath(key), { key });
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.#open();
    checkPrefix(BACKEND, prefix);
    // Consul's recursive delete does not say how many keys went; count first.
    const { entries } = await this.#listAt(prefix, {});
    if (entries.length === 0) return 0;
    await this.#json("DELETE", kvPath(prefix), { key: prefix, query: { recurse: "" } });
    return entries.length;
  }

  async compareAndSet(key: string, expected: string | undefined, value: string): Promise<boolean> {
    this.#open();
    checkKey(BACKEND, key);
    checkValue(BACKEND, key, value);
    if (expected !== undefined) checkValue(BACKEND, key, expected);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      let cas = "0";
      if (expected !== undefined) {
        const { entry } = await this.#read(key);
        if (entry?.value !== expected) return false;
        cas = String(entry.revision);
      }
      const ok = await this.#json<boolean>("PUT", kvPath(key), {
        key,
        query: { cas },
        body: value,
      });
      if (ok) return true;
      if (expected === undefined) return false; // cas=0 fails only when the key exists
      // The index moved: someone wrote in between. Re-read and decide again.
    }
    throw new KVError(
      `${BACKEND}: compare-and-set kept losing races after ${CAS_ATTEMPTS} attempts`,
      key,
    );
  }

  async transaction(conditions: KVCondition[], operations: KVOperation[]): Promise<boolean> {
    this.#open();
    checkTransaction(BACKEND, conditions, operations);
    const first = conditions[0]?.key ?? operations[0]?.key;
    if (conditions.length + operations.length > MAX_TXN_OPS) {
      throw new KVError(
        `${BACKEND}: a transaction holds at most ${MAX_TXN_OPS} conditions and operations, got ${
          conditions.length + operations.length
        }`,
        first,
      );
    }
    const writes = operations.map((op) =>
      op.kind === "delete" ? { KV: { Verb: "delete", Key: op.key } } : op.lease
        ? {
          KV: {
            Verb: "lock",
            Key: op.key,
            Value: b64(op.value),
            Session: this.#session(op.lease, op.key),
          },
        }
        : { KV: { Verb: "set", Key: op.key, Value: b64(op.value) } }
    );
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const checks = [];
      for (const c of conditions) {
        const { entry } = await this.#read(c.key);
        if (c.kind === "absent") {
          if (entry) return false;
          checks.push({ KV: { Verb: "check-not-exists", Key: c.key } });
        } else {
          if (entry?.value !== c.value) return false;
          checks.push({ KV: { Verb: "check-index", Key: c.key, Index: entry.revision } });
        }
      }
      const res = await this.#fetch("PUT", "/v1/txn", {
        key: first,
        body: JSON.stringify([...checks, ...writes]),
      });
      if (res.status === 200) {
        await res.body?.cancel();
        return true;
      }
      const text = await res.text();
      if (res.status !== 409) throw this.#httpError(res.status, text, first);
      const errors = (JSON.parse(text).Errors ?? []) as { OpIndex: number; What: string }[];
      const failedWrite = errors.find((e) => e.OpIndex >= checks.length);
      if (failedWrite) {
        const op = operations[failedWrite.OpIndex - checks.length];
        throw new KVError(`${BACKEND}: transaction refused: ${failedWrite.What}`, op?.key);
      }
      // A check failed: a condition's key changed after we read it. Read again.
    }
    throw new KVError(
      `${BACKEND}: transaction kept losing races after ${CAS_ATTEMPTS} attempts`,
      first,
    );
  }

  watch(prefix: string, options: KVWatchOptions): KVWatch {
    this.#open();
    checkPrefix(BACKEND, prefix);
    const queue = new EventQueue(options.onEvents);
    const stop = new AbortController();
    let state: "connected" | "disconnected" | undefined;
    const report = (next: "connected" | "disconnected", error?: Error) => {
      if (state === next || stop.signal.aborted) return;
      state = next;
      options.onState?.(next, error);
    };

    const loop = async () => {
      const backoff = new Backoff(100, 5000);
      let known: Map<string, KVEntry> | undefined;
      let index = 0;
      while (!stop.signal.aborted) {
        try {
          const blocking = known !== undefined;
          const { entries, index: next } = await this.#listAt(prefix, {
            index: blocking ? index : undefined,
            signal: stop.signal,
          });
          if (stop.signal.aborted) return;
          report("connected");
          backoff.reset();
          if (known === undefined || next < index) {
            // First answer, or the index went backwards: start over.
            const fresh = new Map(entries.map((e) => [e.key, e]));
            const resumable = known === undefined && options.fromRevision !== undefined &&
              next === options.fromRevision;
            if (!resumable) queue.push([{ kind: "reset", entries, revision: next }]);
            known = fresh;
          } else {
            queue.push(diff(known, entries, next));
            known = new Map(entries.map((e) => [e.key, e]));
          }
          // Consul's docs: an index of 0 or less must be treated as 1.
          index = Math.max(1, next);
        } catch (error) {
          if (stop.signal.aborted) return;
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
        this.#watches.delete(handle);
        await running;
      },
    };
    this.#watches.add(handle);
    return handle;
  }

  async grantLease(ttlMs: number): Promise<KVLease> {
    this.#open();
    checkTtl(BACKEND, ttlMs);
    const ttlSeconds = Math.ceil(Math.max(ttlMs, this.#minTtlMs) / 1000);
    const { ID: id } = await this.#json<{ ID: string }>("PUT", "/v1/session/create", {
      body: JSON.stringify({
        Name: "portico",
        TTL: `${ttlSeconds}s`,
        Behavior: "delete",
        LockDelay: "0s",
      }),
    });
    const lease: ConsulLease = {
      id,
      revoke: async () => {
        clearTimeout(lease.timer);
        this.#leases.delete(id);
        await this.#json("PUT", `/v1/session/destroy/${encodeURIComponent(id)}`, {});
      },
    };
    const renew = async () => {
      if (!this.#leases.has(id)) return;
      try {
        const res = await this.#fetch("PUT", `/v1/session/renew/${encodeURIComponent(id)}`, {});
        await res.body?.cancel();
        if (res.status === 404) return void this.#leases.delete(id); // expired: its keys are gone
      } catch {
        // Unreachable for now; the next tick tries again before the TTL runs out.
      }
      if (this.#leases.has(id)) lease.timer = setTimeout(renew, (ttlSeconds * 1000) / 3);
    };
    this.#leases.set(id, lease);
    lease.timer = setTimeout(renew, (ttlSeconds * 1000) / 3);
    return lease;
  }

  /**
   * Closes watches and stops renewing sessions without destroying them, so
   * their keys go when the TTL runs out, as for a crashed node.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const lease of this.#leases.values()) clearTimeout(lease.timer);
    this.#leases.clear();
    await Promise.all([...this.#watches].map((w) => w.close()));
    this.#http?.close();
  }

  async #read(key: string): Promise<{ entry?: KVEntry; index: number }> {
    const res = await this.#fetch("GET", kvPath(key), { key, query: { consistent: "" } });
    const index = Number(res.headers.get("x-consul-index") ?? 0);
    if (res.status === 404) {
      await res.body?.cancel();
      return { index };
    }
    if (res.status !== 200) throw this.#httpError(res.status, await res.text(), key);
    const [raw] = (await res.json()) as ConsulEntry[];
    return { entry: raw && toEntry(raw), index };
  }

  async #listAt(
    prefix: string,
    opts: { index?: number; signal?: AbortSignal },
  ): Promise<{ entries: KVEntry[]; index: number }> {
    const query: Record<string, string> = { recurse: "" };
    let timeoutMs = this.#timeoutMs;
    if (opts.index !== undefined) {
      query.index = String(opts.index);
      query.wait = `${Math.ceil(this.#waitMs / 1000)}s`;
      // Consul adds up to wait/16 of jitter before answering.
      timeoutMs += this.#waitMs + this.#waitMs / 16;
    } else {
      query.consistent = "";
    }
    const res = await this.#fetch("GET", kvPath(prefix), {
      key: prefix,
      query,
      signal: opts.signal,
      timeoutMs,
    });
    const index = Number(res.headers.get("x-consul-index") ?? 0);
    if (res.status === 404) {
      await res.body?.cancel();
      return { entries: [], index };
    }
    if (res.status !== 200) throw this.#httpError(res.status, await res.text(), prefix);
    const entries = ((await res.json()) as ConsulEntry[])
      .filter((e) => e.Key.startsWith(prefix))
      .map(toEntry)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { entries, index };
  }

  async #json<T>(
    method: string,
    path: string,
    opts: { key?: string; query?: Record<string, string>; body?: string },
  ): Promise<T> {
    const res = await this.#fetch(method, path, opts);
    const text = await res.text();
    if (res.status !== 200) throw this.#httpError(res.status, text, opts.key);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KVError(
        `${BACKEND}: ${method} ${path.split("?")[0]} answered non-JSON: ${text.slice(0, 200)}`,
        opts.key,
      );
    }
  }

  /**
   * Sends one request, trying each endpoint in turn on network failure.
   * Status codes are the caller's business.
   */
  async #fetch(
    method: string,
    path: string,
    opts: {
      key?: string;
      query?: Record<string, string>;
      body?: string;
      signal?: AbortSignal;
      timeoutMs?: number;
    },
  ): Promise<Response> {
    const search = new URLSearchParams(opts.query ?? {}).toString().replace(/=(&|$)/g, "$1");
    const headers: Record<string, string> = {};
    if (this.#token) headers["X-Consul-Token"] = this.#token;
    let lastError: unknown;
    for (let tried = 0; tried < this.#endpoints.length; tried++) {
      const endpoint = this.#endpoints[this.#current];
      const signals = [AbortSignal.timeout(opts.timeoutMs ?? this.#timeoutMs)];
      if (opts.signal) signals.push(opts.signal);
      try {
        return await fetch(`${endpoint}${path}${search ? `?${search}` : ""}`, {
          method,
          headers,
          body: opts.body,
          signal: AbortSignal.any(signals),
          client: this.#http,
        });
      } catch (error) {
        if (opts.signal?.aborted) throw error;
        lastError = error;
        this.#current = (this.#current + 1) % this.#endpoints.length;
      }
    }
    throw new KVError(
      `${BACKEND}: ${method} ${path} failed on every endpoint (${this.#endpoints.join(", ")}): ${
        asError(lastError).message
      }`,
      opts.key,
      { cause: lastError },
    );
  }

  #httpError(status: number, body: string, key?: string): KVError {
    const hint = status === 403 ? " (check the ACL token)" : "";
    return new KVError(`${BACKEND}: HTTP ${status}${hint}: ${body.trim().slice(0, 300)}`, key);
  }

  #session(lease: KVLease, key: string): string {
    if (!this.#leases.has(lease.id)) {
      throw new KVError(
        `${BACKEND}: lease ${lease.id} is not held by this store (revoked, expired, or from another client)`,
        key,
      );
    }
    return lease.id;
  }

  #open(): void {
    if (this.#closed) throw new KVError(`${BACKEND}: store is closed`);
  }
}

function toEntry(raw: ConsulEntry): KVEntry {
  return {
    key: raw.Key,
    value: raw.Value === null ? "" : unb64(raw.Value),
    revision: raw.ModifyIndex,
  };
}

/** The events that turn `before` into `after`, in modification order; deletions carry `index`. */
function diff(before: Map<string, KVEntry>, after: KVEntry[], index: number): KVWatchEvent[] {
  const events: KVWatchEvent[] = [];
  const seen = new Set<string>();
  for (const e of after) {
    seen.add(e.key);
    const old = before.get(e.key);
    if (!old || old.revision !== e.revision || old.value !== e.value) {
      events.push({ kind: "put", key: e.key, value: e.value, revision: e.revision });
    }
  }
  for (const key of before.keys()) {
    if (!seen.has(key)) events.push({ kind: "delete", key, revision: index });
  }
  return events.sort((a, b) => a.revision - b.revision);
}

/** `/v1/kv/` plus the key with each segment escaped but the slashes kept. */
function kvPath(key: string): string {
  return `/v1/kv/${key.split("/").map(encodeURIComponent).join("/")}`;
}

function b64(text: string): string {
  let s = "";
  for (const b of new TextEncoder().encode(text)) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)));
}
