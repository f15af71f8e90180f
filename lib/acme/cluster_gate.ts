/**
 * The manager's gate before it asks the CA to validate: every joined node
 * confirms, over the signed peer channel, that its own HTTP-01 listener
 * serves the challenge tokens. Each node answers those checks for itself.
 *
 * @module
 */

import type { CertificateResolverConfig, EntryPointConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { ClusterMember } from "../cluster/member.ts";
import {
  CHALLENGE_CHECK_PATH,
  checkOwnListener,
  decodeCheckReply,
  decodeCheckRequest,
  sha256Hex,
} from "./challenge_check.ts";
import type { PublishedChallenge } from "./issuer.ts";
import { awaitMembers, type Member, type ReadinessReport } from "./readiness.ts";

/** `http://host:port` of this node's HTTP-01 entrypoint for `resolver`, as a client dials it. */
function challengeBase(
  entryPoints: Record<string, EntryPointConfig>,
  resolver: CertificateResolverConfig | undefined,
): string | undefined {
  const name = resolver?.acme.httpChallenge?.entryPoint;
  const ep = name ? entryPoints[name] : undefined;
  if (!ep) return undefined;
  const host = !ep.hostname || ep.hostname === "0.0.0.0"
    ? "127.0.0.1"
    : ep.hostname === "::"
    ? "[::1]"
    : ep.hostname.includes(":")
    ? `[${ep.hostname}]`
    : ep.hostname;
  return `http://${host}:${ep.port}`;
}

/** Every node answers the manager's readiness checks with a request to its own listener. */
export function serveChallengeChecks(
  entryPoints: Record<string, EntryPointConfig>,
  resolvers: Record<string, CertificateResolverConfig>,
  cluster: ClusterMember,
): () => void {
  const nodeId = cluster.nodeId();
  return cluster.peerRoute(CHALLENGE_CHECK_PATH, async (body) => {
    const request = decodeCheckRequest(body);
    const base = challengeBase(entryPoints, resolvers[request.resolver]);
    if (!base) {
      return {
        nodeId,
        ok: false,
        detail: `resolver ${request.resolver} has no httpChallenge entrypoint here`,
      };
    }
    const reason = await checkOwnListener(base, request.tokens);
    return reason ? { nodeId, ok: false, detail: reason } : { nodeId, ok: true };
  });
}

/** How often an unconfirmed member is asked again, and how long one check may take. */
const GATE_INTERVAL_MS = 100;
const GATE_CHECK_TIMEOUT_MS = 1500;

/**
 * The manager's readiness gate: this node and every configured peer must
 * confirm their own HTTP-01 listener serves the tokens, within the
 * resolver's `clusterReadyTimeout`. Logs the outcome, naming absent members.
 */
export function readinessGate(
  entryPoints: Record<string, EntryPointConfig>,
  resolvers: Record<string, CertificateResolverConfig>,
  cluster: ClusterMember,
  log: Logger,
): (resolver: string, challenges: PublishedChallenge[]) => Promise<ReadinessReport> {
  return async (resolver, challenges) => {
    const tokens = await Promise.all(challenges.map(async (c) => ({
      token: c.token,
      sha256: await sha256Hex(c.keyAuthorization),
    })));
    const body = JSON.stringify({ resolver, tokens });
    const base = challengeBase(entryPoints, resolvers[resolver]);
    const self: Member = {
      name: cluster.nodeId(),
      check: async () => {
        const reason = base ? await checkOwnListener(base, tokens) : "no httpChallenge entrypoint";
        return reason ? { ok: false, reason } : { ok: true, nodeId: cluster.nodeId() };
      },
    };
    const peers: Member[] = cluster.peers().map((peer) => ({
      name: peer,
      check: async () => {
        const reply = decodeCheckReply(
          await cluster.peerCall(peer, CHALLENGE_CHECK_PATH, body, GATE_CHECK_TIMEOUT_MS),
        );
        return reply.ok
          ? { ok: true, nodeId: reply.nodeId }
          : { ok: false, reason: `${reply.nodeId}: ${reply.detail ?? "not ready"}` };
      },
    }));
    const timeoutMs = resolvers[resolver]?.acme.clusterReadyTimeout ?? 30_000;
    const report = await awaitMembers([self, ...peers], {
      timeoutMs,
      intervalMs: GATE_INTERVAL_MS,
    });
    const domains = challenges.map((c) => c.domain);
    const summary = report.members.map((m) =>
      `${m.nodeId ?? m.name}${m.nodeId && m.nodeId !== m.name ? ` (${m.name})` : ""}: ${
        m.confirmed ? `confirmed after ${m.afterMs} ms` : "absent"
      }`
    ).join("; ");
    for (const m of report.members.filter((m) => !m.confirmed)) {
      log.warn("challenge readiness: member absent, validating without it", {
        member: m.name,
        resolver,
        domains,
        waitedMs: report.waitedMs,
        timeoutMs,
        lastError: m.lastError,
      });
    }
    log.info(
      report.timedOut
        ? "challenge readiness: wait ended at clusterReadyTimeout"
        : "challenge readiness: every member serves the challenge",
      { resolver, domains, waitedMs: report.waitedMs, members: summary },
    );
    return report;
  };
}

/** Resolves once something accepts TCP on `host:port` (port 0: cannot tell; short pause). */
export async function waitForTcp(host: string, port: number): Promise<void> {
  if (port === 0) return await new Promise((r) => setTimeout(r, 200));
  const target = host === "0.0.0.0" ? "127.0.0.1" : host;
  for (let i = 0; i < 500; i++) {
    try {
      (await Deno.connect({ hostname: target, port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
