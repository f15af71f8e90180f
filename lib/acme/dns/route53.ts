/**
 * The `route53` DNS-01 provider, written to the Route 53 REST API
 * (version 2013-04-01, XML, SigV4-signed), with lego's variables:
 *
 * - `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (required; the SDK's other
 *   credential sources, instance roles and profiles, are not read),
 *   `AWS_SESSION_TOKEN`;
 * - `AWS_REGION` (default `us-east-1`; Route 53 is global, so it only picks
 *   the partition: `cn-*` and `us-gov-*` have their own endpoints);
 * - `AWS_HOSTED_ZONE_ID` (else the zone is looked up with
 *   `hostedzonesbyname`, public zones only unless `AWS_PRIVATE_ZONE=true`);
 * - `AWS_TTL` (10 s), `AWS_PROPAGATION_TIMEOUT` (2 min),
 *   `AWS_POLLING_INTERVAL` (4 s), `AWS_WAIT_FOR_RECORD_SETS_CHANGED`
 *   (true: wait until the change is INSYNC);
 * - `AWS_ENDPOINT_URL_ROUTE_53` or `AWS_ENDPOINT_URL` (the AWS SDKs' endpoint
 *   override), for a local API.
 *
 * Route 53 holds all TXT values of a name in one record set, so a value is
 * added by reading the set and UPSERTing it with the value added, and
 * removed by UPSERTing the rest (or DELETEing the set when it was the last):
 * the apex's and the wildcard's values coexist. Calls for one name are
 * serialised by the solver.
 *
 * @module
 */

import type { Credentials } from "./credentials.ts";
import { excerpt, type Fetch, request, zoneCandidates } from "./http_api.ts";
import { amzDate, sha256Hex, signV4 } from "./sigv4.ts";
import {
  DnsConfigError,
  type DnsProvider,
  DnsProviderError,
  redact,
  type TxtRecord,
} from "./types.ts";

/** Settings of {@linkcode Route53Provider}. */
export interface Route53Options {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  hostedZoneId?: string;
  privateZone: boolean;
  endpoint: string;
  ttl: number;
  propagationTimeoutMs: number;
  pollingIntervalMs: number;
  waitForChange: boolean;
  httpTimeoutMs: number;
  fetch?: Fetch;
  now?: () => Date;
}

const API_VERSION = "2013-04-01";
const XMLNS = `https://route53.amazonaws.com/doc/${API_VERSION}/`;

/** Route 53's endpoint and signing region for the partition of `region`. */
export function route53Endpoint(region: string): { endpoint: string; signingRegion: string } {
  if (region.startsWith("cn-")) {
    return { endpoint: "https://route53.amazonaws.com.cn", signingRegion: "cn-northwest-1" };
  }
  if (region.startsWith("us-gov-")) {
    return { endpoint: "https://route53.us-gov.amazonaws.com", signingRegion: "us-gov-west-1" };
  }
  return { endpoint: "https://route53.amazonaws.com", signingRegion: "us-east-1" };
}

/** The provider, from lego's variables. */
export function route53FromCredentials(c: Credentials): Route53Provider {
  const accessKeyId = c.get("AWS_ACCESS_KEY_ID");
  const secretAccessKey = c.secret("AWS_SECRET_ACCESS_KEY");
  const missing = [
    ...(accessKeyId ? [] : ["AWS_ACCESS_KEY_ID"]),
    ...(secretAccessKey ? [] : ["AWS_SECRET_ACCESS_KEY"]),
  ];
  c.requireAll("route53", missing);
  const region = c.get("AWS_REGION") ?? "us-east-1";
  const endpoint = c.get("AWS_ENDPOINT_URL_ROUTE_53", "AWS_ENDPOINT_URL") ??
    route53Endpoint(region).endpoint;
  try {
    new URL(endpoint);
  } catch {
    throw new DnsConfigError(`${c.where}: AWS_ENDPOINT_URL_ROUTE_53 is not a URL`);
  }
  return new Route53Provider({
    accessKeyId: accessKeyId!,
    secretAccessKey: secretAccessKey!,
    sessionToken: c.secret("AWS_SESSION_TOKEN"),
    region,
    hostedZoneId: c.get("AWS_HOSTED_ZONE_ID"),
    privateZone: c.flag("AWS_PRIVATE_ZONE", false),
    endpoint,
    ttl: c.integer("AWS_TTL", 10),
    propagationTimeoutMs: c.duration("AWS_PROPAGATION_TIMEOUT", 120_000),
    pollingIntervalMs: c.duration("AWS_POLLING_INTERVAL", 4_000),
    waitForChange: c.flag("AWS_WAIT_FOR_RECORD_SETS_CHANGED", true),
    httpTimeoutMs: 30_000,
  });
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

function xmlUnescape(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, "<").replace(
    /&gt;/g,
    ">",
  ).replace(/&amp;/g, "&");
}

/** The inner text of every `<tag>` element (the documents here have no attributes on these). */
export function xmlAll(xml: string, tag: string): string[] {
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, "g");
  return [...xml.matchAll(re)].map((m) => m[1]);
}

function xmlOne(xml: string, tag: string): string | undefined {
  const v = xmlAll(xml, tag)[0];
  return v === undefined ? undefined : xmlUnescape(v.trim());
}

/** A TXT value as Route 53 stores it: in double quotes. */
function quoted(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The record set of one name, as read. */
interface RecordSet {
  ttl: number;
  values: string[];
}

export class Route53Provider implements DnsProvider {
  readonly name = "route53";
  readonly propagationTimeoutMs: number;
  readonly pollingIntervalMs: number;
  readonly #fetch: Fetch;
  readonly #base: string;
  #zoneId?: string;

  constructor(private readonly options: Route53Options) {
    this.propagationTimeoutMs = options.propagationTimeoutMs;
    this.pollingIntervalMs = options.pollingIntervalMs;
    this.#fetch = options.fetch ?? fetch;
    this.#base = options.endpoint.replace(/\/+$/, "");
    this.#zoneId = options.hostedZoneId?.replace(/^\/?hostedzone\//, "");
  }

  get #secrets(): string[] {
    return [this.options.secretAccessKey, this.options.sessionToken ?? ""];
  }

  async #call(what: string, method: string, path: string, body = ""): Promise<string> {
    const url = new URL(`${this.#base}/${API_VERSION}${path}`);
    const headers: Record<string, string> = {
      host: url.host,
      "x-amz-date": amzDate((this.options.now ?? (() => new Date()))()),
      ...(this.options.sessionToken ? { "x-amz-security-token": this.options.sessionToken } : {}),
      ...(body ? { "content-type": "application/xml" } : {}),
    };
    const { authorization } = signV4(
      { method, url, headers, payloadHash: sha256Hex(body) },
      {
        accessKeyId: this.options.accessKeyId,
        secretAccessKey: this.options.secretAccessKey,
        region: route53Endpoint(this.options.region).signingRegion,
        service: "route53",
      },
    );
    const { host: _host, ...sent } = headers;
    const res = await request(
      this.name,
      what,
      this.#fetch,
      url,
      { method, headers: { ...sent, authorization }, body: body || undefined },
      this.options.httpTimeoutMs,
      this.#secrets,
    );
    if (res.status >= 200 && res.status < 300) return res.text;
    // Errors come as <ErrorResponse><Error><Code/><Message/></Error>, and a
    // refused change batch as <InvalidChangeBatch><Messages><Message/>…
    const code = xmlOne(res.text, "Code") ??
      /<([A-Za-z]+)[\s>]/.exec(res.text.replace(/<\?xml[^>]*\?>/, ""))?.[1];
    const messages = xmlAll(res.text, "Message").map((m) => xmlUnescape(m.trim()));
    throw new DnsProviderError(
      this.name,
      redact(
        `${what}: HTTP ${res.status}${code ? ` ${code}` : ""}${
          messages.length ? `: ${messages.join("; ")}` : res.text ? `: ${excerpt(res.text)}` : ""
        }`,
        this.#secrets,
      ),
      res.status,
    );
  }

  async #hostedZone(fqdn: string): Promise<string> {
    if (this.#zoneId) return this.#zoneId;
    for (const candidate of zoneCandidates(fqdn)) {
      const xml = await this.#call(
        `looking up hosted zone ${candidate}`,
        "GET",
        `/hostedzonesbyname?dnsname=${encodeURIComponent(candidate)}`,
      );
      for (const zone of xmlAll(xml, "HostedZone")) {
        const name = xmlOne(zone, "Name");
        const isPrivate = xmlOne(zone, "PrivateZone") === "true";
        const id = xmlOne(zone, "Id");
        if (name === `${candidate}.` && isPrivate === this.options.privateZone && id) {
          this.#zoneId = id.replace(/^\/hostedzone\//, "");
          return this.#zoneId;
        }
      }
    }
    throw new DnsProviderError(
      this.name,
      `no ${
        this.options.privateZone ? "private" : "public"
      } hosted zone holds ${fqdn} (set AWS_HOSTED_ZONE_ID?)`,
    );
  }

  async #read(zone: string, fqdn: string): Promise<RecordSet | undefined> {
    const xml = await this.#call(
      `reading TXT ${fqdn}`,
      "GET",
      `/hostedzone/${zone}/rrset?name=${encodeURIComponent(fqdn)}&type=TXT&maxitems=1`,
    );
    for (const set of xmlAll(xml, "ResourceRecordSet")) {
      if (xmlOne(set, "Name")?.toLowerCase() !== fqdn.toLowerCase()) continue;
      if (xmlOne(set, "Type") !== "TXT") continue;
      return {
        ttl: Number(xmlOne(set, "TTL") ?? this.options.ttl),
        values: xmlAll(set, "Value").map((v) => xmlUnescape(v.trim())),
      };
    }
    return undefined;
  }

  async #change(zone: string, fqdn: string, action: "UPSERT" | "DELETE", set: RecordSet) {
    const records = set.values.map((v) =>
      `<ResourceRecord><Value>${xmlEscape(v)}</Value></ResourceRecord>`
    )
      .join("");
    const body = `<?xml version="1.0" encoding="UTF-8"?>
<ChangeResourceRecordSetsRequest xmlns="${XMLNS}"><ChangeBatch><Comment>ACME DNS-01 (Portico)</Comment><Changes><Change><Action>${action}</Action><ResourceRecordSet><Name>${
      xmlEscape(fqdn)
    }</Name><Type>TXT</Type><TTL>${set.ttl}</TTL><ResourceRecords>${records}</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`;
    const xml = await this.#call(
      `${action} TXT ${fqdn}`,
      "POST",
      `/hostedzone/${zone}/rrset/`,
      body,
    );
    const changeId = xmlOne(xml, "Id")?.replace(/^\/change\//, "");
    if (!this.options.waitForChange || !changeId) return;
    const deadline = Date.now() + this.propagationTimeoutMs;
    let status = xmlOne(xml, "Status");
    while (status !== "INSYNC") {
      if (Date.now() > deadline) {
        throw new DnsProviderError(
          this.name,
          `change ${changeId} for TXT ${fqdn} still ${status} after ${this.propagationTimeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(this.pollingIntervalMs, 1000)));
      status = xmlOne(
        await this.#call(`checking change ${changeId}`, "GET", `/change/${changeId}`),
        "Status",
      );
    }
  }

  async present(record: TxtRecord): Promise<undefined> {
    const zone = await this.#hostedZone(record.fqdn);
    const current = await this.#read(zone, record.fqdn);
    const value = quoted(record.value);
    if (current?.values.includes(value)) return undefined;
    await this.#change(zone, record.fqdn, "UPSERT", {
      ttl: this.options.ttl,
      values: [...(current?.values ?? []), value],
    });
    return undefined;
  }

  async cleanUp(record: TxtRecord): Promise<void> {
    const zone = await this.#hostedZone(record.fqdn);
    const current = await this.#read(zone, record.fqdn);
    const value = quoted(record.value);
    if (!current?.values.includes(value)) return;
    const rest = current.values.filter((v) => v !== value);
    if (rest.length) {
      await this.#change(zone, record.fqdn, "UPSERT", { ttl: current.ttl, values: rest });
    } else await this.#change(zone, record.fqdn, "DELETE", current);
  }
}
