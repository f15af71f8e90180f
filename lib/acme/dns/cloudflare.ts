/**
 * The `cloudflare` DNS-01 provider, written to Cloudflare's v4 API
 * (`https://api.cloudflare.com/client/v4`), with lego's variables:
 *
 * - `CF_DNS_API_TOKEN` (alias `CLOUDFLARE_DNS_API_TOKEN`): a token with
 *   DNS:Edit; optionally `CF_ZONE_API_TOKEN` (`CLOUDFLARE_ZONE_API_TOKEN`)
 *   with Zone:Read for the zone lookup;
 * - or `CF_API_EMAIL` + `CF_API_KEY` (`CLOUDFLARE_EMAIL`, `CLOUDFLARE_API_KEY`),
 *   the global key;
 * - `CLOUDFLARE_TTL` (120 s), `CLOUDFLARE_PROPAGATION_TIMEOUT` (120 s),
 *   `CLOUDFLARE_POLLING_INTERVAL` (2 s), `CLOUDFLARE_HTTP_TIMEOUT` (30 s),
 *   `CLOUDFLARE_BASE_URL`.
 *
 * The zone is found by asking the API for each parent name of the record
 * (`GET /zones?name=…`); a record is `POST /zones/ID/dns_records` and
 * removed by its id (`DELETE /zones/ID/dns_records/RID`). The id is the
 * handle journalled with the record, so a new manager deletes exactly it;
 * without one, the record is looked up by type, name and content.
 *
 * @module
 */

import type { Credentials } from "./credentials.ts";
import { excerpt, type Fetch, request, zoneCandidates } from "./http_api.ts";
import {
  DnsConfigError,
  type DnsProvider,
  DnsProviderError,
  redact,
  type TxtRecord,
} from "./types.ts";

/** Cloudflare's production API. */
export const CLOUDFLARE_API = "https://api.cloudflare.com/client/v4";

/** How requests authenticate. */
export type CloudflareAuth = { token: string } | { email: string; key: string };

/** Settings of {@linkcode CloudflareProvider}. */
export interface CloudflareOptions {
  baseUrl: string;
  /** For record changes. */
  auth: CloudflareAuth;
  /** For zone lookups; default `auth`. */
  zoneAuth?: CloudflareAuth;
  ttl: number;
  propagationTimeoutMs: number;
  pollingIntervalMs: number;
  httpTimeoutMs: number;
  fetch?: Fetch;
  /** Values to redact from messages. */
  secrets?: string[];
}

/** The provider, from lego's variables. */
export function cloudflareFromCredentials(c: Credentials): CloudflareProvider {
  const token = c.secret("CF_DNS_API_TOKEN", "CLOUDFLARE_DNS_API_TOKEN");
  const zoneToken = c.secret("CF_ZONE_API_TOKEN", "CLOUDFLARE_ZONE_API_TOKEN");
  const email = c.get("CF_API_EMAIL", "CLOUDFLARE_EMAIL");
  const key = c.secret("CF_API_KEY", "CLOUDFLARE_API_KEY");
  let auth: CloudflareAuth;
  if (token) auth = { token };
  else if (email && key) auth = { email, key };
  else {
    const missing = email
      ? ["CF_API_KEY (with CF_API_EMAIL), or CF_DNS_API_TOKEN"]
      : key
      ? ["CF_API_EMAIL (with CF_API_KEY), or CF_DNS_API_TOKEN"]
      : ["CF_DNS_API_TOKEN, or CF_API_EMAIL and CF_API_KEY"];
    c.requireAll("cloudflare", missing);
    throw new Error("unreachable");
  }
  const baseUrl = c.get("CLOUDFLARE_BASE_URL") ?? CLOUDFLARE_API;
  try {
    new URL(baseUrl);
  } catch {
    throw new DnsConfigError(`${c.where}: CLOUDFLARE_BASE_URL is not a URL`);
  }
  return new CloudflareProvider({
    baseUrl,
    auth,
    zoneAuth: zoneToken ? { token: zoneToken } : undefined,
    ttl: c.integer("CLOUDFLARE_TTL", 120),
    propagationTimeoutMs: c.duration("CLOUDFLARE_PROPAGATION_TIMEOUT", 120_000),
    pollingIntervalMs: c.duration("CLOUDFLARE_POLLING_INTERVAL", 2_000),
    httpTimeoutMs: c.duration("CLOUDFLARE_HTTP_TIMEOUT", 30_000),
    secrets: c.secrets,
  });
}

/** Cloudflare's envelope: `{success, errors: [{code, message}], result}`. */
interface Envelope {
  success?: boolean;
  errors?: { code?: number; message?: string }[];
  result?: unknown;
}

/** "identical record already exists" (a re-presented value). */
const IDENTICAL_RECORD = 81058;
/** "Record does not exist." */
const NO_RECORD = 81044;

export class CloudflareProvider implements DnsProvider {
  readonly name = "cloudflare";
  readonly propagationTimeoutMs: number;
  readonly pollingIntervalMs: number;
  readonly #fetch: Fetch;
  readonly #base: string;
  readonly #zones = new Map<string, string>();

  constructor(private readonly options: CloudflareOptions) {
    this.propagationTimeoutMs = options.propagationTimeoutMs;
    this.pollingIntervalMs = options.pollingIntervalMs;
    this.#fetch = options.fetch ?? fetch;
    this.#base = options.baseUrl.replace(/\/+$/, "");
  }

  #headers(auth: CloudflareAuth): Record<string, string> {
    return "token" in auth
      ? { authorization: `Bearer ${auth.token}` }
      : { "x-auth-email": auth.email, "x-auth-key": auth.key };
  }

  async #call(
    what: string,
    method: string,
    path: string,
    auth: CloudflareAuth,
    body?: unknown,
  ): Promise<{ status: number; envelope: Envelope }> {
    const secrets = this.options.secrets ?? [];
    const res = await request(
      this.name,
      what,
      this.#fetch,
      `${this.#base}${path}`,
      {
        method,
        headers: {
          ...this.#headers(auth),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      },
      this.options.httpTimeoutMs,
      secrets,
    );
    let envelope: Envelope;
    try {
      envelope = JSON.parse(res.text);
    } catch {
      throw new DnsProviderError(
        this.name,
        redact(`${what}: HTTP ${res.status}, not JSON: ${excerpt(res.text)}`, secrets),
        res.status,
      );
    }
    return { status: res.status, envelope };
  }

  #fail(what: string, status: number, envelope: Envelope): DnsProviderError {
    const errors = (envelope.errors ?? []).map((e) => `error ${e.code}: ${e.message}`).join("; ");
    return new DnsProviderError(
      this.name,
      redact(`${what}: HTTP ${status}${errors ? `, ${errors}` : ""}`, this.options.secrets ?? []),
      status,
    );
  }

  /** The id of the zone holding `fqdn`: the longest parent name the account has as a zone. */
  async #zoneId(fqdn: string): Promise<string> {
    const auth = this.options.zoneAuth ?? this.options.auth;
    for (const candidate of zoneCandidates(fqdn)) {
      const cached = this.#zones.get(candidate);
      if (cached) return cached;
      const what = `looking up zone ${candidate}`;
      const { status, envelope } = await this.#call(
        what,
        "GET",
        `/zones?name=${encodeURIComponent(candidate)}`,
        auth,
      );
      if (status !== 200 || envelope.success !== true) throw this.#fail(what, status, envelope);
      const zones = Array.isArray(envelope.result)
        ? envelope.result as { id?: string; name?: string }[]
        : [];
      const zone = zones.find((z) => z.name === candidate && typeof z.id === "string");
      if (zone) {
        this.#zones.set(candidate, zone.id!);
        return zone.id!;
      }
    }
    throw new DnsProviderError(
      this.name,
      `no zone of this account holds ${fqdn} (asked for ${zoneCandidates(fqdn).join(", ")})`,
    );
  }

  async #find(zoneId: string, record: TxtRecord): Promise<string | undefined> {
    const name = record.fqdn.replace(/\.$/, "");
    const what = `finding TXT ${name}`;
    const { status, envelope } = await this.#call(
      what,
      "GET",
      `/zones/${zoneId}/dns_records?type=TXT&name=${encodeURIComponent(name)}&content=${
        encodeURIComponent(record.value)
      }`,
      this.options.auth,
    );
    if (status !== 200 || envelope.success !== true) throw this.#fail(what, status, envelope);
    const found = (Array.isArray(envelope.result) ? envelope.result : []) as {
      id?: string;
      content?: string;
    }[];
    return found.find((r) => r.content === record.value || r.content === `"${record.value}"`)?.id;
  }

  async present(record: TxtRecord): Promise<string> {
    const zoneId = await this.#zoneId(record.fqdn);
    const name = record.fqdn.replace(/\.$/, "");
    const what = `creating TXT ${name}`;
    const { status, envelope } = await this.#call(
      what,
      "POST",
      `/zones/${zoneId}/dns_records`,
      this.options.auth,
      { type: "TXT", name, content: record.value, ttl: this.options.ttl },
    );
    if (status === 200 && envelope.success === true) {
      const id = (envelope.result as { id?: unknown })?.id;
      if (typeof id !== "string") {
        throw new DnsProviderError(this.name, `${what}: the answer has no record id`);
      }
      return `${zoneId}/${id}`;
    }
    if (envelope.errors?.some((e) => e.code === IDENTICAL_RECORD)) {
      const id = await this.#find(zoneId, record);
      if (id) return `${zoneId}/${id}`;
    }
    throw this.#fail(what, status, envelope);
  }

  async cleanUp(record: TxtRecord, handle?: string): Promise<void> {
    let zoneId: string;
    let id: string | undefined;
    if (handle && /^[^/]+\/[^/]+$/.test(handle)) [zoneId, id] = handle.split("/");
    else {
      zoneId = await this.#zoneId(record.fqdn);
      id = await this.#find(zoneId, record);
      if (!id) return;
    }
    const what = `deleting TXT ${record.fqdn.replace(/\.$/, "")} (record ${id})`;
    const { status, envelope } = await this.#call(
      what,
      "DELETE",
      `/zones/${zoneId}/dns_records/${encodeURIComponent(id)}`,
      this.options.auth,
    );
    if (status === 200 && envelope.success === true) return;
    if (status === 404 || envelope.errors?.some((e) => e.code === NO_RECORD)) return;
    throw this.#fail(what, status, envelope);
  }
}
