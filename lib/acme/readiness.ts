/**
 * The readiness gate: before the CA is told to validate, every cluster
 * member must confirm that its own HTTP-01 entrypoint answers the tokens,
 * because the CA may reach any of them. The manager asks each member again
 * every `intervalMs` until all confirmed or `timeoutMs` passed; a member
 * still absent then is reported by name and the order goes ahead without
 * it (one node down must not stop certificates for everyone).
 *
 * Time and sleeping are passed in, so the loop is tested deterministically.
 *
 * @module
 */

/** One member's answer to "does your own listener serve these tokens?". */
export type CheckResult = { ok: true; nodeId?: string } | { ok: false; reason: string };

/** A member to ask. */
export interface Member {
  /** How it is named in logs and the API: the node id for this node, the cluster address for peers. */
  name: string;
  check(): Promise<CheckResult>;
}

/** One member in a {@linkcode ReadinessReport}. */
export interface MemberReport {
  name: string;
  nodeId?: string;
  confirmed: boolean;
  /** Milliseconds from the start of the wait to its confirmation. */
  afterMs?: number;
  /** Why the last check failed, when it did not confirm. */
  lastError?: string;
  attempts: number;
}

/** What one wait did (shown in the `certificates` view and logged). */
export interface ReadinessReport {
  /** ISO 8601. */
  startedAt: string;
  waitedMs: number;
  timedOut: boolean;
  timeoutMs: number;
  members: MemberReport[];
}

/** Clock and sleep of {@linkcode awaitMembers}. */
export interface GateClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const REAL_CLOCK: GateClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/**
 * Asks every member until all confirmed or `timeoutMs` passed. A check that
 * throws counts as "not yet" with its message. Never throws.
 */
export async function awaitMembers(
  members: Member[],
  options: { timeoutMs: number; intervalMs: number; clock?: GateClock },
): Promise<ReadinessReport> {
  const clock = options.clock ?? REAL_CLOCK;
  const start = clock.now();
  const reports: MemberReport[] = members.map((m) => ({
    name: m.name,
    confirmed: false,
    attempts: 0,
  }));
  for (;;) {
    await Promise.all(members.map(async (m, i) => {
      const r = reports[i];
      if (r.confirmed) return;
      r.attempts++;
      let result: CheckResult;
      try {
        result = await m.check();
      } catch (err) {
        result = { ok: false, reason: (err as Error).message ?? String(err) };
      }
      if (result.ok) {
        r.confirmed = true;
        r.afterMs = clock.now() - start;
        if (result.nodeId) r.nodeId = result.nodeId;
        delete r.lastError;
      } else {
        r.lastError = result.reason;
      }
    }));
    const elapsed = clock.now() - start;
    const done = reports.every((r) => r.confirmed);
    if (done || elapsed >= options.timeoutMs) {
      return {
        startedAt: new Date(start).toISOString(),
        waitedMs: elapsed,
        timedOut: !done,
        timeoutMs: options.timeoutMs,
        members: reports,
      };
    }
    await clock.sleep(Math.min(options.intervalMs, options.timeoutMs - elapsed));
  }
}
