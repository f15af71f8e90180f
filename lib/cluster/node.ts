/**
 * The I/O shell around the election state machine: real timers, HTTP
 * transport between peers (HMAC-signed POSTs on the cluster address, replies
 * in the response body), durable {term, votedFor}, claiming the leader record
 * in the KV store on election, role-change events and a status view for
 * `/api/cluster`.
 *
 * Effects from the state machine are applied strictly in order by one queue,
 * so a vote reply never leaves before its `persist` has been fsynced.
 *
 * Election ids are peer addresses (`host:port`): they are what every node
 * has in its config, and unique by construction. `nodeId` is the human name
 * shown in the API and stored in the leader record.
 *
 * @module
 */
import { settleWithin } from "../deadline.ts";
import {
  type ApiRole,
  type ClusterCounters,
  type ClusterStatus,
  emptyClusterCounters,
  RoleHistory,
} from "./view.ts";
export type { ApiRole, ClusterCounters, ClusterStatus };
export { emptyClusterCounters };
import { type Effect, Election, type PeerMessage, type Role } from "./election.ts";
import { loadState, saveState } from "./persistence.ts";
import { MessageAuth, type RefusalReason } from "./transport_auth.ts";
import {
  isRequest,
  MessageDecodeError,
  parsePeerMessage,
  REPLY_TYPES,
  REQUEST_PATHS,
  type RequestType,
  requestTypeForPath,
} from "./messages.ts";
import { claimLeadership, type LeaderRecord } from "./fencing.ts";
import type { KVStore } from "../kv/types.ts";

/** Structured logger: one call per event. */
export type ClusterLogger = (
  level: "debug" | "info" | "warn" | "error",
  msg: string,
  fields: Record<string, unknown>,
) => void;

/** Options for {@linkcode ClusterNode.start}. */
export interface ClusterNodeOptions {
  /** Human name, shown in the API and stored in the leader record. */
  nodeId: string;
  /** `host:port` this node listens on for peers; also its election id. */
  address: string;
  /** Other nodes' `host:port`. Empty: this node is its own manager. */
  peers: string[];
  /** Cluster secret (at least 16 bytes). Never logged. */
  secret: string;
  /** Where term and vote are persisted. */
  dataDir: string;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  /** Shared store for the leader record. Required when there are peers. */
  kv?: KVStore;
  /** KV root, default "traefik". */
  rootKey?: string;
  logger?: ClusterLogger;
  /** Test hooks. */
  random?: () => number;
  fetch?: typeof fetch;
}


type ResolvedOptions = Required<Omit<ClusterNodeOptions, "kv">> & { kv?: KVStore };

type Listener = (event: { term: number; reason: string; record?: LeaderRecord }) => void;

/** Thrown for unusable options, naming the `[cluster]` setting. */
export class ClusterConfigError extends Error {
  constructor(field: string, detail: string) {
    super(`[cluster] ${field}: ${detail}`);
    this.name = "ClusterConfigError";
  }
}

const MAX_BODY = 64 * 1024;

function apiRole(role: Role): ApiRole {
  return role === "leader" ? "manager" : role === "follower" ? "worker" : "candidate";
}

function parseAddress(field: string, address: string): { hostname: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new ClusterConfigError(field, `"${address}" is not host:port (e.g. 127.0.0.1:7946)`);
  }
  return { hostname: m[1].replace(/^\[|\]$/g, ""), port };
}

/**
 * One cluster member.
 *
 * @example
 * ```ts
 * const node = await ClusterNode.start({ nodeId: "n1", address: "127.0.0.1:7946", peers: ["127.0.0.1:7947"],
 *   secret, dataDir: "./data", heartbeatIntervalMs: 100, electionTimeoutMs: 1000, kv });
 * node.on("becameManager", ({ record }) => acme.start(record!));
 * node.on("lostManager", () => acme.stop());
 * // on SIGTERM:
 * await node.stop();
 * ```
 */
export class ClusterNode {
  readonly counters: ClusterCounters = emptyClusterCounters();
  /** Every role this node took, with why. */
  readonly roleHistory = new RoleHistory();
  readonly #o: ResolvedOptions;
  readonly #election: Election;
  readonly #auth: MessageAuth;
  readonly #listeners = { becameManager: new Set<Listener>(), lostManager: new Set<Listener>() };
  readonly #peers = new Map<string, { lastContact: number | null; reachable: boolean }>();
  #server?: Deno.HttpServer;
  #abort = new AbortController();
  #timer?: ReturnType<typeof setTimeout>;
  #transfers: Promise<void>[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #record?: LeaderRecord;
  /** Signed request paths other modules serve (see {@linkcode route}). */
  readonly #routes = new Map<string, (body: string) => Promise<unknown>>();
  #announced = false;
  #stopped = false;

  private constructor(o: ResolvedOptions, election: Election, auth: MessageAuth) {
    this.#o = o;
    this.#election = election;
    this.#auth = auth;
    for (const p of o.peers) this.#peers.set(p, { lastContact: null, reachable: false });
  }

  /** Validates options, loads persisted state, starts listening and the timers. */
  static async start(options: ClusterNodeOptions): Promise<ClusterNode> {
    const o = {
      rootKey: "traefik",
      logger: (() => {}) as ClusterLogger,
      random: Math.random,
      fetch: globalThis.fetch.bind(globalThis),
      ...options,
    };
    if (!o.nodeId) throw new ClusterConfigError("nodeId", "must not be empty");
    const listen = parseAddress("address", o.address);
    o.peers.forEach((p, i) => parseAddress(`peers[${i}]`, p));
    if (o.peers.length > 0 && !o.kv) {
      throw new ClusterConfigError(
        "peers",
        "a cluster of more than one node needs a KV store ([providers.etcd], [providers.redis] or [providers.consul]) for the leader record",
      );
    }
    const auth = await MessageAuth.create(o.secret);
    const state = await loadState(o.dataDir);
    const election = new Election(
      {
        id: o.address,
        peers: o.peers,
        electionTimeoutMs: o.electionTimeoutMs,
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        random: o.random,
      },
      state,
      performance.now(),
    );
    const node = new ClusterNode(o, election, auth);
    if (o.peers.length > 0) {
      node.#server = Deno.serve({
        hostname: listen.hostname,
        port: listen.port,
        signal: node.#abort.signal,
        onListen: () => {},
      }, (req, info) => {
        const a = info.remoteAddr as Deno.NetAddr;
        return node.#handle(req, `${a.hostname}:${a.port}`);
      });
    }
    o.logger("info", "cluster node started", {
      nodeId: o.nodeId,
      address: o.address,
      peers: o.peers,
      term: state.term,
    });
    node.#schedule();
    return node;
  }

  /** Subscribes to role changes; returns an unsubscribe function. */
  on(event: "becameManager" | "lostManager", listener: Listener): () => void {
    this.#listeners[event].add(listener);
    return () => this.#listeners[event].delete(listener);
  }

  /** The configured peers' addresses (their election ids). */
  get peers(): string[] {
    return [...this.#o.peers];
  }

  /** This node's id. */
  get nodeId(): string {
    return this.#o.nodeId;
  }

  /**
   * Serves another request path on the peer channel, with the same
   * authentication as election messages (signed request, signed reply).
   * `handler` gets the verified body and returns the reply (JSON-encoded);
   * a handler that throws answers 400 with its message (it names the bad
   * field), counted as `malformed`. Returns an unregister function.
   */
  route(path: string, handler: (body: string) => Promise<unknown>): () => void {
    if (requestTypeForPath(path)) throw new Error(`${path} is an election path`);
    this.#routes.set(path, handler);
    return () => this.#routes.delete(path);
  }

  /**
   * Sends a signed POST of `body` to `peer` on `path` and returns the reply
   * body once its signature is verified. Throws naming the peer when it is
   * unreachable, refuses, or the reply is not authentic.
   */
  async call(peer: string, path: string, body: string, timeoutMs: number): Promise<string> {
    const headers = await this.#auth.sign({ method: "POST", path, body }, Date.now());
    const res = await this.#o.fetch(`http://${peer}${path}`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body,
      signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(timeoutMs)]),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`peer ${peer} answered ${res.status}: ${text.slice(0, 200)}`);
    const verdict = await this.#auth.verify(
      { method: "REPLY", path, body: text },
      res.headers,
      Date.now(),
    );
    if (!verdict.ok) {
      this.#count(verdict.reason, `reply from ${peer}: ${verdict.message}`, peer);
      throw new Error(`reply from peer ${peer} refused: ${verdict.message}`);
    }
    return text;
  }

  /** True once this node is manager and holds the leader record. */
  get isManager(): boolean {
    return this.#announced;
  }

  /** This node's leader record (its fencing token) while it is manager. */
  get leaderRecord(): LeaderRecord | undefined {
    return this.#announced ? this.#record : undefined;
  }

  /** The `/api/cluster` view. */
  status(): ClusterStatus {
    const s = this.#election.status();
    let manager: ClusterStatus["manager"] = null;
    if (s.role === "leader") {
      manager = { nodeId: this.#o.nodeId, address: this.#o.address, term: s.term };
    } else if (s.leader) {
      let nodeId: string | null = null;
      try {
        nodeId = JSON.parse(s.leaderRecord ?? "").nodeId ?? null;
      } catch { /* record not announced yet */ }
      manager = { nodeId, address: s.leader, term: s.term };
    }
    return {
      id: this.#o.nodeId,
      address: this.#o.address,
      role: apiRole(s.role),
      term: s.term,
      manager,
      peers: [...this.#peers].map(([address, p]) => ({
        address,
        lastContact: p.lastContact === null ? null : new Date(p.lastContact).toISOString(),
        reachable: p.reachable,
      })),
    };
  }

  /**
   * Stops the node. A manager first hands over (tells the most recently
   * heard peer to campaign at once) unless `handover` is false.
   */
  async stop(options: { handover?: boolean } = {}): Promise<void> {
    if (this.#stopped) return;
    if (options.handover !== false) {
      await this.#apply(this.#election.transferLeadership(performance.now()));
      // Let the timeoutNow reach its target before the connections close.
      await settleWithin(Promise.allSettled(this.#transfers), this.#o.electionTimeoutMs);
    }
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#server?.finished;
  }

  // ---------------------------------------------------------------- internals

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const delay = Math.max(0, this.#election.nextDeadline() - performance.now());
    this.#timer = setTimeout(() => {
      if (this.#stopped) return;
      this.#apply(this.#election.tick(performance.now()));
    }, Math.min(delay, 2 ** 31 - 1));
  }

  /**
   * Applies effects in order behind every earlier batch. Resolves with the
   * reply to `request` when one of the effects is that reply.
   */
  #apply(effects: Effect[], request?: PeerMessage): Promise<PeerMessage | undefined> {
    this.#schedule();
    const run = this.#queue.then(async () => {
      let reply: PeerMessage | undefined;
      for (const effect of effects) {
        switch (effect.type) {
          case "persist":
            try {
              await saveState(this.#o.dataDir, effect.state);
            } catch (e) {
              // Without the vote on disk nothing after it may go out.
              this.#o.logger("error", "cannot persist cluster state; dropping replies", {
                dataDir: this.#o.dataDir,
                error: (e as Error).message,
              });
              return undefined;
            }
            break;
          case "send": {
            const m = effect.message;
            if (
              request && m.to === request.from &&
              m.type === REPLY_TYPES[request.type as RequestType]
            ) {
              reply = m;
            } else if (isRequest(m)) {
              const sent = this.#post(m);
              if (m.type === "timeoutNow") this.#transfers.push(sent);
            }
            break;
          }
          case "roleChanged":
            if (effect.to === "candidate") this.counters.elections++;
            this.roleHistory.record(apiRole(effect.to), effect.term, effect.reason, new Date());
            this.#o.logger(
              "info",
              `cluster role ${apiRole(effect.from)} -> ${apiRole(effect.to)}`,
              {
                nodeId: this.#o.nodeId,
                from: effect.from,
                to: effect.to,
                term: effect.term,
                reason: effect.reason,
              },
            );
            break;
          case "becameManager":
            this.#claim(effect.term, effect.reason);
            break;
          case "lostManager":
            if (this.#announced) {
              this.#announced = false;
              this.#emit("lostManager", {
                term: effect.term,
                reason: effect.reason,
                record: this.#record,
              });
            }
            break;
          case "ignored":
            this.#o.logger("debug", "cluster message ignored", {
              type: effect.message.type,
              from: effect.message.from,
              term: effect.message.term,
              reason: effect.reason,
            });
            break;
        }
      }
      return reply;
    }).catch((e) => {
      // A rejected batch must neither stall the queue nor surface as an
      // unhandled rejection from a timer callback.
      this.#o.logger("error", "applying cluster effects failed", { error: (e as Error).message });
      return undefined;
    });
    this.#queue = run;
    return run;
  }

  #claim(term: number, reason: string): void {
    const record: LeaderRecord = { nodeId: this.#o.nodeId, term, since: new Date().toISOString() };
    const announce = () => {
      if (this.#election.role !== "leader" || this.#election.term !== term) return;
      this.#record = record;
      this.#election.setLeaderRecord(JSON.stringify(record));
      this.#announced = true;
      this.#emit("becameManager", { term, reason, record });
    };
    if (!this.#o.kv) return announce();
    claimLeadership(this.#o.kv, this.#o.rootKey, record).then((result) => {
      if (result.claimed) return announce();
      this.#o.logger("warn", "leader record holds an equal or higher term; stepping down", {
        term,
        stored: result.current,
      });
      this.#apply(
        this.#election.stepDown(performance.now(), "leader record taken", result.current?.term),
      );
    }, (e) => {
      // Without the record no fenced write can succeed; let a node that can
      // reach the store take over.
      this.#o.logger("error", "cannot claim leader record; stepping down", {
        term,
        error: (e as Error).message,
      });
      this.#apply(this.#election.stepDown(performance.now(), "KV store unreachable"));
    });
  }

  #emit(event: "becameManager" | "lostManager", data: Parameters<Listener>[0]): void {
    for (const listener of this.#listeners[event]) {
      try {
        listener(data);
      } catch (e) {
        this.#o.logger("error", `${event} listener failed`, { error: (e as Error).message });
      }
    }
  }

  #count(reason: RefusalReason | "badRequest", detail: string, remote: string): void {
    this.counters.rejected[reason]++;
    this.#o.logger("warn", "cluster message refused", { reason, detail, remote });
  }

  #refuse(reason: RefusalReason | "badRequest", detail: string, remote: string, status: number) {
    this.#count(reason, detail, remote);
    return new Response(`${reason}: ${detail}\n`, { status });
  }

  async #handle(req: Request, remote: string): Promise<Response> {
    const url = new URL(req.url);
    const type = requestTypeForPath(url.pathname);
    const route = this.#routes.get(url.pathname);
    if (req.method === "POST" && !type && route) {
      return await this.#handleRoute(req, url, route, remote);
    }
    if (req.method !== "POST" || !type) {
      return this.#refuse(
        "badRequest",
        `${req.method} ${url.pathname} is not a cluster endpoint`,
        remote,
        404,
      );
    }
    const declared = Number(req.headers.get("content-length") ?? "0");
    if (declared > MAX_BODY) return this.#refuse("badRequest", "body too large", remote, 413);
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length > MAX_BODY) return this.#refuse("badRequest", "body too large", remote, 413);
    const verdict = await this.#auth.verify(
      { method: "POST", path: url.pathname, body },
      req.headers,
      Date.now(),
    );
    if (!verdict.ok) return this.#refuse(verdict.reason, verdict.message, remote, 401);
    let message: PeerMessage;
    try {
      message = parsePeerMessage(new TextDecoder().decode(body), type);
    } catch (e) {
      const detail = e instanceof MessageDecodeError ? e.message : String(e);
      return this.#refuse("malformed", detail, remote, 400);
    }
    const peer = this.#peers.get(message.from);
    if (peer) peer.lastContact = Date.now();
    const reply = await this.#apply(this.#election.receive(message, performance.now()), message);
    if (!reply) return new Response(null, { status: 204 });
    const text = JSON.stringify(reply);
    const headers = await this.#auth.sign(
      { method: "REPLY", path: url.pathname, body: text },
      Date.now(),
    );
    return new Response(text, { headers: { ...headers, "content-type": "application/json" } });
  }

  async #handleRoute(
    req: Request,
    url: URL,
    route: (body: string) => Promise<unknown>,
    remote: string,
  ): Promise<Response> {
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length > MAX_BODY) return this.#refuse("badRequest", "body too large", remote, 413);
    const verdict = await this.#auth.verify(
      { method: "POST", path: url.pathname, body },
      req.headers,
      Date.now(),
    );
    if (!verdict.ok) return this.#refuse(verdict.reason, verdict.message, remote, 401);
    let reply: unknown;
    try {
      reply = await route(new TextDecoder().decode(body));
    } catch (e) {
      return this.#refuse("malformed", (e as Error).message, remote, 400);
    }
    const text = JSON.stringify(reply);
    const headers = await this.#auth.sign(
      { method: "REPLY", path: url.pathname, body: text },
      Date.now(),
    );
    return new Response(text, { headers: { ...headers, "content-type": "application/json" } });
  }

  async #post(m: Extract<PeerMessage, { type: RequestType }>): Promise<void> {
    const path = REQUEST_PATHS[m.type];
    const body = JSON.stringify(m);
    const peer = this.#peers.get(m.to);
    try {
      const headers = await this.#auth.sign({ method: "POST", path, body }, Date.now());
      const res = await this.#o.fetch(`http://${m.to}${path}`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body,
        signal: AbortSignal.any([
          this.#abort.signal,
          AbortSignal.timeout(this.#o.electionTimeoutMs),
        ]),
      });
      const text = await res.text();
      if (peer) peer.reachable = res.ok;
      if (!res.ok) {
        this.#o.logger("warn", "peer refused cluster message", {
          peer: m.to,
          status: res.status,
          detail: text.slice(0, 200),
        });
        return;
      }
      if (peer) peer.lastContact = Date.now();
      const replyType = REPLY_TYPES[m.type];
      if (res.status === 204 || !replyType || this.#stopped) return;
      const verdict = await this.#auth.verify(
        { method: "REPLY", path, body: text },
        res.headers,
        Date.now(),
      );
      if (!verdict.ok) {
        this.#count(verdict.reason, `reply from ${m.to}: ${verdict.message}`, m.to);
        return;
      }
      let reply: PeerMessage;
      try {
        reply = parsePeerMessage(text, replyType);
      } catch (e) {
        this.#count("malformed", `reply from ${m.to}: ${(e as Error).message}`, m.to);
        return;
      }
      await this.#apply(this.#election.receive(reply, performance.now()));
    } catch (e) {
      if (peer) peer.reachable = false;
      if (!this.#stopped) {
        this.#o.logger("debug", "peer unreachable", { peer: m.to, error: (e as Error).message });
      }
    }
  }
}
