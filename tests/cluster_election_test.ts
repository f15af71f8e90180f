/**
 * Deterministic tests of the election state machine, driven by an in-memory
 * simulated network with a fake clock and a seeded PRNG. Links can be cut in
 * one direction, nodes can crash (losing everything but their persisted
 * {term, votedFor}), restart, pause and resume.
 *
 * Scenarios ported (not copied) from etcd-io/raft: TestLeaderElectionWithCheckQuorum,
 * TestFreeStuckCandidateWithCheckQuorum, TestPreVoteWithCheckQuorum and the
 * `prevote_checkquorum` data-driven test. TestNonPromotableVoterWithCheckQuorum
 * does not apply: every configured node here is a voter.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type Effect,
  Election,
  type ElectionConfig,
  ElectionConfigError,
  type HardState,
  type PeerMessage,
  type Role,
} from "../lib/cluster/election.ts";

// ------------------------------------------------------------------ harness

/** mulberry32: small, fast, good enough for scheduling decisions. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const T = 100; // election timeout (ms)
const HB = 10; // heartbeat interval (ms)

interface SimNode {
  id: string;
  election: Election;
  alive: boolean;
  paused: boolean;
  disk: HardState;
}

interface SimOptions {
  seed?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  latency?: [number, number];
  /** Check "never two live, running leaders at once" after every step. */
  strict?: boolean;
  /** Overrides the latency of one direction of one link. */
  linkLatency?: (from: string, to: string) => number | undefined;
  /** Overrides a node's PRNG (to pin election timeouts in scripted scenarios). */
  nodeRandom?: (id: string) => (() => number) | undefined;
}

interface RoleEvent {
  at: number;
  id: string;
  type: "becameManager" | "lostManager";
  term: number;
  reason: string;
}

class Sim {
  now = 0;
  readonly nodes = new Map<string, SimNode>();
  readonly events: RoleEvent[] = [];
  readonly violations: string[] = [];
  readonly #blocked = new Set<string>();
  #queue: { at: number; seq: number; message: PeerMessage }[] = [];
  #seq = 0;
  readonly #rand: () => number;
  readonly #leaderOfTerm = new Map<number, string>();
  readonly #votes = new Map<string, string>(); // "node@term" → votedFor, across restarts
  readonly #opts: Required<SimOptions>;

  constructor(readonly ids: string[], opts: SimOptions = {}) {
    this.#opts = {
      seed: 1,
      preVote: true,
      checkQuorum: true,
      latency: [1, 5],
      strict: true,
      nodeRandom: () => undefined,
      linkLatency: () => undefined,
      ...opts,
    };
    this.#rand = prng(this.#opts.seed);
    for (const id of ids) {
      const disk = { term: 0, votedFor: null };
      this.nodes.set(id, {
        id,
        election: this.#make(id, disk),
        alive: true,
        paused: false,
        disk,
      });
    }
  }

  #make(id: string, disk: HardState): Election {
    const config: ElectionConfig = {
      id,
      peers: this.ids.filter((p) => p !== id),
      electionTimeoutMs: T,
      heartbeatIntervalMs: HB,
      random: this.#opts.nodeRandom(id) ??
        prng(this.#opts.seed * 7919 + this.ids.indexOf(id) * 104729 + this.now),
      preVote: this.#opts.preVote,
      checkQuorum: this.#opts.checkQuorum,
    };
    return new Election(config, { ...disk }, this.now);
  }

  node(id: string): Election {
    return this.nodes.get(id)!.election;
  }

  // ---- faults
  block(from: string, to: string) {
    this.#blocked.add(`${from}->${to}`);
  }
  unblock(from: string, to: string) {
    this.#blocked.delete(`${from}->${to}`);
  }
  isolate(id: string) {
    for (const other of this.ids) {
      if (other !== id) {
        this.block(id, other);
        this.block(other, id);
      }
    }
  }
  partition(...groups: string[][]) {
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.block(x, y);
      }
    }
  }
  heal() {
    this.#blocked.clear();
  }
  crash(id: string) {
    const n = this.nodes.get(id)!;
    n.alive = false;
  }
  restart(id: string) {
    const n = this.nodes.get(id)!;
    n.alive = true;
    n.paused = false;
    n.election = this.#make(id, n.disk);
  }
  pause(id: string) {
    this.nodes.get(id)!.paused = true;
  }
  resume(id: string) {
    const n = this.nodes.get(id)!;
    n.paused = false;
    // A resumed process first notices how much time passed.
    this.#apply(n, n.election.tick(this.now));
  }

  /** Runs an API call on a node and applies its effects. */
  act(id: string, f: (e: Election, now: number) => Effect[]) {
    const n = this.nodes.get(id)!;
    this.#apply(n, f(n.election, this.now));
    this.#check();
  }

  #running(n: SimNode) {
    return n.alive && !n.paused;
  }

  #apply(n: SimNode, effects: Effect[]) {
    let persistedAt = -1;
    effects.forEach((effect, index) => {
      switch (effect.type) {
        case "persist": {
          n.disk = { ...effect.state };
          persistedAt = index;
          if (effect.state.votedFor !== null) {
            const key = `${n.id}@${effect.state.term}`;
            const prior = this.#votes.get(key);
            if (prior !== undefined && prior !== effect.state.votedFor) {
              this.violations.push(
                `${n.id} voted for ${prior} and ${effect.state.votedFor} in term ${effect.state.term}`,
              );
            }
            this.#votes.set(key, effect.state.votedFor);
          }
          break;
        }
        case "send": {
          const m = effect.message;
          if (m.type === "voteResponse" && m.granted) {
            // the vote must already be on disk when the grant leaves
            if (n.disk.term !== m.term || n.disk.votedFor !== m.to) {
              this.violations.push(`${n.id} granted a vote to ${m.to} before persisting it`);
            }
            if (persistedAt > index) this.violations.push("persist after send");
          }
          if (this.#blocked.has(`${m.from}->${m.to}`)) break;
          const [lo, hi] = this.#opts.latency;
          const at = this.now + (this.#opts.linkLatency(m.from, m.to) ??
            lo + Math.floor(this.#rand() * (hi - lo + 1)));
          this.#queue.push({ at, seq: this.#seq++, message: m });
          break;
        }
        case "becameManager": {
          this.events.push({ at: this.now, id: n.id, ...effect });
          const prior = this.#leaderOfTerm.get(effect.term);
          if (prior !== undefined && prior !== n.id) {
            this.violations.push(`two leaders in term ${effect.term}: ${prior} and ${n.id}`);
          }
          this.#leaderOfTerm.set(effect.term, n.id);
          break;
        }
        case "lostManager":
          this.events.push({ at: this.now, id: n.id, ...effect });
          break;
      }
    });
  }

  #check() {
    if (!this.#opts.strict) return;
    const leaders = [...this.nodes.values()].filter((n) =>
      this.#running(n) && n.election.role === "leader"
    );
    if (leaders.length > 1) {
      this.violations.push(
        `at ${this.now}: simultaneous leaders ${
          leaders.map((n) => `${n.id}@${n.election.term}`).join(", ")
        }`,
      );
    }
  }

  /** Advances the clock to `end`, delivering messages and firing deadlines in time order. */
  runUntil(end: number) {
    for (;;) {
      let next = Infinity;
      for (const q of this.#queue) next = Math.min(next, q.at);
      for (const n of this.nodes.values()) {
        if (this.#running(n)) next = Math.min(next, n.election.nextDeadline());
      }
      if (next > end) break;
      this.now = Math.max(this.now, next);
      // deliver due messages one by one, oldest first
      for (;;) {
        let best = -1;
        for (let i = 0; i < this.#queue.length; i++) {
          const q = this.#queue[i];
          if (q.at > this.now) continue;
          if (
            best < 0 || q.at < this.#queue[best].at ||
            (q.at === this.#queue[best].at && q.seq < this.#queue[best].seq)
          ) best = i;
        }
        if (best < 0) break;
        const [{ message }] = this.#queue.splice(best, 1);
        const target = this.nodes.get(message.to)!;
        if (!this.#running(target)) continue; // lost in flight
        this.#apply(target, target.election.receive(message, this.now));
        this.#check();
      }
      for (const n of this.nodes.values()) {
        if (this.#running(n) && n.election.nextDeadline() <= this.now) {
          this.#apply(n, n.election.tick(this.now));
          this.#check();
        }
      }
    }
    this.now = end;
  }

  run(ms: number) {
    this.runUntil(this.now + ms);
  }

  /** Runs until some running node is leader; returns its id and the time, or fails. */
  runUntilLeader(maxMs: number, exclude: string[] = []): { id: string; at: number } {
    const end = this.now + maxMs;
    while (this.now < end) {
      this.run(1);
      const l = this.leaders().filter((id) => !exclude.includes(id));
      if (l.length === 1) return { id: l[0], at: this.now };
    }
    throw new Error(`no leader within ${maxMs}ms (now ${this.now}): ${this.describe()}`);
  }

  leaders(): string[] {
    return [...this.nodes.values()].filter((n) => this.#running(n) && n.election.role === "leader")
      .map((n) => n.id);
  }

  role(id: string): Role {
    return this.node(id).role;
  }

  describe(): string {
    return [...this.nodes.values()].map((n) =>
      `${n.id}:${n.alive ? (n.paused ? "paused" : n.election.role) : "dead"}@${n.election.term}`
    ).join(" ");
  }

  /** Asserts one leader that a majority (itself included) follows, at one term. */
  assertStableLeader(): string {
    const leaders = this.leaders();
    assert.equal(leaders.length, 1, `expected one leader: ${this.describe()}`);
    const leader = leaders[0];
    const term = this.node(leader).term;
    const followers = this.ids.filter((id) =>
      id !== leader && this.nodes.get(id)!.alive && this.node(id).leader === leader &&
      this.node(id).term === term
    );
    assert.ok(
      followers.length + 1 >= Math.floor(this.ids.length / 2) + 1,
      `leader ${leader} followed by a minority: ${this.describe()}`,
    );
    return leader;
  }

  assertNoViolations() {
    assert.deepEqual(this.violations, []);
  }
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `n${i + 1}`);

// -------------------------------------------------------------- unit checks

Deno.test("config errors name the field", () => {
  const base: ElectionConfig = {
    id: "a",
    peers: ["b", "c"],
    electionTimeoutMs: 100,
    heartbeatIntervalMs: 10,
    random: () => 0.5,
  };
  const cases: [string, Partial<ElectionConfig>, string][] = [
    ["empty id", { id: "" }, "id"],
    ["zero timeout", { electionTimeoutMs: 0 }, "electionTimeoutMs"],
    ["NaN heartbeat", { heartbeatIntervalMs: NaN }, "heartbeatIntervalMs"],
    ["heartbeat too slow", { heartbeatIntervalMs: 60 }, "heartbeatIntervalMs"],
    ["self in peers", { peers: ["a", "b"] }, "peers"],
    ["duplicate peer", { peers: ["b", "b"] }, "peers"],
    ["drift", { clockDriftRatio: 0.9 }, "clockDriftRatio"],
  ];
  for (const [name, patch, field] of cases) {
    assert.throws(
      () => new Election({ ...base, ...patch }, { term: 0, votedFor: null }, 0),
      (e: unknown) => e instanceof ElectionConfigError && e.field === field,
      name,
    );
  }
});

Deno.test("randomised election timeout stays in [t, 2t)", () => {
  for (const r of [0, 0.5, 0.999999, 1, -3, NaN]) {
    const e = new Election(
      { id: "a", peers: ["b"], electionTimeoutMs: 100, heartbeatIntervalMs: 10, random: () => r },
      { term: 0, votedFor: null },
      1000,
    );
    const d = e.nextDeadline() - 1000;
    assert.ok(d >= 100 && d < 200, `random ${r} gave timeout ${d}`);
  }
});

Deno.test("a node with no peers becomes manager on its first tick", () => {
  const e = new Election(
    { id: "solo", peers: [], electionTimeoutMs: 100, heartbeatIntervalMs: 10, random: () => 0 },
    { term: 4, votedFor: null },
    0,
  );
  const effects = e.tick(0);
  assert.equal(e.role, "leader");
  assert.equal(e.term, 5);
  assert.deepEqual(effects[0], { type: "persist", state: { term: 5, votedFor: "solo" } });
  assert.ok(effects.some((x) => x.type === "becameManager" && x.term === 5));
  // and it never steps down for lack of a quorum
  e.tick(10_000);
  assert.equal(e.role, "leader");
});

Deno.test("vote is persisted before it is answered, and survives a restart", () => {
  const cfg = (random: () => number): ElectionConfig => ({
    id: "v",
    peers: ["x", "y"],
    electionTimeoutMs: 100,
    heartbeatIntervalMs: 10,
    random,
  });
  const e = new Election(cfg(() => 0.5), { term: 1, votedFor: null }, 0);
  // 120 ms: past the boot lease, before the 150 ms election deadline
  const effects = e.receive({ type: "vote", term: 2, from: "x", to: "v" }, 120);
  assert.deepEqual(effects.map((x) => x.type), ["persist", "send"]);
  assert.deepEqual(effects[0], { type: "persist", state: { term: 2, votedFor: "x" } });
  assert.deepEqual(effects[1], {
    type: "send",
    message: { type: "voteResponse", term: 2, from: "v", to: "x", granted: true },
  });

  // Restart from disk: the same term, another candidate, must be refused.
  const restarted = new Election(cfg(() => 0.5), { term: 2, votedFor: "x" }, 10_000);
  const again = restarted.receive({ type: "vote", term: 2, from: "y", to: "v" }, 10_001);
  assert.deepEqual(again, [{
    type: "send",
    message: { type: "voteResponse", term: 2, from: "v", to: "y", granted: false },
  }]);
  // …but re-granting the same candidate is fine (a lost response is retried).
  const same = restarted.receive({ type: "vote", term: 2, from: "x", to: "v" }, 10_002);
  assert.ok(same.some((x) => x.type === "send" && "granted" in x.message && x.message.granted));
  // A fresh node without the persisted vote would have granted y: the test can fail.
  const amnesiac = new Election(cfg(() => 0.5), { term: 2, votedFor: null }, 10_000);
  const wrong = amnesiac.receive({ type: "vote", term: 2, from: "y", to: "v" }, 10_001);
  assert.ok(wrong.some((x) => x.type === "send" && "granted" in x.message && x.message.granted));
});

Deno.test("messages from unknown peers or for another node are ignored", () => {
  const e = new Election(
    { id: "a", peers: ["b"], electionTimeoutMs: 100, heartbeatIntervalMs: 10, random: () => 0 },
    { term: 1, votedFor: null },
    0,
  );
  const cases: PeerMessage[] = [
    { type: "vote", term: 9, from: "mallory", to: "a" },
    { type: "vote", term: 9, from: "b", to: "c" },
  ];
  for (const m of cases) {
    const out = e.receive(m, 50);
    assert.deepEqual(out.map((x) => x.type), ["ignored"]);
    assert.equal(e.term, 1);
  }
});

// ------------------------------------------------------------- simulations

for (const size of [3, 5]) {
  for (const seed of [1, 2, 3, 4, 5]) {
    Deno.test(`${size} nodes elect exactly one leader (seed ${seed})`, () => {
      const sim = new Sim(names(size), { seed });
      const first = sim.runUntilLeader(10 * T);
      assert.ok(first.at >= T, "nobody may win before the boot lease ends");
      sim.run(20 * T);
      const leader = sim.assertStableLeader();
      assert.equal(leader, first.id, "a healthy leader is never replaced");
      for (const id of sim.ids) assert.equal(sim.node(id).term, sim.node(leader).term);
      sim.assertNoViolations();
    });
  }
}

Deno.test("split vote resolves in a later term", () => {
  // Four nodes, quorum three. n1 and n2 campaign at the same instant and each
  // reaches only one other voter, so neither can win term 1.
  const sim = new Sim(names(4), {
    seed: 11,
    preVote: false,
    strict: false,
    nodeRandom: (id) => id === "n3" || id === "n4" ? () => 0.9 : undefined,
  });
  sim.run(T); // past the boot lease
  sim.block("n1", "n4");
  sim.block("n2", "n3");
  sim.act("n1", (e, now) => e.campaign(now));
  sim.act("n2", (e, now) => e.campaign(now));
  sim.run(20);
  assert.deepEqual(sim.leaders(), []);
  assert.equal(sim.node("n1").term, 1);
  assert.equal(sim.node("n2").term, 1);
  assert.equal(sim.node("n3").status().votedFor, "n1");
  assert.equal(sim.node("n4").status().votedFor, "n2");
  sim.heal();
  const { id } = sim.runUntilLeader(10 * T);
  assert.ok(sim.node(id).term >= 2);
  sim.run(5 * T);
  sim.assertStableLeader();
  sim.assertNoViolations();
});

Deno.test("leader crash: a new leader within bounds, across seeds", () => {
  const delays: number[] = [];
  for (let seed = 1; seed <= 20; seed++) {
    const sim = new Sim(names(seed % 2 ? 3 : 5), { seed });
    const old = sim.runUntilLeader(10 * T).id;
    sim.run(3 * T);
    const crashedAt = sim.now;
    sim.crash(old);
    const next = sim.runUntilLeader(10 * T);
    assert.notEqual(next.id, old);
    delays.push(next.at - crashedAt);
    sim.restart(old);
    sim.run(5 * T);
    assert.equal(sim.assertStableLeader(), next.id, "restarted old leader must not disrupt");
    sim.assertNoViolations();
  }
  // Followers wait [t, 2t) after the last heartbeat, plus two round trips.
  for (const d of delays) assert.ok(d <= 2 * T + HB + 40, `failover took ${d}ms`);
  delays.sort((a, b) => a - b);
  assert.ok(delays[Math.floor(delays.length / 2)] < 2 * T, `median ${delays[10]}ms`);
});

Deno.test("CheckQuorum: a partitioned leader steps down before the majority elects", () => {
  for (let seed = 1; seed <= 10; seed++) {
    const ids = names(5);
    const sim = new Sim(ids, { seed });
    const old = sim.runUntilLeader(10 * T).id;
    sim.run(2 * T);
    const term = sim.node(old).term;
    const buddy = ids.find((id) => id !== old)!;
    const minority = [old, buddy];
    const majority = ids.filter((id) => !minority.includes(id));
    const cutAt = sim.now;
    sim.partition(minority, majority);
    const next = sim.runUntilLeader(10 * T, [old]);
    assert.ok(majority.includes(next.id));
    const stepDown = sim.events.find((e) => e.id === old && e.type === "lostManager");
    assert.ok(stepDown, "old leader must step down");
    assert.equal(stepDown.term, term);
    assert.match(stepDown.reason, /checkQuorum/);
    assert.ok(stepDown.at < next.at, `stepped down at ${stepDown.at}, new leader at ${next.at}`);
    assert.ok(stepDown.at - cutAt <= T, `step-down took ${stepDown.at - cutAt}ms`);
    sim.assertNoViolations();
  }
});

Deno.test("CheckQuorum times the lease from when a heartbeat was sent, not when its ack came back", () => {
  // b's acks to a take 60 ms. If a counted b as active from the ack's
  // arrival, a would still believe in its lease long after b's lease lapsed
  // and b had helped c win.
  const pinned: Record<string, number> = { a: 0, b: 0.5, c: 0.2 };
  const sim = new Sim(["a", "b", "c"], {
    latency: [1, 1],
    linkLatency: (from, to) => from === "b" && to === "a" ? 60 : undefined,
    nodeRandom: (id) => () => pinned[id],
  });
  assert.equal(sim.runUntilLeader(3 * T).id, "a");
  sim.run(3 * T);
  sim.isolate("a");
  const next = sim.runUntilLeader(5 * T, ["a"]);
  assert.equal(next.id, "c");
  const stepDown = sim.events.find((e) => e.id === "a" && e.type === "lostManager")!;
  assert.ok(stepDown.at < next.at, `a stepped down at ${stepDown.at}, c won at ${next.at}`);
  sim.assertNoViolations();
});

for (const preVote of [true, false]) {
  Deno.test(`a rejoining isolated follower ${preVote ? "does not" : "does"} disturb the leader (preVote ${preVote})`, () => {
    const sim = new Sim(names(3), { seed: 7, preVote, strict: preVote });
    const leader = sim.runUntilLeader(10 * T).id;
    sim.run(2 * T);
    const term = sim.node(leader).term;
    const lone = sim.ids.find((id) => id !== leader)!;
    sim.isolate(lone);
    sim.run(20 * T);
    if (preVote) assert.equal(sim.node(lone).term, term, "prevote must not bump the term");
    else assert.ok(sim.node(lone).term > term + 3);
    sim.heal();
    sim.run(10 * T);
    if (preVote) {
      assert.equal(sim.assertStableLeader(), leader);
      assert.equal(sim.node(leader).term, term);
      assert.equal(sim.node(lone).leader, leader);
      assert.equal(sim.events.filter((e) => e.type === "lostManager").length, 0);
    } else {
      // Without prevote the returning node's higher term deposes the leader.
      assert.ok(sim.events.some((e) => e.id === leader && e.type === "lostManager"));
      sim.assertStableLeader();
    }
    sim.assertNoViolations();
  });
}

Deno.test("etcd LeaderElectionWithCheckQuorum: leases expire, then a new campaign wins", () => {
  const sim = new Sim(["a", "b", "c"], { seed: 3, strict: false });
  sim.run(T); // boot lease
  sim.act("a", (e, now) => e.campaign(now));
  sim.run(20);
  assert.equal(sim.role("a"), "leader");
  assert.equal(sim.role("c"), "follower");
  // c's campaign is ignored while b still holds a's lease
  sim.act("c", (e, now) => e.campaign(now));
  sim.run(20);
  assert.equal(sim.role("a"), "leader");
  assert.notEqual(sim.role("c"), "leader");
  // a goes quiet for a full timeout: a steps down and every lease lapses
  sim.isolate("a");
  sim.run(T + 10);
  assert.equal(sim.role("a"), "follower");
  sim.heal();
  sim.act("c", (e, now) => e.campaign(now));
  sim.run(30);
  assert.equal(sim.role("c"), "leader");
  assert.equal(sim.role("a"), "follower");
  sim.assertNoViolations();
});

Deno.test("etcd FreeStuckCandidateWithCheckQuorum: a stuck higher-term candidate is freed", () => {
  const sim = new Sim(["a", "b", "c"], { seed: 5, preVote: false, strict: false });
  sim.run(T);
  sim.act("a", (e, now) => e.campaign(now));
  sim.run(20);
  assert.equal(sim.role("a"), "leader");
  const term = sim.node("a").term;
  // c cannot hear a (nor a hear c); b keeps a's lease and ignores c.
  sim.block("a", "c");
  sim.block("c", "a");
  sim.act("c", (e, now) => e.campaign(now));
  sim.run(20);
  assert.equal(sim.role("c"), "candidate");
  assert.equal(sim.node("c").term, term + 1);
  assert.equal(sim.role("b"), "follower");
  sim.act("c", (e, now) => e.campaign(now));
  sim.run(20);
  assert.equal(sim.node("c").term, term + 2);
  assert.equal(sim.node("b").term, term, "b in lease ignores c");
  // heal: a's next heartbeat reaches c, c answers with its term, a steps down
  sim.heal();
  sim.run(HB + 10);
  assert.equal(sim.role("a"), "follower");
  assert.equal(sim.node("a").term, term + 2);
  sim.act("c", (e, now) => e.campaign(now));
  sim.run(20);
  assert.equal(sim.role("c"), "leader");
  sim.assertNoViolations();
});

Deno.test("etcd PreVoteWithCheckQuorum: two pre-candidates grant each other once the leader is gone", () => {
  const sim = new Sim(["n1", "n2", "n3"], { seed: 9, strict: false, latency: [1, 1] });
  sim.run(T);
  sim.act("n1", (e, now) => e.campaign(now));
  sim.run(20);
  assert.equal(sim.role("n1"), "leader");
  sim.isolate("n1");
  // n3 asks first: n2 still holds n1's lease and ignores it
  sim.act("n3", (e, now) => e.campaign(now));
  sim.run(5);
  assert.equal(sim.role("n3"), "preCandidate");
  assert.equal(sim.role("n2"), "follower");
  // n2 asks next: n3 forgot the leader when it became a pre-candidate, so it grants
  sim.act("n2", (e, now) => e.campaign(now));
  sim.run(10);
  assert.equal(sim.role("n2"), "leader");
  assert.equal(sim.role("n3"), "follower");
  sim.assertNoViolations();
});

Deno.test("prevote_checkquorum: followers in lease ignore prevotes; after the lease they grant", () => {
  const sim = new Sim(["n1", "n2", "n3"], { seed: 4, strict: false, latency: [1, 1] });
  sim.run(T);
  sim.act("n1", (e, now) => e.campaign(now));
  sim.run(20);
  const term = sim.node("n1").term;
  sim.act("n2", (e, now) => e.campaign(now));
  sim.run(5);
  assert.equal(sim.role("n1"), "leader");
  assert.equal(sim.node("n2").term, term, "prevote never raises the term");
  sim.run(10); // n2 hears n1 again and follows it
  assert.equal(sim.node("n2").leader, "n1");
});

// Asymmetric partitions: the cluster must end up with a stable leader that a
// majority follows, never stay leaderless, and never overlap two leaders.
const asymmetric: {
  name: string;
  size: number;
  cut: (leader: string, others: string[]) => [string, string][];
  keeps: boolean;
}[] = [
  {
    name: "leader cannot send",
    size: 3,
    cut: (l, o) => o.map((x) => [l, x]),
    keeps: false,
  },
  {
    name: "leader cannot receive",
    size: 3,
    cut: (l, o) => o.map((x) => [x, l]),
    keeps: false,
  },
  { name: "one follower cannot hear the leader", size: 3, cut: (l, o) => [[l, o[0]]], keeps: true },
  {
    name: "one follower cannot reach the leader",
    size: 3,
    cut: (l, o) => [[o[0], l]],
    keeps: true,
  },
  {
    name: "crossed one-way cuts (leader→b, c→leader)",
    size: 3,
    cut: (l, o) => [[l, o[0]], [o[1], l]],
    keeps: false,
  },
  {
    name: "5 nodes: leader hears only one follower",
    size: 5,
    cut: (l, o) => o.slice(1).map((x) => [x, l]),
    keeps: false,
  },
  {
    name: "5 nodes: two followers cut from the leader both ways",
    size: 5,
    cut: (l, o) => o.slice(0, 2).flatMap((x) => [[l, x], [x, l]] as [string, string][]),
    keeps: true,
  },
];

for (const c of asymmetric) {
  Deno.test(`PreVote+CheckQuorum, asymmetric partition (${c.name}): never leaderless`, () => {
    for (let seed = 1; seed <= 8; seed++) {
      const sim = new Sim(names(c.size), { seed });
      const leader = sim.runUntilLeader(10 * T).id;
      sim.run(2 * T);
      const term = sim.node(leader).term;
      const others = sim.ids.filter((id) => id !== leader);
      for (const [from, to] of c.cut(leader, others)) sim.block(from, to);
      sim.run(15 * T);
      const now = sim.assertStableLeader();
      if (c.keeps) {
        assert.equal(now, leader, "the leader still has a quorum and must stay");
        assert.equal(sim.node(now).term, term, "nobody may raise the term");
      } else {
        assert.notEqual(now, leader);
      }
      sim.heal();
      sim.run(10 * T);
      sim.assertStableLeader();
      sim.assertNoViolations();
    }
  });
}

Deno.test("graceful transfer: a new leader in well under one election timeout", () => {
  for (let seed = 1; seed <= 10; seed++) {
    const sim = new Sim(names(seed % 2 ? 3 : 5), { seed });
    const old = sim.runUntilLeader(10 * T).id;
    sim.run(2 * T);
    const at = sim.now;
    sim.act(old, (e, now) => e.transferLeadership(now));
    assert.equal(sim.role(old), "follower");
    sim.crash(old); // the process exits right after handing over
    const next = sim.runUntilLeader(T);
    assert.ok(next.at - at <= 20, `transfer took ${next.at - at}ms`);
    sim.assertNoViolations();
  }
});

Deno.test("paused leader wakes up and steps down before acting", () => {
  const sim = new Sim(names(3), { seed: 21 });
  const old = sim.runUntilLeader(10 * T).id;
  sim.run(2 * T);
  sim.pause(old);
  const next = sim.runUntilLeader(10 * T, [old]);
  sim.run(T);
  sim.resume(old);
  assert.notEqual(sim.role(old), "leader");
  sim.run(5 * T);
  assert.equal(sim.assertStableLeader(), next.id);
  sim.assertNoViolations();
});

// Property: across random faults, never two leaders in a term, never two
// running leaders at once, never two votes in a term by one node (restarts
// included), and after healing the cluster settles on one leader.
Deno.test("randomised runs with partitions, crashes and pauses keep election safety", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const size = seed % 2 ? 3 : 5;
    const ids = names(size);
    const sim = new Sim(ids, { seed, latency: [1, 8] });
    const r = prng(seed * 31337);
    const pick = () => ids[Math.floor(r() * ids.length)];
    for (let step = 0; step < 40; step++) {
      const roll = r();
      const target = r() < 0.5 && sim.leaders().length ? sim.leaders()[0] : pick();
      const n = sim.nodes.get(target)!;
      if (roll < 0.25) sim.block(pick(), pick());
      else if (roll < 0.35) sim.isolate(target);
      else if (roll < 0.5) sim.heal();
      else if (roll < 0.6 && n.alive) sim.crash(target);
      else if (roll < 0.7 && !n.alive) sim.restart(target);
      else if (roll < 0.78 && n.alive && !n.paused) sim.pause(target);
      else if (roll < 0.86 && n.paused) sim.resume(target);
      else if (roll < 0.9 && n.alive && !n.paused) {
        sim.act(target, (e, now) => e.transferLeadership(now));
      }
      sim.run(Math.floor(r() * 3 * T));
    }
    sim.heal();
    for (const id of ids) {
      const n = sim.nodes.get(id)!;
      if (!n.alive) sim.restart(id);
      else if (n.paused) sim.resume(id);
    }
    sim.run(10 * T);
    assert.deepEqual(sim.violations, [], `seed ${seed}`);
    sim.assertStableLeader();
  }
});

Deno.test("stepDown adopts a higher term seen in the leader record", () => {
  const e = new Election(
    { id: "solo", peers: [], electionTimeoutMs: 100, heartbeatIntervalMs: 10, random: () => 0 },
    { term: 0, votedFor: null },
    0,
  );
  e.tick(0);
  assert.equal(e.role, "leader");
  const out = e.stepDown(5, "leader record taken", 41);
  assert.equal(e.role, "follower");
  assert.equal(e.term, 41);
  assert.deepEqual(out[0], { type: "persist", state: { term: 41, votedFor: null } });
  assert.ok(out.some((x) => x.type === "lostManager"));
  // the next election runs above the stored term
  e.tick(e.nextDeadline());
  assert.equal(e.role, "leader");
  assert.equal(e.term, 42);
});
