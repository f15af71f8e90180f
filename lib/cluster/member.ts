/**
 * This instance as a cluster member: its {@linkcode ClusterNode} started
 * from `[cluster]` (or a standalone manager without it), the fenced-write
 * helper every manager-only write goes through, role events, and the view
 * the API, dashboard and metrics read.
 *
 * Without `[cluster]` the instance is a standalone manager: the same
 * interface, role "manager" at term 0, and no peer listener.
 *
 * @module
 */

import type { ClusterConfig } from "../config/types.ts";
import type { KVOperation, KVStore } from "../kv/types.ts";
import { fencedWrite as fencedWriteWith, type LeaderRecord } from "./fencing.ts";
import { ClusterConfigError, type ClusterLogger, ClusterNode } from "./node.ts";
import {
  type ClusterStatus,
  type ClusterView,
  emptyClusterCounters,
  RoleHistory,
} from "./view.ts";
import { CLUSTER_SECRET_ENV } from "../env.ts";

/** A role event: the term, why, and the leader record it concerns. */
export interface RoleEvent {
  term: number;
  reason: string;
  record?: LeaderRecord;
}

/** Role events other modules subscribe to. */
export type RoleEventName = "becameManager" | "lostManager";

/**
 * What manager-only work (ACME) uses: start on `becameManager`, stop on
 * `lostManager`, and write only through `fencedWrite`.
 *
 * @example
 * ```ts
 * member.on("becameManager", () => renewals.start());
 * member.on("lostManager", () => renewals.stop());
 * await member.fencedWrite([{ kind: "put", key: "traefik/acme/certs/example.com", value: pem }]);
 * ```
 */
export interface ClusterMember {
  /** True while this node is manager (and, in a cluster, holds the leader record). */
  isManager(): boolean;
  /**
   * Subscribes to role changes; returns an unsubscribe function. Subscribing
   * to `becameManager` while already manager calls `listener` once soon after
   * (in a microtask), so a late subscriber does not miss the current term.
   */
  on(event: RoleEventName, listener: (event: RoleEvent) => void): () => void;
  /**
   * Applies `operations` atomically only while this node's leader record is
   * the stored one. Throws `FencedOutError` when deposed, or an Error when not
   * manager or there is no KV store. Standalone with a store, the write is
   * applied unconditionally (there is nobody to be fenced against).
   */
  fencedWrite(operations: KVOperation[]): Promise<void>;
  /** This node's leader record while it is manager. */
  leaderRecord(): LeaderRecord | undefined;
  /** The last leader record this node held, kept after it is deposed. */
  lastHeldRecord(): LeaderRecord | undefined;
  /** The leader record `/api/cluster/leader` shows (standalone: term 0 since start). */
  shownLeaderRecord(): LeaderRecord | undefined;
  status(): ClusterStatus;
  view(): ClusterView;
  /** This node's id (`[cluster] nodeId`, or "standalone"). */
  nodeId(): string;
  /** The configured peers' cluster addresses; empty standalone. */
  peers(): string[];
  /** Serves a signed request path on the peer channel; a no-op standalone. Returns an unregister function. */
  peerRoute(path: string, handler: (body: string) => Promise<unknown>): () => void;
  /** Signed request to a peer; resolves to its verified reply body. */
  peerCall(peer: string, path: string, body: string, timeoutMs: number): Promise<string>;
  /** The cluster secret, for authenticating test hooks; undefined standalone. */
  readonly secret?: string;
  /** Hands over (a manager asks a peer to campaign now) and stops; idempotent. */
  stop(): Promise<void>;
}

/** Inputs of {@linkcode startClusterMember}. */
export interface ClusterMemberOptions {
  /** `[cluster]`; undefined runs standalone. */
  config?: ClusterConfig;
  /** Shared store for the leader record (required with peers). */
  store?: KVStore;
  /** KV root key, default "traefik". */
  rootKey?: string;
  log: ClusterLogger;
  /** Environment lookup for the secret. */
  env: (name: string) => string | undefined;
  /** How peer requests are sent (tests route them through a fault proxy). */
  fetch?: typeof fetch;
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

/** The node's own address; `:port` alone is only allowed for a cluster of one. */
function ownAddress(address: string, peers: string[]): string {
  if (!address.startsWith(":")) return address;
  if (peers.length > 0) {
    throw new ClusterConfigError(
      "address",
      `"${address}" has no host; peers know this node by the address they dial, so write it in full (e.g. 10.0.0.1${address})`,
    );
  }
  return `127.0.0.1${address}`;
}

/**
 * Starts this instance's cluster membership.
 *
 * @example
 * ```ts
 * const member = await startClusterMember({ config: staticConfig.cluster, store, log, env: readEnv });
 * member.on("becameManager", ({ term }) => console.log("manager at", term));
 * await member.stop(); // SIGTERM: hand over
 * ```
 */
export async function startClusterMember(options: ClusterMemberOptions): Promise<ClusterMember> {
  const { config, store, log } = options;
  const rootKey = options.rootKey ?? "traefik";
  const startDate = new Date().toISOString();
  const standaloneId = config?.nodeId ?? "standalone";

  let node: ClusterNode | undefined;
  let secret: string | undefined;
  const standaloneHistory = new RoleHistory();
  if (config) {
    const peers = config.peers.map((p, i) => normalizePeer(`peers[${i}]`, p));
    const address = ownAddress(config.address, peers);
    secret = await resolveSecret(config, options.env);
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
      logger: log,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  } else {
    standaloneHistory.record("manager", 0, "standalone: no [cluster]", new Date(startDate));
  }

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
      roleChanges: (node?.roleHistory ?? standaloneHistory).list(),
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

  let stopping: Promise<void> | undefined;
  return {
    isManager,
    on,
    fencedWrite,
    leaderRecord,
    lastHeldRecord: () => lastRecord,
    shownLeaderRecord: () =>
      node ? node.leaderRecord : { nodeId: standaloneId, term: 0, since: startDate },
    status,
    view,
    nodeId: () => node?.nodeId ?? standaloneId,
    peers: () => node?.peers ?? [],
    peerRoute: (path, handler) => node?.route(path, handler) ?? (() => {}),
    peerCall: (peer, path, body, timeoutMs) => {
      if (!node) return Promise.reject(new Error("no cluster: there are no peers to ask"));
      return node.call(peer, path, body, timeoutMs);
    },
    secret,
    // A planned shutdown: the manager tells a peer to campaign now instead
    // of letting the cluster wait out an election timeout.
    stop: () => (stopping ??= node?.stop({ handover: true }) ?? Promise.resolve()),
  };
}
