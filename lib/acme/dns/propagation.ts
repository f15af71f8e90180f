/**
 * The DNS-01 propagation check: the CA is told to validate only once the
 * TXT record is visible where it will look, as lego's pre-check does (and
 * with Traefik's options):
 *
 * 1. `requireAllRNS`: every configured recursive resolver (`resolvers`, or
 *    the system's) must answer the value.
 * 2. Unless `disableANSChecks`: find the zone (an SOA walk up from the
 *    record name), its NS names and their addresses (through the
 *    resolvers), and query each authoritative server on port 53 directly:
 *    every one must answer the value.
 * 3. Repeat every polling interval until the propagation timeout; then
 *    fail, naming each server queried and what it last answered.
 *
 * `delayBeforeChecks` waits first; `disableChecks` only waits. Queries go
 * through `Deno.resolveDns` with an explicit name server; the query
 * function is passed in, so tests can also run the loop on a fake.
 *
 * @module
 */

import type { NameServer } from "../../config/name_server.ts";
import { DnsPropagationError } from "./types.ts";


/** Record types the check asks for. */
export type QueryType = "A" | "AAAA" | "NS" | "SOA" | "TXT" | "CNAME";

/**
 * Asks `server` (undefined: the system resolver) for `name`/`type`;
 * resolves to the answers, or rejects (Deno.errors.NotFound when there are
 * none, a TimeoutError after `timeoutMs`).
 */
export type DnsQuery = (
  name: string,
  type: QueryType,
  server: NameServer | undefined,
  timeoutMs: number,
) => Promise<unknown[]>;

/** {@linkcode DnsQuery} over `Deno.resolveDns`. */
export const resolveDnsQuery: DnsQuery = async (name, type, server, timeoutMs) => {
  const options: Deno.ResolveDnsOptions = { signal: AbortSignal.timeout(timeoutMs) };
  if (server) options.nameServer = { ipAddr: server.ipAddr, port: server.port };
  return await Deno.resolveDns(name, type as "A", options) as unknown[];
};

/** `ip:port` as written in messages. */
export function serverLabel(s: NameServer | undefined): string {
  if (!s) return "the system resolver";
  return s.ipAddr.includes(":") ? `[${s.ipAddr}]:${s.port}` : `${s.ipAddr}:${s.port}`;
}

/** The absolute name with a trailing dot, lower case. */
export function absoluteName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith(".") ? n : `${n}.`;
}

/** What one query gave: the answers, or a short description of the failure. */
type Answer = { records: unknown[] } | { failure: string };

async function ask(
  query: DnsQuery,
  name: string,
  type: QueryType,
  server: NameServer | undefined,
  timeoutMs: number,
): Promise<Answer> {
  try {
    return { records: await query(name, type, server, timeoutMs) };
  } catch (err) {
    const e = err as Error;
    if (e instanceof Deno.errors.NotFound) return { failure: `no ${type} record` };
    if (e?.name === "TimeoutError" || e?.name === "AbortError") {
      return { failure: `no answer within ${timeoutMs} ms` };
    }
    return { failure: e?.message ?? String(err) };
  }
}

/**
 * The zone that holds `fqdn`: the closest enclosing name with an SOA
 * record, asked of `servers` in turn (the first that answers decides).
 * Throws naming the servers when none gives an SOA.
 */
export async function findZone(
  fqdn: string,
  servers: (NameServer | undefined)[],
  query: DnsQuery = resolveDnsQuery,
  timeoutMs = 5000,
): Promise<string> {
  const labels = absoluteName(fqdn).slice(0, -1).split(".");
  const failures: string[] = [];
  for (const server of servers.length ? servers : [undefined]) {
    let answered = false;
    for (let i = 0; i < labels.length; i++) {
      const candidate = `${labels.slice(i).join(".")}.`;
      const a = await ask(query, candidate, "SOA", server, timeoutMs);
      if ("records" in a && a.records.length) return candidate;
      if ("failure" in a && a.failure.startsWith("no answer")) {
        failures.push(`${serverLabel(server)}: ${a.failure}`);
        break;
      }
      answered = true;
    }
    if (answered) failures.push(`${serverLabel(server)}: no SOA record for any parent name`);
  }
  throw new DnsPropagationError(
    `cannot find the zone of ${absoluteName(fqdn)} (${failures.join("; ")})`,
  );
}

/**
 * Follows CNAMEs from `fqdn` (at most 8), as lego does when
 * `_acme-challenge.example.com` is delegated to another zone by a CNAME:
 * the record is then published, and checked, at the target.
 */
export async function followCnames(
  fqdn: string,
  servers: (NameServer | undefined)[],
  query: DnsQuery = resolveDnsQuery,
  timeoutMs = 5000,
): Promise<string> {
  let name = absoluteName(fqdn);
  const server = servers[0];
  for (let hop = 0; hop < 8; hop++) {
    const a = await ask(query, name, "CNAME", server, timeoutMs);
    if (!("records" in a) || a.records.length === 0) return name;
    name = absoluteName(String(a.records[0]));
  }
  return name;
}

/** The propagation options of one resolver, with the provider's timing. */
export interface PropagationOptions {
  /** `dnsChallenge.resolvers`; empty: the system resolver. */
  resolvers: NameServer[];
  requireAllRNS: boolean;
  disableANSChecks: boolean;
  disableChecks: boolean;
  delayBeforeChecksMs: number;
  /** The provider's propagation timeout. */
  timeoutMs: number;
  /** The provider's polling interval. */
  intervalMs: number;
  /** Longest wait for one DNS answer; default 5 s (bounded by what is left of the timeout). */
  queryTimeoutMs?: number;
}

/** A record to wait for. */
export interface ExpectedRecord {
  /** The identifier it validates, for messages. */
  domain: string;
  fqdn: string;
  value: string;
}

/** Time and sleeping, passed in for tests. */
export interface PropagationClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const REAL_CLOCK: PropagationClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** One server's last answer for one record. */
interface Observation {
  server: string;
  role: string;
  answer: string;
  ok: boolean;
}

/** How a wait ended. */
export interface PropagationReport {
  /** Milliseconds from the start (delay included) until every record was visible. */
  waitedMs: number;
  /** Check rounds run (0 with `disableChecks`). */
  rounds: number;
  /** Servers that confirmed, as `ip:port (role)`. */
  confirmedBy: string[];
}

function describeTxt(records: unknown[]): string {
  const values = records.map((r) => Array.isArray(r) ? r.join("") : String(r));
  return JSON.stringify(values);
}

/**
 * Waits until every record is visible as configured; throws
 * {@linkcode DnsPropagationError} at the timeout, naming, per record still
 * missing, each server queried and what it answered.
 */
export async function awaitPropagation(
  records: ExpectedRecord[],
  options: PropagationOptions,
  query: DnsQuery = resolveDnsQuery,
  clock: PropagationClock = REAL_CLOCK,
): Promise<PropagationReport> {
  const start = clock.now();
  if (options.delayBeforeChecksMs > 0) await clock.sleep(options.delayBeforeChecksMs);
  if (options.disableChecks || (options.disableANSChecks && !options.requireAllRNS)) {
    // lego: with neither check required, the first recursive answer is enough,
    // and Traefik's disableChecks skips even that; both mean "trust the delay".
    return { waitedMs: clock.now() - start, rounds: 0, confirmedBy: [] };
  }
  const deadline = clock.now() + options.timeoutMs;
  const pending = new Map(records.map((r) => [`${absoluteName(r.fqdn)} ${r.value}`, r]));
  const last = new Map<string, Observation[]>();
  const confirmedBy = new Set<string>();
  const recursive: (NameServer | undefined)[] = options.resolvers.length
    ? options.resolvers
    : [undefined];
  let rounds = 0;
  for (;;) {
    rounds++;
    const left = Math.max(200, deadline - clock.now());
    const timeoutMs = Math.min(options.queryTimeoutMs ?? 5000, left);
    // One zone lookup per name per round: the wildcard and its apex share one.
    const authoritative = new Map<
      string,
      Promise<{ servers: [NameServer, string][]; failure?: string }>
    >();
    for (const [key, record] of pending) {
      const fqdn = absoluteName(record.fqdn);
      const seen: Observation[] = [];
      const check = async (server: NameServer | undefined, role: string) => {
        const a = await ask(query, fqdn, "TXT", server, timeoutMs);
        const ok = "records" in a &&
          a.records.some((r) => (Array.isArray(r) ? r.join("") : String(r)) === record.value);
        seen.push({
          server: serverLabel(server),
          role,
          answer: "records" in a ? describeTxt(a.records) : a.failure,
          ok,
        });
      };
      if (options.requireAllRNS) {
        await Promise.all(recursive.map((s) => check(s, "resolver")));
      }
      if (!options.disableANSChecks) {
        if (!authoritative.has(fqdn)) {
          authoritative.set(fqdn, authoritativeServers(fqdn, recursive, query, timeoutMs));
        }
        const found = await authoritative.get(fqdn)!;
        if (found.failure) {
          seen.push({
            server: "authoritative servers",
            role: "lookup",
            answer: found.failure,
            ok: false,
          });
        }
        await Promise.all(found.servers.map(([s, ns]) => check(s, `authoritative ${ns}`)));
      }
      last.set(key, seen);
      if (seen.length && seen.every((o) => o.ok)) {
        pending.delete(key);
        for (const o of seen) confirmedBy.add(`${o.server} (${o.role})`);
      }
    }
    if (pending.size === 0) {
      return { waitedMs: clock.now() - start, rounds, confirmedBy: [...confirmedBy] };
    }
    if (clock.now() + options.intervalMs > deadline) break;
    await clock.sleep(options.intervalMs);
  }
  const parts = [...pending].map(([key, r]) => {
    const seen = (last.get(key) ?? []).map((o) => `${o.server} (${o.role}) answered ${o.answer}`)
      .join("; ");
    return `TXT ${absoluteName(r.fqdn)} = "${r.value}" for ${r.domain}: ${seen}`;
  });
  throw new DnsPropagationError(
    `DNS-01 propagation: not visible within ${
      Math.round(options.timeoutMs)
    } ms after ${rounds} checks: ${parts.join(" | ")}`,
  );
}

/** The zone's authoritative servers as [address, NS name], found through the resolvers. */
async function authoritativeServers(
  fqdn: string,
  recursive: (NameServer | undefined)[],
  query: DnsQuery,
  timeoutMs: number,
): Promise<{ servers: [NameServer, string][]; failure?: string }> {
  let zone: string;
  try {
    zone = await findZone(fqdn, recursive, query, timeoutMs);
  } catch (err) {
    return { servers: [], failure: (err as Error).message };
  }
  const server = recursive[0];
  const ns = await ask(query, zone, "NS", server, timeoutMs);
  if (!("records" in ns) || ns.records.length === 0) {
    return {
      servers: [],
      failure: `${serverLabel(server)} gave no NS record for zone ${zone}: ${
        "failure" in ns ? ns.failure : "empty"
      }`,
    };
  }
  // Port 53, as lego: the NS records give names, not ports.
  const port = 53;
  const out: [NameServer, string][] = [];
  const failures: string[] = [];
  for (const name of ns.records.map((r) => absoluteName(String(r)))) {
    let addrs = await ask(query, name, "A", server, timeoutMs);
    if (!("records" in addrs) || addrs.records.length === 0) {
      addrs = await ask(query, name, "AAAA", server, timeoutMs);
    }
    if ("records" in addrs && addrs.records.length) {
      for (const ip of addrs.records) out.push([{ ipAddr: String(ip), port }, name]);
    } else failures.push(`${name}: no address (${"failure" in addrs ? addrs.failure : "empty"})`);
  }
  return out.length
    ? { servers: out }
    : { servers: [], failure: `no address for the NS of zone ${zone}: ${failures.join("; ")}` };
}
