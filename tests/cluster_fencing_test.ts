/** Tests for leader-record fencing over the KV interface (memory backend). @module */
import assert from "node:assert/strict";
import {
  claimLeadership,
  encodeLeaderRecord,
  FencedOutError,
  fencedWrite,
  leaderKey,
  type LeaderRecord,
  readLeader,
  tryFencedWrite,
} from "../lib/cluster/fencing.ts";
import { MemoryKVBackend, MemoryKVStore } from "../lib/kv/memory.ts";
import type { KVStore } from "../lib/kv/types.ts";

const ROOT = "traefik";
const rec = (nodeId: string, term: number): LeaderRecord => ({
  nodeId,
  term,
  since: `2024-01-01T00:00:${String(term).padStart(2, "0")}Z`,
});

/** Two clients of one store, as two Portico nodes would have. */
function twoNodes(): [MemoryKVStore, MemoryKVStore] {
  const backend = new MemoryKVBackend();
  return [new MemoryKVStore({ backend }), new MemoryKVStore({ backend })];
}

Deno.test("leaderKey tolerates a trailing slash", () => {
  assert.equal(leaderKey("traefik"), "traefik/cluster/leader");
  assert.equal(leaderKey("traefik/"), "traefik/cluster/leader");
});

Deno.test("claims succeed only over a lower term", async () => {
  const [kv] = twoNodes();
  const cases: [LeaderRecord, boolean, number][] = [
    [rec("a", 1), true, 1], // empty store
    [rec("b", 1), false, 1], // same term, someone else
    [rec("a", 1), true, 1], // identical retry is idempotent
    [rec("b", 3), true, 3], // higher term wins
    [rec("a", 2), false, 3], // lower term loses
    [rec("c", 3), false, 3],
    [rec("c", 4), true, 4],
  ];
  for (const [record, want, storedTerm] of cases) {
    const result = await claimLeadership(kv, ROOT, record);
    assert.equal(result.claimed, want, `${record.nodeId}@${record.term}`);
    if (!result.claimed) assert.equal(result.current?.term, storedTerm);
    assert.equal((await readLeader(kv, ROOT))?.term, storedTerm);
  }
});

Deno.test("a deposed manager's write is refused by the store", async () => {
  const [a, b] = twoNodes();
  const old = rec("a", 5);
  assert.equal((await claimLeadership(a, ROOT, old)).claimed, true);
  await fencedWrite(a, ROOT, old, [{ kind: "put", key: "traefik/acme/cert", value: "from-a" }]);
  assert.equal((await a.get("traefik/acme/cert"))?.value, "from-a");

  // b is elected at a higher term while a is paused
  const next = rec("b", 6);
  assert.equal((await claimLeadership(b, ROOT, next)).claimed, true);

  // a wakes up and tries to write: refused, nothing changed
  await assert.rejects(
    fencedWrite(a, ROOT, old, [
      { kind: "put", key: "traefik/acme/cert", value: "stale-from-a" },
      { kind: "delete", key: "traefik/acme/other" },
    ]),
    (e: unknown) => {
      assert.ok(e instanceof FencedOutError);
      assert.equal(e.current?.nodeId, "b");
      assert.equal(e.current?.term, 6);
      assert.match(e.message, /traefik\/cluster\/leader/);
      return true;
    },
  );
  assert.equal(
    await tryFencedWrite(a, ROOT, old, [{ kind: "put", key: "traefik/x", value: "1" }]),
    false,
  );
  assert.equal((await b.get("traefik/acme/cert"))?.value, "from-a");
  assert.equal(await b.get("traefik/x"), undefined);

  // the real manager writes fine
  await fencedWrite(b, ROOT, next, [{ kind: "put", key: "traefik/acme/cert", value: "from-b" }]);
  assert.equal((await a.get("traefik/acme/cert"))?.value, "from-b");
});

Deno.test("a record with the same node and term but another `since` is not ours", async () => {
  const [kv] = twoNodes();
  await claimLeadership(kv, ROOT, rec("a", 2));
  const forged = { ...rec("a", 2), since: "1999-01-01T00:00:00Z" };
  assert.equal(
    await tryFencedWrite(kv, ROOT, forged, [{ kind: "put", key: "traefik/k", value: "v" }]),
    false,
  );
});

Deno.test("fenced writes may not touch the leader key", async () => {
  const [kv] = twoNodes();
  const r = rec("a", 1);
  await claimLeadership(kv, ROOT, r);
  await assert.rejects(
    tryFencedWrite(kv, ROOT, r, [{ kind: "delete", key: leaderKey(ROOT) }]),
    /claimLeadership/,
  );
});

Deno.test("concurrent claims for one term resolve to exactly one winner", async () => {
  for (let round = 0; round < 20; round++) {
    const backend = new MemoryKVBackend();
    const clients = ["a", "b", "c", "d", "e"].map(() => new MemoryKVStore({ backend }));
    const results = await Promise.all(
      clients.map((kv, i) => claimLeadership(kv, ROOT, rec(String.fromCharCode(97 + i), 9))),
    );
    const winners = results.filter((r) => r.claimed);
    assert.equal(winners.length, 1, `round ${round}`);
    const stored = await readLeader(clients[0], ROOT);
    assert.equal(stored?.nodeId, winners[0].claimed && winners[0].record.nodeId);
  }
});

Deno.test("concurrent claims at different terms end with the highest term stored", async () => {
  const backend = new MemoryKVBackend();
  const terms = [3, 7, 5, 6, 4];
  const results = await Promise.all(
    terms.map((t, i) => claimLeadership(new MemoryKVStore({ backend }), ROOT, rec(`n${i}`, t))),
  );
  assert.equal(results[1].claimed, true, "the highest term always wins");
  assert.equal((await readLeader(new MemoryKVStore({ backend }), ROOT))?.term, 7);
});

/** Wraps a store so that a rival write lands between our read and our CAS. */
function racing(kv: KVStore, rival: () => Promise<void>): KVStore {
  let raced = false;
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === "compareAndSet") {
        return async (key: string, expected: string | undefined, value: string) => {
          if (!raced) {
            raced = true;
            await rival();
          }
          return await target.compareAndSet(key, expected, value);
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

Deno.test("a lost CAS race is retried against the new value", async () => {
  const cases: [string, number, boolean][] = [
    ["rival with a lower term: retry wins", 2, true],
    ["rival with a higher term: retry gives up", 9, false],
  ];
  for (const [name, rivalTerm, want] of cases) {
    const [kv, other] = twoNodes();
    await claimLeadership(kv, ROOT, rec("old", 1));
    const raced = racing(kv, async () => {
      await other.put(leaderKey(ROOT), encodeLeaderRecord(rec("rival", rivalTerm)));
    });
    const result = await claimLeadership(raced, ROOT, rec("me", 5));
    assert.equal(result.claimed, want, name);
    assert.equal((await readLeader(kv, ROOT))?.nodeId, want ? "me" : "rival", name);
  }
});

Deno.test("garbage in the leader key does not block elections", async () => {
  const [kv] = twoNodes();
  await kv.put(leaderKey(ROOT), "not json");
  assert.equal(await readLeader(kv, ROOT), undefined);
  assert.equal((await claimLeadership(kv, ROOT, rec("a", 1))).claimed, true);
});
