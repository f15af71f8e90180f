/**
 * The cluster extension (see lib/server/extension.ts): starts this
 * instance's {@linkcode ClusterNode} from `[cluster]`, shares the KV store of
 * the KV extension for the leader record, serves `/api/cluster` and
 * `/api/cluster/leader` on the API entrypoint, hands over on SIGTERM, and
 * gives later extensions (ACME) role events and the fenced-write helper
 * through {@linkcode ClusterExtension}.
 *
 * Without `[cluster]` the instance is a standalone manager: the same
 * interface, role "manager" at term 0, and no peer listener.
 *
 * The view registered as `state.views.get("cluster")` is a
 * {@linkcode ClusterView}: the `/api/cluster` status plus `roleChanges`
 * (the last {@linkcode ROLE_HISTORY} changes), `counters` and `elections`
 * for metrics.
 *
 * Test hooks (env `PORTICO_TEST_HOOKS=1` only):
 * - `PORTICO_TEST_PEER_ROUTES` = JSON `{"peer host:port": "dial host:port"}`
 *   sends peer traffic through a test TCP proxy while peers keep their ids;
 * - `POST /api/cluster/test/fenced-write` (see lib/api/cluster.ts).
 *
 * @module
 */

import type { ExtensionContext, ServerExtension } from "./extension.ts";
import type { KVExtension } from "./kv_setup.ts";
import type { ClusterConfig, RouterConfig } from "../config/types.ts";
import { CLUSTER_SECRET_ENV, TEST_HOOKS_ENV } from "../config/static.ts";
import type { Logger } from "../log/logger.ts";
import type { InstanceState } from "../api/state.ts";
import { CLUSTER_SERVICE, clusterApiService, type FencedProbeResult } from "../api/cluster.ts";
import {
  type ApiRole,
  ClusterConfigError,
  type ClusterCounters,
  type ClusterLogger,
  ClusterNode,
  type ClusterStatus,
  emptyClusterCounters,
} from "../cluster/node.ts";
import {
  fencedWrite as fencedWriteWith,
  leaderKey,
  type LeaderRecord,
  tryFencedWrite,
} from "../cluster/fencing.ts";
import { constantTimeEqual } from "../cluster/transport_auth.ts";
import type { KVOperation, KVStore } from "../kv/types.ts";

/** How many role changes the view keeps. */
export const ROLE_HISTORY = 50;

/** Env switch for test-only hooks. */
export { TEST_HOOKS_ENV };
/** Env map of peer address → address to dial instead (test hooks only). */
export const TEST_PEER_ROUTES_ENV = "PORTICO_TEST_PEER_ROUTES";

/** One role change as the view lists it. */
export interface RoleChange {
  /** ISO 8601. */
  time: string;
  role: ApiRole;
  term: number;
  reason: string;
}

/** What `state.views.get("cluster")()` returns. */
export interface ClusterView extends ClusterStatus {
  /** False without `[cluster]`: a standalone instance is its own manager. */
  clustered: boolean;
  /** True once this node is manager and holds the leader record. */
  isManager: boolean;
  roleChanges: RoleChange[];
  counters: ClusterCounters;
  /** Same as `counters.elections`, for `portico_cluster_elections_total`. */
  elections: number;
}

/** A role event: the term, why, and the leader record it concerns. */
export interface RoleEvent {
  term: number;
  reason: string;
  record?: LeaderRecord;
}

/** Role events other modules subscribe to. */
export type RoleEventName = "becameManager" | "lostManager";

/**
 * What later extensions (ACME) use: start manager-only jobs on
 * `becameManager`, stop them on `lostManager`, and write only through
 * `fencedWrite`.
 *
 * @example
 * ```ts
 * const cluster = context.earlier.get("cluster") as ClusterExtension | undefined;
 * cluster?.on("becameManager", () => renewals.start());
 * cluster?.on("lostManager", () => renewals.stop());
 * await cluster?.fencedWrite([{ kind: "put", key: "traefik/acme/certs/example.com", value: pem }]);
 * ```
 */
export interface ClusterExtension extends ServerExtension {
  readonly name: "cluster";
  /** True while this node is manager (and, in a cluster, holds the leader record). */
  isManager(): boolean;
  /**
   * Subscribes to role changes; returns an unsubscribe function. Subscribing
   * to `becameManager` while already manager calls `listener` once soon after
   * (in a microtask), so a late subscriber does not miss the current term.
   */
  on(event: RoleEventName, listener: (event: RoleEvent) => void): () => void;
  /**
   * The single helper for manager-only writes: applies `operations`
   * atomically only while this node's leader record is the stored one.
   * Throws `FencedOutError` when deposed, or an Error when not manager or
   * there is no KV store. Standalone with a store, the write is applied
   * unconditionally (there is nobody to be fenced against).
   */
  fencedWrite(operations: KVOperation[]): Promise<void>;
  /** This node's leader record while it is manager. */
  leaderRecord(): LeaderRecord | undefined;
  /** The registered view. */
  view(): ClusterView;
  /** This node's id (`[cluster] nodeId`, or "standalone"). */
  nodeId(): string;
  /** The configured peers' cluster addresses; empty standalone. */
  peers(): string[];
  /**
   * Serves a signed request path on the peer channel (see
   * `ClusterNode.route`); a no-op standalone. Returns an unregister function.
   */
  peerRoute(path: string, handler: (body: string) => Promise<unknown>): () => void;
  /** Signed request to a peer; resolves to its verified reply body. */
  peerCall(peer: string, path: string, body: string, timeoutMs: number): Promise<string>;
}

/** Inputs of {@linkcode startClusterExtension}; the factory fills them from the context. */
export interface StartClusterOptions {
  /** `[cluster]`; undefined runs standalone. */
  config?: ClusterConfig;
  /** Shared store for the leader record (required with peers). */
  store?: KVStore;
  /** KV root key, default "traefik". */
  rootKey?: string;
  log: Logger;
  /** Registers the view when given. */
  state?: InstanceState;
  /** Whether `[api] insecure` is on: then the routers on `traefik` are added. */
  apiInsecure?: boolean;
  /** Environment lookup (secret, test hooks); default `Deno.env.get`. */
  env?: (name: string) => string | undefined;
}

/** Routers for the cluster endpoints: above the general `/api` router (MAX_SAFE_INTEGER - 1). */
export function clusterRouters(): Record<string, RouterConfig> {
  return {
    cluster: {
      rule: "PathPrefix(`/api/cluster`)",
      service: CLUSTER_SERVICE,
      entryPoints: ["traefik"],
      middlewares: [],
      priority: Number.MAX_SAFE_INTEGER,
    },
  };
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Cluster addresses as `host:port`; peers may be written `http://host:port`. */
export function normalizePeer(field: string, peer: string): string {
  if (/^https:\/\//i.test(peer)) {
    throw new ClusterConfigError(
      field,
      `"${peer}": peers speak plain HTTP with HMAC; write host:port`,
    );
  }
  return peer.replace(/^http:\/\//i, "").replace(/\/+$/, "");
}

async function resolveSecret(
  config: ClusterConfig,
  env: (name: string) => string | undefined,
): Promise<string> {
  if (config.secret !== undefined) return config.secret;
  if (config.secretFile !== undefined) {
    try {
      return (await Deno.readTextFile(config.secretFile)).trim();
    } catch (e) {
      throw new ClusterConfigError(
        "secretFile",
        `cannot read "${config.secretFile}": ${(e as Error).message}`,
      );
    }
  }
  const fromEnv = env(CLUSTER_SECRET_ENV);
  if (fromEnv) return fromEnv;
  throw new ClusterConfigError("secret", `set secret, secretFile or ${CLUSTER_SECRET_ENV}`);
}

function parseRoutes(text: string | undefined): Map<string, string> {
  if (!text) return new Map();
  const parsed = JSON.parse(text) as Record<string, string>;
  return new Map(Object.entries(parsed));
}

/** Rewrites `http://peer/...` to `http://dial/...` for the test TCP proxy. */
function routedFetch(routes: Map<string, string>): typeof fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const dial = routes.get(url.host);
    if (dial) url.host = dial;
    return fetch(url, init);
  };
}

function apiRoleOf(raw: unknown): ApiRole {
  return raw === "leader" ? "manager" : raw === "follower" ? "worker" : "candidate";
}

/**
 * Starts the cluster part of an instance (the factory's body, callable with
 * an injected store for tests).
 *
 * @example
 * ```ts
 * const ext = await startClusterExtension({ config: staticConfig.cluster, store, rootKey: "traefik", log });
 * ext.on("becameManager", ({ term }) => console.log("manager at", term));
 * await ext.drain?.(); // SIGTERM: hand over
 * await ext.stop?.();
 * ```
 */
export async function startClusterExtension(
  options: StartClusterOptions,
): Promise<ClusterExtension> {
  const env = options.env ?? readEnv;
  const log = options.log;
  const rootKey = options.rootKey ?? "traefik";
  const store = options.store;
  const config = options.config;
  const hooks = env(TEST_HOOKS_ENV) === "1";
  const roleChanges: RoleChange[] = [];
  const pushChange = (change: RoleChange) => {
    roleChanges.push(change);
    if (roleChanges.length > ROLE_HISTORY) roleChanges.splice(0, roleChanges.length - ROLE_HISTORY);
  };

  let node: ClusterNode | undefined;
  let secret: string | undefined;
  const startDate = new Date().toISOString();
  const standaloneId = config?.nodeId ?? "standalone";
  if (config) {
    const peers = config.peers.map((p, i) => normalizePeer(`peers[${i}]`, p));
    let address = config.address;
    if (address.startsWith(":")) {
      if (peers.length > 0) {
        throw new ClusterConfigError(
          "address",
          `"${address}" has no host; peers know this node by the address they dial, so write it in full (e.g. 10.0.0.1${address})`,
        );
      }
      address = `127.0.0.1${address}`;
    }
    secret = await resolveSecret(config, env);
    const routes = hooks ? parseRoutes(env(TEST_PEER_ROUTES_ENV)) : new Map<string, string>();
    const logger: ClusterLogger = (level, msg, fields) => {
      if (msg.startsWith("cluster role ") && "to" in fields) {
        pushChange({
          time: new Date().toISOString(),
          role: apiRoleOf(fields.to),
          term: Number(fields.term),
          reason: String(fields.reason ?? ""),
        });
      }
      log[level](msg, fields);
    };
    node = await ClusterNode.start({
      nodeId: config.nodeId,
      address,
      peers,
      secret,
      dataDir: config.dataDir,
      heartbeatIntervalMs: config.heartbeatInterval,
      electionTimeoutMs: config.electionTimeout,
      kv: store,
      rootKey,
      logger,
      ...(routes.size > 0 ? { fetch: routedFetch(routes) } : {}),
    });
  } else {
    pushChange({ time: startDate, role: "manager", term: 0, reason: "standalone: no [cluster]" });
  }

  // The last record this node held, kept after it is deposed: the test hook
  // proves the store refuses writes conditioned on it.
  let lastRecord: LeaderRecord | undefined;
  node?.on("becameManager", (e) => (lastRecord = e.record ?? lastRecord));

  const isManager = () => (node ? node.isManager : true);
  const leaderRecord = () => (node ? node.leaderRecord : undefined);
  const status = (): ClusterStatus =>
    node?.status() ?? {
      id: standaloneId,
      address: "",
      role: "manager",
      term: 0,
      manager: { nodeId: standaloneId, address: "", term: 0 },
      peers: [],
    };
  const emptyCounters = emptyClusterCounters();
  const view = (): ClusterView => {
    const counters = node?.counters ?? emptyCounters;
    return {
      ...status(),
      clustered: node !== undefined,
      isManager: isManager(),
      roleChanges: [...roleChanges],
      counters: { elections: counters.elections, rejected: { ...counters.rejected } },
      elections: counters.elections,
    };
  };

  const fencedWrite = async (operations: KVOperation[]): Promise<void> => {
    if (!store) {
      throw new Error(
        "fenced write: no KV store is configured ([providers.etcd], [providers.redis] or [providers.consul])",
      );
    }
    if (!node) {
      if (!(await store.transaction([], operations))) {
        throw new Error("fenced write: transaction refused");
      }
      return;
    }
    const record = node.leaderRecord;
    if (!record) {
      throw new Error(
        `fenced write: node ${config!.nodeId} is not the manager (role ${node.status().role})`,
      );
    }
    await fencedWriteWith(store, rootKey, record, operations);
  };

  const on = (event: RoleEventName, listener: (event: RoleEvent) => void): () => void => {
    if (event === "becameManager" && isManager()) {
      const term = status().term;
      const record = leaderRecord();
      queueMicrotask(() => listener({ term, reason: "already manager when subscribed", record }));
    }
    return node ? node.on(event, listener) : () => {};
  };

  const secretBytes = secret ? new TextEncoder().encode(secret) : undefined;
  const testHook = hooks && secretBytes && store
    ? {
      authorized: (header: string | null) =>
        header !== null && constantTimeEqual(new TextEncoder().encode(header), secretBytes),
      async fencedProbe(
        key: string | undefined,
        value: string | undefined,
      ): Promise<FencedProbeResult> {
        const probeKey = key ?? `${rootKey}/cluster/test/probe`;
        const believedManager = isManager();
        const record = lastRecord;
        const base = { believedManager, record: record ?? null, key: probeKey };
        if (!record) {
          return {
            ...base,
            accepted: false,
            error: "this node never held the leader record",
          };
        }
        if (probeKey === leaderKey(rootKey)) {
          return { ...base, accepted: false, error: "the probe must not touch the leader record" };
        }
        try {
          const accepted = await tryFencedWrite(store, rootKey, record, [
            { kind: "put", key: probeKey, value: value ?? `${record.nodeId}@${record.term}` },
          ]);
          return { ...base, accepted };
        } catch (e) {
          return { ...base, accepted: false, error: (e as Error).message };
        }
      },
    }
    : undefined;

  options.state?.views.set("cluster", view);
  const service = clusterApiService({
    view,
    isManager,
    leaderRecord:
      () => (node ? node.leaderRecord : { nodeId: standaloneId, term: 0, since: startDate }),
    manager: () => status().manager,
    testHook,
  });

  let stopped = false;
  return {
    name: "cluster",
    internalServices: new Map([[CLUSTER_SERVICE, service]]),
    internalRouters: options.apiInsecure ? clusterRouters() : undefined,
    isManager,
    on,
    fencedWrite,
    leaderRecord,
    view,
    nodeId: () => node?.nodeId ?? standaloneId,
    peers: () => node?.peers ?? [],
    peerRoute: (path, handler) => node?.route(path, handler) ?? (() => {}),
    peerCall: (peer, path, body, timeoutMs) => {
      if (!node) return Promise.reject(new Error("no cluster: there are no peers to ask"));
      return node.call(peer, path, body, timeoutMs);
    },
    async drain() {
      // A planned shutdown: the manager tells a peer to campaign now instead
      // of letting the cluster wait out an election timeout.
      await node?.stop({ handover: true });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await node?.stop({ handover: true });
    },
  };
}

/** The cluster extension; always present (standalone without `[cluster]`). */
export function clusterExtension(context: ExtensionContext): Promise<ClusterExtension> {
  const { staticConfig } = context;
  const kv = context.earlier.get("kv") as KVExtension | undefined;
  return startClusterExtension({
    config: staticConfig.cluster,
    store: kv?.store,
    rootKey: kv?.rootKey,
    log: context.log.child("cluster"),
    state: context.state,
    apiInsecure: staticConfig.api?.insecure === true,
  });
}
