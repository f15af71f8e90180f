/**
 * Fencing in the KV store: the leader record `<rootKey>/cluster/leader` holds
 * `{nodeId, term, since}` of the current manager. A new manager claims it
 * with compare-and-set, which succeeds only over a record with a lower term.
 * Every manager-only write then goes through {@linkcode fencedWrite}, a
 * transaction conditioned on the record still being exactly this manager's.
 * A deposed manager (paused, partitioned, slow) therefore fails in the store
 * itself, however stale its own belief is.
 *
 * @module
 */
import type { KVOperation, KVStore } from "../kv/types.ts";

/** What the leader key holds. */
export interface LeaderRecord {
  nodeId: string;
  term: number;
  /** When this node became manager, ISO 8601. */
  since: string;
}

/** Result of {@linkcode claimLeadership}. */
export type ClaimResult =
  | { claimed: true; record: LeaderRecord }
  /** `current` is the record that beat ours (same or higher term), if readable. */
  | { claimed: false; current: LeaderRecord | undefined };

/** A manager-only write was refused because this node no longer holds the leader record. */
export class FencedOutError extends Error {
  constructor(
    readonly key: string,
    readonly ours: LeaderRecord,
    readonly current: LeaderRecord | undefined,
  ) {
    super(
      `fenced out: ${key} is ${
        current ? `held by ${current.nodeId} at term ${current.term}` : "missing or unreadable"
      }, not by ${ours.nodeId} at term ${ours.term}; the write was not applied`,
    );
    this.name = "FencedOutError";
  }
}

/** The leader key under `rootKey` (e.g. `traefik` → `traefik/cluster/leader`). */
export function leaderKey(rootKey: string): string {
  return `${rootKey.replace(/\/+$/, "")}/cluster/leader`;
}

/** Canonical JSON of a record; value equality in transactions depends on it being stable. */
export function encodeLeaderRecord(record: LeaderRecord): string {
  return JSON.stringify({ nodeId: record.nodeId, term: record.term, since: record.since });
}

/** Parses a stored leader record; undefined when the value is not a valid record. */
export function decodeLeaderRecord(value: string): LeaderRecord | undefined {
  try {
    const v = JSON.parse(value);
    if (
      typeof v === "object" && v !== null && typeof v.nodeId === "string" && v.nodeId !== "" &&
      Number.isSafeInteger(v.term) && v.term >= 0 && typeof v.since === "string"
    ) return { nodeId: v.nodeId, term: v.term, since: v.since };
  } catch {
    // fall through: not JSON
  }
  return undefined;
}

/** Reads the current leader record, if any and valid. */
export async function readLeader(kv: KVStore, rootKey: string): Promise<LeaderRecord | undefined> {
  const entry = await kv.get(leaderKey(rootKey));
  return entry ? decodeLeaderRecord(entry.value) : undefined;
}

/**
 * Claims the leader record for `record.term`. Reads the current record,
 * refuses if its term is the same or higher, and otherwise compare-and-sets
 * against the exact value read, retrying when another writer got in between.
 * An unreadable stored value counts as term -1 so that garbage cannot block
 * every future election. Claiming again with the identical record succeeds
 * (a retried claim after a lost reply).
 *
 * @example
 * ```ts
 * const result = await claimLeadership(kv, "traefik", { nodeId: "n1", term: 7, since: new Date().toISOString() });
 * if (!result.claimed) stepDown();
 * ```
 */
export async function claimLeadership(
  kv: KVStore,
  rootKey: string,
  record: LeaderRecord,
  options: { maxAttempts?: number } = {},
): Promise<ClaimResult> {
  const key = leaderKey(rootKey);
  const value = encodeLeaderRecord(record);
  const maxAttempts = options.maxAttempts ?? 20;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const entry = await kv.get(key);
    const current = entry ? decodeLeaderRecord(entry.value) : undefined;
    if (entry && entry.value === value) return { claimed: true, record };
    if (current && current.term >= record.term) return { claimed: false, current };
    if (await kv.compareAndSet(key, entry?.value, value)) return { claimed: true, record };
  }
  throw new Error(
    `claiming ${key} for ${record.nodeId} at term ${record.term}: still contended after ${maxAttempts} attempts`,
  );
}

/**
 * Applies `operations` atomically if and only if the leader record is still
 * exactly `record`. Returns false when fenced out.
 */
export async function tryFencedWrite(
  kv: KVStore,
  rootKey: string,
  record: LeaderRecord,
  operations: KVOperation[],
): Promise<boolean> {
  const key = leaderKey(rootKey);
  for (const op of operations) {
    if (op.key === key) {
      throw new Error(`fenced writes must not change ${key}; use claimLeadership`);
    }
  }
  return await kv.transaction(
    [{ key, kind: "equals", value: encodeLeaderRecord(record) }],
    operations,
  );
}

/**
 * The single helper for manager-only writes (certificates, ACME account…):
 * like {@linkcode tryFencedWrite} but throws {@linkcode FencedOutError}.
 *
 * @example
 * ```ts
 * await fencedWrite(kv, "traefik", myRecord, [{ kind: "put", key: "traefik/acme/certs/example.com", value: pem }]);
 * ```
 */
export async function fencedWrite(
  kv: KVStore,
  rootKey: string,
  record: LeaderRecord,
  operations: KVOperation[],
): Promise<void> {
  if (await tryFencedWrite(kv, rootKey, record, operations)) return;
  throw new FencedOutError(
    leaderKey(rootKey),
    record,
    await readLeader(kv, rootKey).catch(() => undefined),
  );
}
