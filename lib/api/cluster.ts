/**
 * `cluster@internal`: the cluster endpoints on the API entrypoint.
 *
 * - `GET /api/cluster`: this node's view (id, role, term, manager, peers,
 *   recent role changes, counters).
 * - `GET /api/cluster/leader`: 200 with the leader record on the manager,
 *   429 elsewhere, as Traefik 1.7 answered load balancers asking "who leads?".
 * - `POST /api/cluster/test/fenced-write`: only when the source has a test
 *   hook (env `PORTICO_TEST_HOOKS=1`), authenticated with the cluster secret;
 *   attempts a fenced write of a probe key so a chaos test can prove that a
 *   deposed manager's writes fail in the store.
 *
 * @module
 */

import { Hono } from "hono";
import type { Service } from "../services/types.ts";
import { internalService } from "./api.ts";

/** Name of the internal service. */
export const CLUSTER_SERVICE = "cluster@internal";

/** Header carrying the cluster secret for the test hook. */
export const TEST_HOOK_HEADER = "x-portico-cluster-secret";

/** Outcome of one probe write through the fencing helper. */
export interface FencedProbeResult {
  /** The store applied the write. */
  accepted: boolean;
  /** Whether this node believed it was manager when it tried. */
  believedManager: boolean;
  /** The leader record the write was conditioned on (the last one this node held). */
  record: { nodeId: string; term: number; since: string } | null;
  key: string;
  error?: string;
}

/** What the endpoints read; the cluster extension provides it. */
export interface ClusterApiSource {
  /** Body of `GET /api/cluster`. */
  view(): unknown;
  /** True while this node is manager and holds the leader record. */
  isManager(): boolean;
  /** This node's leader record while it is manager. */
  leaderRecord(): { nodeId: string; term: number; since: string } | undefined;
  /** Who this node thinks the manager is (for the 429 body). */
  manager(): unknown;
  /** Present only with test hooks enabled. */
  testHook?: {
    authorized(secretHeader: string | null): boolean;
    fencedProbe(key: string | undefined, value: string | undefined): Promise<FencedProbeResult>;
  };
}

/**
 * Builds `cluster@internal`.
 *
 * @example
 * ```ts
 * const service = clusterApiService({ view: () => node.status(), isManager: () => node.isManager,
 *   leaderRecord: () => node.leaderRecord, manager: () => node.status().manager });
 * ```
 */
export function clusterApiService(source: ClusterApiSource): Service {
  const app = new Hono();
  app.get("/api/cluster", (c) => c.json(source.view()));
  app.get("/api/cluster/leader", (c) => {
    const record = source.isManager() ? source.leaderRecord() ?? null : undefined;
    if (record !== undefined) return c.json({ manager: true, record });
    return c.json({ manager: false, current: source.manager() ?? null }, 429);
  });
  const hook = source.testHook;
  if (hook) {
    app.post("/api/cluster/test/fenced-write", async (c) => {
      if (!hook.authorized(c.req.header(TEST_HOOK_HEADER) ?? null)) {
        return c.json({ message: "unauthorized" }, 401);
      }
      let body: { key?: unknown; value?: unknown } = {};
      try {
        const text = await c.req.text();
        if (text) body = JSON.parse(text);
      } catch {
        return c.json({ message: 'expected a JSON body {"key"?: string, "value"?: string}' }, 400);
      }
      const key = typeof body.key === "string" ? body.key : undefined;
      const value = typeof body.value === "string" ? body.value : undefined;
      return c.json(await hook.fencedProbe(key, value));
    });
  }
  app.all("/api/cluster/*", (c) => c.json({ message: "not found" }, 404));
  return internalService(CLUSTER_SERVICE, app);
}
