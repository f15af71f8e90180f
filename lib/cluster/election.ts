/**
 * A pure Raft-style leader election state machine: terms, randomised election
 * timeouts, RequestVote, heartbeats, PreVote, CheckQuorum with leader leases,
 * and leadership transfer. There is no replicated log: the only thing elected
 * is "who is the manager", and the manager's authority in the KV store is
 * enforced separately by fencing (see `fencing.ts`).
 *
 * The machine does no I/O. Time comes in as millisecond numbers from a
 * monotonic clock and randomness through an injected `random()`. Every call
 * returns a list of effects that the caller must apply **in order**; a
 * `persist` effect must be durable (fsync) before any effect after it is
 * applied, which is how "term and vote are on disk before a vote is answered"
 * holds.
 *
 * How the PreVote + CheckQuorum combination avoids a leaderless cluster
 * (the trap described by etcd-io/raft's `prevote_checkquorum` scenarios):
 * - A voter refuses (pre)votes only while it holds a *lease* that it got from
 *   hearing a leader (or granting a real vote) within the last election
 *   timeout. The lease is time-bounded, so refusal can never be permanent.
 * - Becoming a pre-candidate or candidate drops the lease and the known
 *   leader, so two nodes that both lost the leader grant each other prevotes
 *   instead of each refusing the other because of a stale leader.
 * - A node that receives a heartbeat from a leader with a lower term answers
 *   with its own term, so a node stuck at a higher term makes that leader step
 *   down and the cluster can elect again (etcd's "free stuck candidate").
 * - Leadership-transfer campaigns carry `transfer: true` and bypass leases,
 *   because the old leader stepped down before sending `timeoutNow`.
 *
 * How CheckQuorum steps down *before* anyone else can be elected: the leader
 * counts a peer as "active" from the **send time** of the newest heartbeat
 * (or vote request) that the peer acknowledged, not from when the ack came
 * back. The peer started its own lease no earlier than that send time, so
 * whenever the leader still sees a quorum of active peers, a quorum of
 * voters still holds a lease and will refuse any other candidate. A small
 * `clockDriftRatio` shortens the leader's view further to absorb clock rate
 * differences between machines.
 *
 * @module
 */

/** Role of a node. "leader" is what the rest of Portico calls the manager. */
export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** The state that must survive restarts (Raft's currentTerm and votedFor). */
export interface HardState {
  term: number;
  votedFor: string | null;
}

/** Fields every peer message carries. */
interface MessageBase {
  /** Sender's term (for a prevote: the term it would campaign in). */
  term: number;
  from: string;
  to: string;
}

/** PreVote request: "would you vote for me in `term`?" Changes no state on the receiver. */
export interface PreVoteMessage extends MessageBase {
  type: "preVote";
  /** Set on leadership-transfer campaigns; lets the request through voters' leases. */
  transfer?: boolean;
}
/** Answer to a prevote. Granted answers carry the prevote's term, refusals the voter's term. */
export interface PreVoteResponseMessage extends MessageBase {
  type: "preVoteResponse";
  granted: boolean;
}
/** RequestVote. */
export interface VoteMessage extends MessageBase {
  type: "vote";
  transfer?: boolean;
}
/** Answer to RequestVote. */
export interface VoteResponseMessage extends MessageBase {
  type: "voteResponse";
  granted: boolean;
}
/** AppendEntries without a log: the leader asserting itself. */
export interface HeartbeatMessage extends MessageBase {
  type: "heartbeat";
  /** Leader's clock when it sent this; echoed back so the leader can time its lease. */
  sentAt: number;
  /** The leader's fencing record, opaque to the election (JSON of `{nodeId, term, since}`). */
  leaderRecord: string;
}
/** Answer to a heartbeat. `success: false` means "your term is stale", with the receiver's term. */
export interface HeartbeatResponseMessage extends MessageBase {
  type: "heartbeatResponse";
  sentAt: number;
  success: boolean;
}
/** Sent by a leader handing over: the receiver campaigns at once, skipping prevote. */
export interface TimeoutNowMessage extends MessageBase {
  type: "timeoutNow";
}

/** Any message exchanged between peers. */
export type PeerMessage =
  | PreVoteMessage
  | PreVoteResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | TimeoutNowMessage;

/** Every message type, in a stable order (useful for validation and metrics). */
export const MESSAGE_TYPES = [
  "preVote",
  "preVoteResponse",
  "vote",
  "voteResponse",
  "heartbeat",
  "heartbeatResponse",
  "timeoutNow",
] as const satisfies readonly PeerMessage["type"][];

/** Something the caller must do. Apply in order; `persist` must be durable before the rest. */
export type Effect =
  | { type: "persist"; state: HardState }
  | { type: "send"; message: PeerMessage }
  | { type: "roleChanged"; from: Role; to: Role; term: number; reason: string }
  | { type: "becameManager"; term: number; reason: string }
  | { type: "lostManager"; term: number; reason: string }
  /** A message was ignored; `reason` says why (for logs and the rejected-messages metric). */
  | { type: "ignored"; message: PeerMessage; reason: string };

/** Options for {@linkcode Election}. */
export interface ElectionConfig {
  /** This node's id as peers know it. */
  id: string;
  /** Ids of the other voters. May be empty: a lone node elects itself at once. */
  peers: readonly string[];
  /** Base election timeout `t`; the actual timeout is drawn from [t, 2t). */
  electionTimeoutMs: number;
  /** Interval between leader heartbeats. Must be at most half the election timeout. */
  heartbeatIntervalMs: number;
  /** Uniform random number in [0, 1). Inject a seeded one in tests. */
  random: () => number;
  /** Default true. */
  preVote?: boolean;
  /** Default true. Also enables voters' leases. */
  checkQuorum?: boolean;
  /** Fraction by which the leader shortens its lease to absorb clock rate differences. Default 0.02. */
  clockDriftRatio?: number;
}

/** Read-only view for `/api/cluster`, logs and tests. */
export interface ElectionStatus {
  id: string;
  role: Role;
  term: number;
  votedFor: string | null;
  /** Id of the leader this node currently follows (itself when leader), or null. */
  leader: string | null;
  /** The fencing record the current leader last announced, or null. */
  leaderRecord: string | null;
  peers: { id: string; lastContact: number | null }[];
}

/** Thrown for an unusable {@linkcode ElectionConfig}, naming the field. */
export class ElectionConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`cluster election: ${field}: ${message}`);
    this.name = "ElectionConfigError";
  }
}

function validateConfig(config: ElectionConfig): void {
  const positive = (field: keyof ElectionConfig, value: number) => {
    if (!Number.isFinite(value) || value <= 0) {
      throw new ElectionConfigError(field, `must be a positive number of ms, got ${value}`);
    }
  };
  if (typeof config.id !== "string" || config.id === "") {
    throw new ElectionConfigError("id", "must be a non-empty string");
  }
  positive("electionTimeoutMs", config.electionTimeoutMs);
  positive("heartbeatIntervalMs", config.heartbeatIntervalMs);
  if (config.heartbeatIntervalMs * 2 > config.electionTimeoutMs) {
    throw new ElectionConfigError(
      "heartbeatIntervalMs",
      `must be at most half of electionTimeoutMs (${config.electionTimeoutMs}), got ${config.heartbeatIntervalMs}`,
    );
  }
  const seen = new Set<string>();
  for (const peer of config.peers) {
    if (typeof peer !== "string" || peer === "") {
      throw new ElectionConfigError("peers", "every peer id must be a non-empty string");
    }
    if (peer === config.id) {
      throw new ElectionConfigError("peers", `must not contain this node's own id "${peer}"`);
    }
    if (seen.has(peer)) throw new ElectionConfigError("peers", `duplicate peer id "${peer}"`);
    seen.add(peer);
  }
  const drift = config.clockDriftRatio ?? 0.02;
  if (!(drift >= 0 && drift < 0.5)) {
    throw new ElectionConfigError("clockDriftRatio", `must be in [0, 0.5), got ${drift}`);
  }
}

interface PeerProgress {
  /** Leader's send time of the newest heartbeat or vote request this peer acknowledged. */
  ackedSentAt: number;
  /** Local time we last received any message from this peer (for status only). */
  lastContact: number | null;
}

/**
 * The election state machine for one node.
 *
 * @example
 * ```ts
 * const election = new Election(
 *   { id: "a", peers: ["b", "c"], electionTimeoutMs: 1000, heartbeatIntervalMs: 100, random: Math.random },
 *   { term: 0, votedFor: null },
 *   performance.now(),
 * );
 * for (const effect of election.tick(performance.now())) {
 *   // apply: persist (await fsync), send, log role changes…
 * }
 * const wakeAt = election.nextDeadline(); // call tick() again then
 * ```
 */
export class Election {
  readonly id: string;
  readonly peers: readonly string[];
  readonly #timeout: number;
  readonly #heartbeat: number;
  readonly #random: () => number;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;
  readonly #leaderLeaseMs: number;

  #role: Role = "follower";
  #term: number;
  #votedFor: string | null;
  #leader: string | null = null;
  #leaderRecord: string | null = null;
  /** Until this time, refuse (pre)votes that are not transfers. */
  #leaseUntil: number;
  #electionDeadline: number;
  #nextHeartbeatAt = 0;
  #campaignStartedAt = 0;
  #votes = new Map<string, boolean>();
  #progress = new Map<string, PeerProgress>();
  #localRecord = "";

  // Per-call output buffer; persistence is hoisted to the front in #flush.
  #out: Effect[] = [];
  #dirty = false;

  /**
   * @param config election settings (validated here; errors name the field)
   * @param state the persisted {term, votedFor}, `{term: 0, votedFor: null}` on first start
   * @param now current monotonic time in ms
   */
  constructor(config: ElectionConfig, state: HardState, now: number) {
    validateConfig(config);
    this.id = config.id;
    this.peers = [...config.peers];
    this.#timeout = config.electionTimeoutMs;
    this.#heartbeat = config.heartbeatIntervalMs;
    this.#random = config.random;
    this.#preVote = config.preVote ?? true;
    this.#checkQuorum = config.checkQuorum ?? true;
    this.#leaderLeaseMs = config.electionTimeoutMs * (1 - (config.clockDriftRatio ?? 0.02));
    this.#term = state.term;
    this.#votedFor = state.votedFor;
    for (const peer of this.peers) {
      this.#progress.set(peer, { ackedSentAt: -Infinity, lastContact: null });
    }
    // A restarted node may have been part of the old leader's quorum a moment
    // ago; holding a lease for one timeout keeps it from helping elect a second
    // leader while the first still believes in its own lease.
    this.#leaseUntil = this.#checkQuorum && this.peers.length > 0 ? now + this.#timeout : -Infinity;
    this.#electionDeadline = this.peers.length === 0 ? now : now + this.#randomTimeout();
  }

  /** Current role. */
  get role(): Role {
    return this.#role;
  }
  /** Current term. */
  get term(): number {
    return this.#term;
  }
  /** Leader this node follows (itself when leader), or null. */
  get leader(): string | null {
    return this.#leader;
  }
  /** Votes needed to win: a strict majority of all voters including this node. */
  get quorum(): number {
    return Math.floor((this.peers.length + 1) / 2) + 1;
  }

  /** A snapshot for `/api/cluster` and tests. */
  status(): ElectionStatus {
    return {
      id: this.id,
      role: this.#role,
      term: this.#term,
      votedFor: this.#votedFor,
      leader: this.#leader,
      leaderRecord: this.#role === "leader" ? this.#localRecord : this.#leaderRecord,
      peers: this.peers.map((id) => ({ id, lastContact: this.#progress.get(id)!.lastContact })),
    };
  }

  /** The persisted part of the state. */
  hardState(): HardState {
    return { term: this.#term, votedFor: this.#votedFor };
  }

  /**
   * Sets the fencing record a leader announces in its heartbeats (the shell
   * calls this after claiming the leader key).
   */
  setLeaderRecord(record: string): void {
    this.#localRecord = record;
  }

  /** The time at which `tick` next has something to do. Schedule one timer for it. */
  nextDeadline(): number {
    if (this.#role !== "leader") return this.#electionDeadline;
    return Math.min(this.#nextHeartbeatAt, this.#leaseExpiry());
  }

  /** Advances time: elections, heartbeats and CheckQuorum. */
  tick(now: number): Effect[] {
    this.#advance(now);
    return this.#flush();
  }

  /** Handles one message from a peer. */
  receive(message: PeerMessage, now: number): Effect[] {
    this.#advance(now);
    this.#step(message, now);
    return this.#flush();
  }

  /**
   * Starts an election now, as if the election timeout had fired (with
   * prevote when enabled). A leader returns no effects.
   */
  campaign(now: number, reason = "campaign requested"): Effect[] {
    this.#advance(now);
    if (this.#role !== "leader") this.#campaign(now, false, reason);
    return this.#flush();
  }

  /**
   * Steps down (when leader) and adopts `observedTerm` if it is higher than
   * ours. The shell calls this when the KV store shows a leader record with a
   * term we have not reached (e.g. after `dataDir` was wiped), so the next
   * election runs at a term that can actually claim the record.
   */
  stepDown(now: number, reason: string, observedTerm = this.#term): Effect[] {
    this.#advance(now);
    const term = Math.max(observedTerm, this.#term);
    if (this.#role === "leader" || term > this.#term) {
      const leader = term > this.#term || this.#leader === this.id ? null : this.#leader;
      this.#becomeFollower(term, leader, now, reason);
    }
    return this.#flush();
  }

  /**
   * Graceful handover (SIGTERM): a leader steps down at once and tells the
   * peer it heard from most recently to campaign immediately. A non-leader
   * returns no effects.
   */
  transferLeadership(now: number, reason = "shutting down"): Effect[] {
    this.#advance(now);
    if (this.#role === "leader" && this.peers.length > 0) {
      let target = this.peers[0];
      for (const peer of this.peers) {
        if (this.#progress.get(peer)!.ackedSentAt > this.#progress.get(target)!.ackedSentAt) {
          target = peer;
        }
      }
      this.#becomeFollower(this.#term, null, now, `leadership transfer to ${target}: ${reason}`);
      this.#send({ type: "timeoutNow", term: this.#term, from: this.id, to: target });
    }
    return this.#flush();
  }

  // ---------------------------------------------------------------- internals

  #randomTimeout(): number {
    const r = this.#random();
    // Guard against a bad injected PRNG producing values outside [0, 1).
    const clamped = Number.isFinite(r) ? Math.min(Math.max(r, 0), 0.999999) : 0;
    return this.#timeout + Math.floor(clamped * this.#timeout);
  }

  #inLease(now: number): boolean {
    if (!this.#checkQuorum) return false;
    if (this.#role === "leader") return true; // CheckQuorum keeps a leader's lease honest
    return now < this.#leaseUntil;
  }

  /** Latest time at which a quorum of voters (self included) is still active. */
  #leaseExpiry(): number {
    if (!this.#checkQuorum) return Infinity;
    const expiries = this.peers.map((p) => this.#progress.get(p)!.ackedSentAt + this.#leaderLeaseMs)
      .sort((a, b) => b - a);
    const needed = this.quorum - 1; // self counts
    if (needed === 0) return Infinity;
    return expiries[needed - 1];
  }

  #advance(now: number): void {
    if (this.#role === "leader") {
      if (now >= this.#leaseExpiry()) {
        this.#becomeFollower(
          this.#term,
          null,
          now,
          `checkQuorum: no contact with a majority within ${this.#timeout}ms`,
        );
        return;
      }
      if (now >= this.#nextHeartbeatAt) this.#broadcastHeartbeat(now);
      return;
    }
    if (now >= this.#electionDeadline) {
      this.#campaign(now, false, "election timeout");
    }
  }

  #step(m: PeerMessage, now: number): void {
    if (m.to !== this.id) return this.#ignore(m, `addressed to ${m.to}, not ${this.id}`);
    const progress = this.#progress.get(m.from);
    if (!progress) return this.#ignore(m, `sender ${m.from} is not a configured peer`);
    progress.lastContact = now;

    if (m.term > this.#term) {
      if ((m.type === "preVote" || m.type === "vote") && !m.transfer && this.#inLease(now)) {
        return this.#ignore(m, `lease from ${this.#leader ?? "a recent leader"} has not expired`);
      }
      if (m.type === "preVote") {
        // never change term because of a prevote
      } else if (m.type === "preVoteResponse" && m.granted) {
        // a granted prevote carries the future term we asked about
      } else {
        const leader = m.type === "heartbeat" ? m.from : null;
        this.#becomeFollower(
          m.term,
          leader,
          now,
          `${m.type} from ${m.from} with higher term ${m.term}`,
        );
      }
    } else if (m.term < this.#term) {
      if ((this.#checkQuorum || this.#preVote) && m.type === "heartbeat") {
        // Tell a stale leader about our term, or a node stuck at a higher term
        // (e.g. after a partition without prevote) is never heard again.
        this.#send({
          type: "heartbeatResponse",
          term: this.#term,
          from: this.id,
          to: m.from,
          sentAt: m.sentAt,
          success: false,
        });
      } else if (m.type === "preVote") {
        this.#send({
          type: "preVoteResponse",
          term: this.#term,
          from: this.id,
          to: m.from,
          granted: false,
        });
      }
      return this.#ignore(m, `stale term ${m.term} < ${this.#term}`);
    }

    switch (m.type) {
      case "preVote":
      case "vote":
        return this.#handleVoteRequest(m, now);
      case "preVoteResponse":
        return this.#handlePreVoteResponse(m, now);
      case "voteResponse":
        return this.#handleVoteResponse(m, now);
      case "heartbeat":
        return this.#handleHeartbeat(m, now);
      case "heartbeatResponse":
        if (this.#role !== "leader") return this.#ignore(m, "not the leader");
        if (m.success) progress.ackedSentAt = Math.max(progress.ackedSentAt, m.sentAt);
        return;
      case "timeoutNow":
        if (m.from !== this.#leader && this.#leader !== null) {
          return this.#ignore(m, `timeoutNow from ${m.from}, but the leader is ${this.#leader}`);
        }
        if (this.#role === "leader") return this.#ignore(m, "already the leader");
        return this.#campaign(now, true, `leadership transferred by ${m.from}`);
    }
  }

  #handleVoteRequest(m: PreVoteMessage | VoteMessage, now: number): void {
    const canVote = this.#votedFor === m.from ||
      (this.#votedFor === null && this.#leader === null) ||
      (m.type === "preVote" && m.term > this.#term);
    const responseType = m.type === "preVote" ? "preVoteResponse" : "voteResponse";
    if (!canVote) {
      this.#send({
        type: responseType,
        term: this.#term,
        from: this.id,
        to: m.from,
        granted: false,
      });
      return;
    }
    if (m.type === "vote") {
      this.#votedFor = m.from;
      this.#dirty = true;
      this.#electionDeadline = now + this.#randomTimeout();
      // The candidate counts this grant as an ack of its vote request; holding
      // a lease makes that count true (see module doc on CheckQuorum).
      if (this.#checkQuorum) this.#leaseUntil = now + this.#timeout;
    }
    this.#send({ type: responseType, term: m.term, from: this.id, to: m.from, granted: true });
  }

  #handlePreVoteResponse(m: PreVoteResponseMessage, now: number): void {
    if (this.#role !== "preCandidate") {
      return this.#ignore(m, `not a pre-candidate (${this.#role})`);
    }
    if (m.granted && m.term !== this.#term + 1) {
      return this.#ignore(m, "prevote answer for another round");
    }
    this.#votes.set(m.from, m.granted);
    const { granted, rejected } = this.#tally();
    if (granted >= this.quorum) this.#becomeCandidate(now, false, "won prevote");
    else if (rejected >= this.quorum) {
      this.#becomeFollower(this.#term, null, now, "prevote rejected by a majority");
    }
  }

  #handleVoteResponse(m: VoteResponseMessage, now: number): void {
    if (this.#role !== "candidate") return this.#ignore(m, `not a candidate (${this.#role})`);
    this.#votes.set(m.from, m.granted);
    if (m.granted) this.#progress.get(m.from)!.ackedSentAt = this.#campaignStartedAt;
    const { granted, rejected } = this.#tally();
    if (granted >= this.quorum) this.#becomeLeader(now, `won election with ${granted} votes`);
    else if (rejected >= this.quorum) {
      this.#becomeFollower(this.#term, null, now, "vote rejected by a majority");
    }
  }

  #handleHeartbeat(m: HeartbeatMessage, now: number): void {
    if (this.#role === "leader") {
      // Two leaders in one term would break Raft's core invariant; refusing
      // keeps the damage contained and the ignore effect makes it visible.
      return this.#ignore(m, `second leader ${m.from} in term ${m.term}`);
    }
    if (this.#role !== "follower" || this.#leader !== m.from) {
      this.#becomeFollower(this.#term, m.from, now, `heartbeat from leader ${m.from}`);
    }
    this.#leaderRecord = m.leaderRecord;
    this.#electionDeadline = now + this.#randomTimeout();
    if (this.#checkQuorum) this.#leaseUntil = now + this.#timeout;
    this.#send({
      type: "heartbeatResponse",
      term: this.#term,
      from: this.id,
      to: m.from,
      sentAt: m.sentAt,
      success: true,
    });
  }

  #tally(): { granted: number; rejected: number } {
    let granted = 0;
    let rejected = 0;
    for (const v of this.#votes.values()) v ? granted++ : rejected++;
    return { granted, rejected };
  }

  #campaign(now: number, transfer: boolean, reason: string): void {
    if (this.#preVote && !transfer) this.#becomePreCandidate(now, reason);
    else this.#becomeCandidate(now, transfer, reason);
  }

  #setRole(to: Role, reason: string): void {
    const from = this.#role;
    if (from === to) return;
    this.#role = to;
    this.#out.push({ type: "roleChanged", from, to, term: this.#term, reason });
    if (from === "leader") this.#out.push({ type: "lostManager", term: this.#term, reason });
    if (to === "leader") this.#out.push({ type: "becameManager", term: this.#term, reason });
  }

  #becomeFollower(term: number, leader: string | null, now: number, reason: string): void {
    if (term !== this.#term) {
      this.#term = term;
      this.#votedFor = null;
      this.#dirty = true;
    }
    const wasLeader = this.#role === "leader";
    this.#leader = leader;
    if (leader === null) this.#leaderRecord = null;
    this.#votes.clear();
    this.#electionDeadline = now + this.#randomTimeout();
    if (wasLeader) this.#leaseUntil = -Infinity;
    this.#setRole("follower", reason);
  }

  #becomePreCandidate(now: number, reason: string): void {
    // Forget the leader and its lease: otherwise two nodes that both lost the
    // leader would keep refusing each other's prevotes (etcd-io/raft's fix for
    // the PreVote + CheckQuorum leaderless cluster).
    this.#leader = null;
    this.#leaderRecord = null;
    this.#leaseUntil = -Infinity;
    this.#votes = new Map([[this.id, true]]);
    this.#electionDeadline = now + this.#randomTimeout();
    this.#setRole("preCandidate", reason);
    if (this.#votes.size >= this.quorum) return this.#becomeCandidate(now, false, reason);
    for (const peer of this.peers) {
      this.#send({ type: "preVote", term: this.#term + 1, from: this.id, to: peer });
    }
  }

  #becomeCandidate(now: number, transfer: boolean, reason: string): void {
    this.#term += 1;
    this.#votedFor = this.id;
    this.#dirty = true;
    this.#leader = null;
    this.#leaderRecord = null;
    this.#leaseUntil = -Infinity;
    this.#votes = new Map([[this.id, true]]);
    this.#campaignStartedAt = now;
    this.#electionDeadline = now + this.#randomTimeout();
    this.#setRole("candidate", reason);
    if (this.#votes.size >= this.quorum) return this.#becomeLeader(now, "sole voter");
    for (const peer of this.peers) {
      const message: VoteMessage = { type: "vote", term: this.#term, from: this.id, to: peer };
      if (transfer) message.transfer = true;
      this.#send(message);
    }
  }

  #becomeLeader(now: number, reason: string): void {
    this.#leader = this.id;
    this.#leaderRecord = null;
    for (const peer of this.peers) {
      if (this.#votes.get(peer) !== true) this.#progress.get(peer)!.ackedSentAt = -Infinity;
    }
    this.#setRole("leader", reason);
    this.#broadcastHeartbeat(now);
  }

  #broadcastHeartbeat(now: number): void {
    for (const peer of this.peers) {
      this.#send({
        type: "heartbeat",
        term: this.#term,
        from: this.id,
        to: peer,
        sentAt: now,
        leaderRecord: this.#localRecord,
      });
    }
    this.#nextHeartbeatAt = now + this.#heartbeat;
  }

  #send(message: PeerMessage): void {
    this.#out.push({ type: "send", message });
  }

  #ignore(message: PeerMessage, reason: string): void {
    this.#out.push({ type: "ignored", message, reason });
  }

  #flush(): Effect[] {
    const out = this.#out;
    this.#out = [];
    if (this.#dirty) {
      this.#dirty = false;
      out.unshift({ type: "persist", state: this.hardState() });
    }
    return out;
  }
}
