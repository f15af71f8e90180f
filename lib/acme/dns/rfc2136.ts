/**
 * The `rfc2136` DNS-01 provider: a dynamic DNS UPDATE (RFC 2136) signed
 * with TSIG (RFC 8945), sent over TCP to the primary name server, as
 * lego's provider of that name is configured:
 *
 * - `RFC2136_NAMESERVER`: `host` or `host:port` (port 53 by default).
 * - `RFC2136_TSIG_KEY`, `RFC2136_TSIG_SECRET` (base64), `RFC2136_TSIG_ALGORITHM`
 *   (`hmac-sha256` by default; `hmac-sha512`, `hmac-sha384`, `hmac-sha224`,
 *   `hmac-sha1`, `hmac-md5`), or `RFC2136_TSIG_FILE` naming a `tsig-keygen`
 *   key file. Without key and secret, updates go unsigned (lego's behaviour).
 * - `RFC2136_TTL` (120 s), `RFC2136_PROPAGATION_TIMEOUT` (60 s),
 *   `RFC2136_POLLING_INTERVAL` (2 s), `RFC2136_DNS_TIMEOUT` (10 s).
 *
 * Adding a TXT value is an "add to an RRset" update; removing one is a
 * "delete an RR from an RRset" (class NONE, RFC 2136 §2.5.4), so the other
 * value under the same name (a wildcard and its apex) stays.
 *
 * @module
 */

import { withDeadline } from "../../deadline.ts";
import type { Credentials } from "./credentials.ts";
import { type NameServer, parseNameServer } from "../../config/name_server.ts";
import { type DnsQuery, findZone, resolveDnsQuery, serverLabel } from "./propagation.ts";
import {
  canonicalAlgorithm,
  signMessage,
  TSIG_ALGORITHMS,
  type TsigKey,
  verifyReply,
} from "./tsig.ts";
import { DnsConfigError, type DnsProvider, DnsProviderError, type TxtRecord } from "./types.ts";
import {
  decodeHeader,
  encodeUpdate,
  rcodeName,
  type ResourceRecord,
  RR_CLASS,
  RR_TYPE,
  txtRdata,
} from "./wire.ts";

/** Settings of {@linkcode Rfc2136Provider}. */
export interface Rfc2136Options {
  /** `host` or `host:port` as configured. */
  nameserver: string;
  /** Unsigned updates when absent. */
  key?: TsigKey;
  ttl: number;
  propagationTimeoutMs: number;
  pollingIntervalMs: number;
  /** One DNS exchange (connect, send, answer). */
  dnsTimeoutMs: number;
  /** Asked for the zone after the name server itself (the resolver's `resolvers`). */
  resolvers?: NameServer[];
  query?: DnsQuery;
}

/** The provider, from lego's variables. */
export function rfc2136FromCredentials(c: Credentials, resolvers: NameServer[]): Rfc2136Provider {
  const nameserver = c.get("RFC2136_NAMESERVER");
  let keyName = c.get("RFC2136_TSIG_KEY");
  let secret = c.secret("RFC2136_TSIG_SECRET");
  let algorithmText = c.get("RFC2136_TSIG_ALGORITHM");
  const keyFile = c.get("RFC2136_TSIG_FILE");
  if (keyFile !== undefined && (keyName === undefined || secret === undefined)) {
    // A tsig-keygen file holds the name, the algorithm and the secret.
    const parsed = parseKeyFile(c.where, c.fileNamedBy("RFC2136_TSIG_FILE", keyFile));
    c.remember(parsed.secret);
    keyName ??= parsed.name;
    secret ??= parsed.secret;
    algorithmText ??= parsed.algorithm;
  }
  const missing: string[] = [];
  if (nameserver === undefined) missing.push("RFC2136_NAMESERVER");
  if (keyName !== undefined && secret === undefined) missing.push("RFC2136_TSIG_SECRET");
  if (secret !== undefined && keyName === undefined) missing.push("RFC2136_TSIG_KEY");
  c.requireAll("rfc2136", missing);
  if (nameserver!.includes("/") || /\s/.test(nameserver!)) {
    throw new DnsConfigError(`${c.where}: RFC2136_NAMESERVER must be "host" or "host:port"`);
  }
  let key: TsigKey | undefined;
  if (keyName !== undefined && secret !== undefined) {
    const algorithm = canonicalAlgorithm(algorithmText ?? "hmac-sha256");
    if (!algorithm) {
      throw new DnsConfigError(
        `${c.where}: RFC2136_TSIG_ALGORITHM "${algorithmText}" is not supported; expected one of ${
          TSIG_ALGORITHMS.join(", ")
        }`,
      );
    }
    key = {
      name: keyName.endsWith(".") ? keyName : `${keyName}.`,
      algorithm,
      secret: decodeSecret(c.where, secret),
    };
  }
  return new Rfc2136Provider({
    nameserver: nameserver!,
    key,
    ttl: c.integer("RFC2136_TTL", 120),
    propagationTimeoutMs: c.duration("RFC2136_PROPAGATION_TIMEOUT", 60_000),
    pollingIntervalMs: c.duration("RFC2136_POLLING_INTERVAL", 2_000),
    dnsTimeoutMs: c.duration("RFC2136_DNS_TIMEOUT", 10_000),
    resolvers,
  });
}

function decodeSecret(where: string, text: string): Uint8Array {
  try {
    const bin = atob(text.trim());
    if (bin.length === 0) throw new Error("empty");
    return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  } catch {
    throw new DnsConfigError(`${where}: RFC2136_TSIG_SECRET is not valid base64`);
  }
}

/** A `tsig-keygen` file: `key "name" { algorithm hmac-sha256; secret "…"; };`. */
export function parseKeyFile(
  where: string,
  text: string,
): { name: string; algorithm: string; secret: string } {
  const m = /key\s+"?([^"\s{]+)"?\s*\{([^}]*)\}/.exec(text);
  const algorithm = m && /algorithm\s+"?([A-Za-z0-9.-]+)"?\s*;/.exec(m[2]);
  const secret = m && /secret\s+"([^"]+)"\s*;/.exec(m[2]);
  if (!m || !algorithm || !secret) {
    throw new DnsConfigError(
      `${where}: RFC2136_TSIG_FILE is not a key file like tsig-keygen writes (key "name" { algorithm …; secret "…"; };)`,
    );
  }
  return { name: m[1], algorithm: algorithm[1], secret: secret[1] };
}

/** What to tell the operator for a refusal, by rcode and TSIG error. */
function hint(rcode: string, tsig: string | undefined, keyName: string | undefined, zone: string) {
  if (tsig === "BADSIG") {
    return `the server's secret for key "${keyName}" differs from RFC2136_TSIG_SECRET`;
  }
  if (tsig === "BADKEY") {
    return `the server has no key "${keyName}" with that algorithm (RFC2136_TSIG_KEY, RFC2136_TSIG_ALGORITHM)`;
  }
  if (tsig === "BADTIME") {
    return "this machine's clock and the server's differ by more than the fudge (300 s)";
  }
  if (rcode === "REFUSED") {
    return `the server refused the update: does allow-update (or update-policy) of zone ${zone} allow ${
      keyName ? `key "${keyName}"` : "unsigned updates from this address"
    }?`;
  }
  if (rcode === "NOTAUTH") return `the server is not authoritative (primary) for zone ${zone}`;
  if (rcode === "NOTZONE") return `the name is not inside zone ${zone}`;
  return undefined;
}

/** Dynamic updates to one primary name server. */
export class Rfc2136Provider implements DnsProvider {
  readonly name = "rfc2136";
  readonly propagationTimeoutMs: number;
  readonly pollingIntervalMs: number;
  readonly #query: DnsQuery;

  constructor(private readonly options: Rfc2136Options) {
    this.propagationTimeoutMs = options.propagationTimeoutMs;
    this.pollingIntervalMs = options.pollingIntervalMs;
    this.#query = options.query ?? resolveDnsQuery;
  }

  async present(record: TxtRecord): Promise<undefined> {
    await this.#update(record, {
      name: record.fqdn,
      type: RR_TYPE.TXT,
      class: RR_CLASS.IN,
      ttl: this.options.ttl,
      rdata: txtRdata(record.value),
    }, "adding");
    return undefined;
  }

  async cleanUp(record: TxtRecord): Promise<void> {
    await this.#update(record, {
      name: record.fqdn,
      type: RR_TYPE.TXT,
      class: RR_CLASS.NONE,
      ttl: 0,
      rdata: txtRdata(record.value),
    }, "removing");
  }

  /** The name server's address: an IP as given, or a host name resolved by the system. */
  async #server(): Promise<NameServer & { label: string }> {
    const text = this.options.nameserver;
    const direct = parseNameServer(text);
    if (typeof direct !== "string") return { ...direct, label: serverLabel(direct) };
    const m = /^([^:\s]+)(?::(\d+))?$/.exec(text);
    const port = m?.[2] ? Number(m[2]) : 53;
    if (!m) {
      throw new DnsProviderError(
        this.name,
        `RFC2136_NAMESERVER "${text}" is not host or host:port`,
      );
    }
    const addrs = await this.#query(m[1], "A", undefined, this.options.dnsTimeoutMs).catch(
      (err) => {
        throw new DnsProviderError(
          this.name,
          `cannot resolve RFC2136_NAMESERVER host ${m[1]}: ${(err as Error).message}`,
        );
      },
    );
    return { ipAddr: String(addrs[0]), port, label: `${m[1]}:${port}` };
  }

  async #update(record: TxtRecord, rr: ResourceRecord, what: string): Promise<void> {
    const server = await this.#server();
    const zone = await findZone(
      record.fqdn,
      [server, ...(this.options.resolvers ?? [])],
      this.#query,
      this.options.dnsTimeoutMs,
    ).catch((err) => {
      throw new DnsProviderError(this.name, (err as Error).message);
    });
    const id = crypto.getRandomValues(new Uint16Array(1))[0];
    const unsigned = encodeUpdate(id, zone, [rr]);
    const key = this.options.key;
    const signed = key
      ? signMessage(unsigned, key, Math.floor(Date.now() / 1000))
      : { message: unsigned, mac: new Uint8Array(0) };
    const reply = await exchangeTcp(server, signed.message, this.options.dnsTimeoutMs).catch(
      (err) => {
        throw new DnsProviderError(
          this.name,
          `DNS UPDATE ${what} TXT ${record.fqdn} at ${server.label}: ${(err as Error).message}`,
        );
      },
    );
    const header = decodeHeader(reply);
    if (header.id !== id) {
      throw new DnsProviderError(
        this.name,
        `the reply from ${server.label} has another message id`,
      );
    }
    const rcode = rcodeName(header.rcode);
    const check = key ? verifyReply(reply, key, signed.mac, Date.now() / 1000) : undefined;
    const tsigError = check && !check.ok && check.tsigError
      ? rcodeName(check.tsigError)
      : undefined;
    if (header.rcode !== 0 || tsigError) {
      const why = hint(rcode, tsigError, key?.name, zone);
      throw new DnsProviderError(
        this.name,
        `DNS UPDATE ${what} TXT ${record.fqdn} in zone ${zone} at ${server.label} answered ${rcode}${
          tsigError ? ` (TSIG error ${tsigError})` : ""
        }${why ? `: ${why}` : ""}`,
        tsigError ?? rcode,
      );
    }
    if (check && !check.ok) {
      throw new DnsProviderError(
        this.name,
        `DNS UPDATE ${what} TXT ${record.fqdn} at ${server.label}: NOERROR, but ${check.reason}`,
      );
    }
  }
}

/** One DNS exchange over TCP (2-byte length prefix, RFC 1035 §4.2.2), bounded by `timeoutMs`. */
export async function exchangeTcp(
  server: NameServer,
  message: Uint8Array,
  timeoutMs: number,
): Promise<Uint8Array> {
  let conn: Deno.TcpConn | undefined;
  const closeConn = () => {
    try {
      conn?.close();
    } catch { /* closed */ }
  };
  const run = async () => {
    conn = await Deno.connect({ hostname: server.ipAddr, port: server.port });
    const framed = new Uint8Array(message.length + 2);
    framed[0] = message.length >> 8;
    framed[1] = message.length & 0xff;
    framed.set(message, 2);
    let written = 0;
    while (written < framed.length) written += await conn.write(framed.subarray(written));
    const head = await readExactly(conn, 2);
    return await readExactly(conn, (head[0] << 8) | head[1]);
  };
  try {
    return await withDeadline(run(), timeoutMs, () => {
      closeConn();
      return new Error(`no answer within ${timeoutMs} ms`);
    });
  } finally {
    closeConn();
  }
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) throw new Error("the server closed the connection before answering");
    got += r;
  }
  return out;
}
