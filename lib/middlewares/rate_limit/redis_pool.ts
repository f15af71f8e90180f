/**
 * The connections one `rateLimit.redis` middleware keeps to Redis, through
 * ioredis. This module imports ioredis, so it is itself imported only when
 * a Redis limiter is built (see `redis_limiter.ts`): an instance without one
 * never pays for the client.
 *
 * Every request is one `EVALSHA` (one round trip; on a single server ioredis
 * pipelines the commands of concurrent requests into shared writes). With
 * several endpoints the client is a Redis Cluster one, and each bucket's
 * script runs on the master of its key's slot. When Redis answers
 * `NOSCRIPT` (restarted, or `SCRIPT FLUSH`), the same request sends `EVAL`,
 * which also puts the script back in Redis's cache.
 *
 * What bounds the waiting on the request path:
 * - A command goes out only on a connection that is ready. While none is
 *   (Redis down, reconnecting, credentials refused), `run` fails at once;
 *   ioredis reconnects in the background, so sharing resumes on its own.
 * - A request waits at most `writeTimeout + readTimeout` for the answer.
 *   A connection that times out is dropped and dialled again, as go-redis
 *   discards a connection after a timeout, so a silent network does not make
 *   every later request wait the timeout too. (A cluster client's commands
 *   are timed by ioredis's `commandTimeout` instead, and its nodes are
 *   redialled by ioredis.)
 * - Only the first connection attempt may be waited for (`whenReady`), and
 *   at most `dialTimeout`.
 *
 * @module
 */

import { isIP } from "node:net";
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { connectTimeoutMessage, type RedisLimiterOptions } from "./redis_options.ts";
import { BUCKET_SCRIPT, BUCKET_SCRIPT_SHA1 } from "./redis_script.ts";
import { ConnectionWatch } from "./connection_watch.ts";

/** Why a command did not get an answer. */
export class RedisUnavailableError extends Error {
  constructor(message: string, readonly kind: "not-ready" | "timeout" | "reply" | "closed") {
    super(message);
    this.name = "RedisUnavailableError";
  }
}

/** What the pool reports to its owner (never a password). */
export interface PoolEvents {
  /** A connection failed or Redis refused something; may repeat while it lasts. */
  onError(error: Error): void;
  /** A connection became ready (first time or after an outage). */
  onReady(): void;
}

/** One server's connection, or a Redis Cluster client (several endpoints). */
type Client = Redis | Cluster;

/** Connections to one Redis server (or one Redis Cluster) for one middleware. */
export class RedisBucketPool {
  readonly #clients: Client[];
  /** Per connection: the command timeout, and what runs when a command ends. */
  readonly #watches = new Map<Client, ConnectionWatch>();
  readonly #ends = new Map<Client, () => void>();
  /** Connections dropped for a timeout: their failed commands say so. */
  #timedOut = new WeakSet<Client>();
  #timeoutMs = 0;
  #next = 0;
  #inFlight = 0;
  #retired = false;
  #everReady = false;
  /** When waiting for the first connection stops being worth it (performance.now()). */
  #firstDeadline = Infinity;
  #waiters = new Set<(ready: boolean) => void>();
  /** Connections that timed out: not used again until they reconnect. */
  #suspect = new WeakSet<Client>();

  constructor(readonly options: RedisLimiterOptions, events: PoolEvents) {
    const { readTimeoutMs, writeTimeoutMs, dialTimeoutMs } = options;
    // Traefik: a zero timeout is no timeout; either zero leaves the wait unbounded.
    if (readTimeoutMs > 0 && writeTimeoutMs > 0) this.#timeoutMs = readTimeoutMs + writeTimeoutMs;
    this.#clients = Array.from({ length: options.connections }, () => {
      const client = newClient(options);
      // A cluster answers from several nodes, out of order: ioredis times its commands.
      const watch = this.#timeoutMs > 0 && client instanceof Redis
        ? new ConnectionWatch(this.#timeoutMs, () => {
          // A connection that went silent is redialled, as go-redis drops it;
          // until then no request is sent on it. Dropping it fails its commands.
          this.#suspect.add(client);
          this.#timedOut.add(client);
          redial(client);
        })
        : undefined;
      if (watch) this.#watches.set(client, watch);
      this.#ends.set(client, () => {
        watch?.ended();
        this.#inFlight--;
        if (this.#retired && this.#inFlight === 0) this.#disconnect();
      });
      // ioredis bounds the TCP connect; dialTimeout also covers AUTH, SELECT
      // and the ready check, which a silent server would hold forever.
      let handshake: ReturnType<typeof setTimeout> | undefined;
      const endHandshake = () => {
        clearTimeout(handshake);
        handshake = undefined;
      };
      client.on("connect", () => {
        endHandshake();
        handshake = setTimeout(() => {
          handshake = undefined;
          events.onError(new Error(connectTimeoutMessage(dialTimeoutMs)));
          redial(client);
        }, dialTimeoutMs);
      });
      client.on("error", (err: Error) => events.onError(err));
      // A cluster reports its nodes' failures (refused AUTH among them) separately.
      if (client instanceof Cluster) client.on("node error", (err: Error) => events.onError(err));
      client.on("ready", () => {
        endHandshake();
        this.#suspect.delete(client);
        this.#timedOut.delete(client);
        this.#everReady = true;
        // Loaded ahead of the first request, and again after a restart emptied the cache.
        const nodes = client instanceof Cluster ? client.nodes("master") : [client];
        for (const node of nodes) node.script("LOAD", BUCKET_SCRIPT).catch(() => {});
        this.#settleWaiters(true);
        events.onReady();
      });
      client.on("close", () => {
        endHandshake();
        const stillTrying = this.#clients.some((c) =>
          c.status === "connecting" || c.status === "connect"
        );
        if (!this.#everReady && !stillTrying) {
          this.#settleWaiters(false);
        }
      });
      client.on("end", endHandshake);
      return client;
    });
  }

  /** Opens every connection; returns at once. */
  connect(): void {
    this.#firstDeadline = performance.now() + this.options.dialTimeoutMs;
    for (const c of this.#clients) c.connect().catch(() => {});
  }

  /** True when a command can go out now. */
  get ready(): boolean {
    return this.#clients.some((c) => this.#usable(c));
  }

  #usable(c: Client): boolean {
    return c.status === "ready" && !this.#suspect.has(c);
  }

  /** True while the first connection attempt is still within its dialTimeout. */
  get firstAttemptPending(): boolean {
    return !this.#everReady && !this.#retired && performance.now() < this.#firstDeadline;
  }

  /**
   * Resolves true once a connection is ready; false when the first attempt
   * fails or its dialTimeout ends. Only the first attempt is waited for.
   */
  whenReady(): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    if (!this.firstAttemptPending) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ready: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve(ready);
      };
      const timer = setTimeout(
        () => done(false),
        Math.max(0, this.#firstDeadline - performance.now()),
      );
      this.#waiters.add(done);
    });
  }

  #settleWaiters(ready: boolean): void {
    if (!ready) this.#firstDeadline = Math.min(this.#firstDeadline, performance.now());
    for (const w of [...this.#waiters]) w(ready);
  }

  /**
   * Runs the bucket script for `key`: [allowed (1/0), µs].
   *
   * @throws {RedisUnavailableError} when no connection is ready, on timeout, or on an error reply.
   */
  run(key: string, args: string[]): Promise<[number, number]> {
    const client = this.#pick();
    if (!client) {
      return Promise.reject(
        new RedisUnavailableError("no connection to Redis is ready", "not-ready"),
      );
    }
    this.#inFlight++;
    this.#watches.get(client)?.started();
    const reply = this.#evaluate(client, key, args);
    const end = this.#ends.get(client)!;
    reply.then(end, end);
    return reply;
  }

  async #evaluate(client: Client, key: string, args: string[]): Promise<[number, number]> {
    let reply: unknown;
    try {
      reply = await client.evalsha(BUCKET_SCRIPT_SHA1, 1, key, ...args);
    } catch (err) {
      if (!String((err as Error).message).startsWith("NOSCRIPT")) {
        throw this.#unavailable(client, err);
      }
      try {
        reply = await client.eval(BUCKET_SCRIPT, 1, key, ...args);
      } catch (again) {
        throw this.#unavailable(client, again);
      }
    }
    if (!Array.isArray(reply) || reply.length < 2) {
      throw new RedisUnavailableError(
        `unexpected reply from the bucket script: ${JSON.stringify(reply)}`,
        "reply",
      );
    }
    return [Number(reply[0]), Number(reply[1])];
  }

  #unavailable(client: Client, err: unknown): RedisUnavailableError {
    if (this.#timedOut.has(client)) {
      return new RedisUnavailableError(
        `no answer from Redis within ${this.#timeoutMs} ms`,
        "timeout",
      );
    }
    return asUnavailable(err);
  }

  #pick(): Client | undefined {
    const n = this.#clients.length;
    for (let i = 0; i < n; i++) {
      const c = this.#clients[(this.#next + i) % n];
      if (this.#usable(c)) {
        this.#next = (this.#next + i + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  /** Closes the connections once no command is waiting for its answer. */
  retire(): void {
    this.#retired = true;
    this.#settleWaiters(false);
    if (this.#inFlight === 0) this.#disconnect();
  }

  #disconnect(): void {
    for (const w of this.#watches.values()) w.reset();
    for (const c of this.#clients) c.disconnect(false);
  }
}

/**
 * Drops a connection and lets ioredis dial again. `disconnect` alone ends
 * the socket politely, which a frozen server never acknowledges.
 */
function redial(client: Client): void {
  client.disconnect(true);
  (client as unknown as { stream?: { destroy?: () => void } }).stream?.destroy?.();
}

function asUnavailable(err: unknown): RedisUnavailableError {
  const message = (err as Error)?.message ?? String(err);
  const closed = /Connection is closed|Stream isn't writeable|ECONN|EPIPE/.test(message);
  return new RedisUnavailableError(message, closed ? "closed" : "reply");
}

function newClient(o: RedisLimiterOptions): Client {
  const tls = o.tls || o.endpoints.some((e) => e.tls) ? o.tls ?? {} : undefined;
  const connection: RedisOptions = {
    username: o.username,
    password: o.password,
    connectTimeout: o.dialTimeoutMs,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    keepAlive: 10_000,
  };
  if (o.endpoints.length > 1) {
    const timeout = o.readTimeoutMs > 0 && o.writeTimeoutMs > 0
      ? o.readTimeoutMs + o.writeTimeoutMs
      : undefined;
    const options: ClusterOptions = {
      lazyConnect: true,
      // Never queue while disconnected: a request must not wait on an outage.
      enableOfflineQueue: false,
      // ioredis 5.9 batches EVALSHA of different slots into one pipeline and
      // then refuses it ("All keys in the pipeline should belong to the same
      // slots allocation group"), so a cluster sends each command on its own.
      enableAutoPipelining: false,
      slotsRefreshTimeout: o.dialTimeoutMs,
      clusterRetryStrategy: (times: number) => Math.min(100 * times, 1000),
      redisOptions: { ...connection, commandTimeout: timeout, ...(tls ? { tls } : {}) },
    };
    return new Cluster(o.endpoints.map((e) => ({ host: e.host, port: e.port })), options);
  }
  const endpoint = o.endpoints[0];
  const options: RedisOptions = {
    ...connection,
    host: endpoint.host,
    port: endpoint.port,
    db: o.db,
    // Never queue while disconnected: a request must not wait on an outage.
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    // Keep dialling while Redis is away, at most once a second.
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
  };
  if (tls) {
    // SNI carries names only; an IP is checked against the certificate's IP SANs.
    options.tls = { ...tls, ...(isIP(endpoint.host) !== 0 ? {} : { servername: endpoint.host }) };
  }
  return new Redis(options);
}
