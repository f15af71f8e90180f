/**
 * The one test hook: with env `PORTICO_TEST_HOOKS=1`, and only then, a
 * process started by a multi-process test exposes what the test needs to
 * inject faults and prove fencing. Without the switch none of it exists.
 *
 * - `PORTICO_TEST_PEER_ROUTES` = JSON `{"peer host:port": "dial host:port"}`
 *   sends peer traffic through a test TCP proxy while peers keep their ids.
 * - `POST /api/cluster/test/fenced-write` (authenticated with the cluster
 *   secret) attempts a fenced write conditioned on the last leader record
 *   this node held, so a chaos test can show a deposed manager's write fails
 *   in the store.
 * - `PORTICO_TEST_RENEWAL_CHECK_MS` shortens the ACME renewal check
 *   (lib/acme/renewal.ts).
 * - Data-plane workers accept a `crash` message (lib/server/data_worker.ts).
 *
 * @module
 */

import type { FencedProbeResult } from "../api/cluster.ts";
import type { ClusterMember } from "../cluster/member.ts";
import { leaderKey, tryFencedWrite } from "../cluster/fencing.ts";
import { constantTimeEqual } from "../constant_time.ts";
import type { KVStore } from "../kv/types.ts";
import { TEST_HOOKS_ENV, TEST_PEER_ROUTES_ENV } from "../env.ts";



/** Whether the switch is on. */
export function testHooksOn(env: (name: string) => string | undefined): boolean {
  return env(TEST_HOOKS_ENV) === "1";
}

/** A fetch that dials the test proxy for the peers `PORTICO_TEST_PEER_ROUTES` names; undefined without any. */
export function peerRoutedFetch(env: (name: string) => string | undefined): typeof fetch | undefined {
  const text = testHooksOn(env) ? env(TEST_PEER_ROUTES_ENV) : undefined;
  if (!text) return undefined;
  const routes = new Map(Object.entries(JSON.parse(text) as Record<string, string>));
  if (routes.size === 0) return undefined;
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const dial = routes.get(url.host);
    if (dial) url.host = dial;
    return fetch(url, init);
  };
}

/** The fenced-write probe of `/api/cluster/test/fenced-write`; undefined without the switch, a secret or a store. */
export function fencedWriteProbe(
  env: (name: string) => string | undefined,
  member: ClusterMember,
  store: KVStore | undefined,
  rootKey: string,
) {
  if (!testHooksOn(env) || !member.secret || !store) return undefined;
  const secretBytes = new TextEncoder().encode(member.secret);
  return {
    authorized: (header: string | null) =>
      header !== null && constantTimeEqual(new TextEncoder().encode(header), secretBytes),
    async fencedProbe(key: string | undefined, value: string | undefined): Promise<FencedProbeResult> {
      const probeKey = key ?? `${rootKey}/cluster/test/probe`;
      const record = member.lastHeldRecord();
      const base = { believedManager: member.isManager(), record: record ?? null, key: probeKey };
      if (!record) return { ...base, accepted: false, error: "this node never held the leader record" };
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
  };
}
