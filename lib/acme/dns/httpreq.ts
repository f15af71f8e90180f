/**
 * The `httpreq` DNS-01 provider: lego's generic webhook, for a DNS host
 * no provider here knows. Portico POSTs JSON to `HTTPREQ_ENDPOINT/present`
 * and `HTTPREQ_ENDPOINT/cleanup`:
 *
 * - default mode: `{"fqdn": "_acme-challenge.example.com.", "value": "…"}`;
 * - `HTTPREQ_MODE=RAW`: `{"domain": "example.com", "token": "…", "keyAuth": "…"}`.
 *
 * `HTTPREQ_USERNAME` + `HTTPREQ_PASSWORD` add basic auth. Any 2xx is
 * success. `HTTPREQ_PROPAGATION_TIMEOUT` (60 s), `HTTPREQ_POLLING_INTERVAL`
 * (2 s), `HTTPREQ_HTTP_TIMEOUT` (30 s).
 *
 * @module
 */

import type { Credentials } from "./credentials.ts";
import { excerpt, type Fetch, request } from "./http_api.ts";
import {
  DnsConfigError,
  type DnsProvider,
  DnsProviderError,
  redact,
  type TxtRecord,
} from "./types.ts";

/** Settings of {@linkcode HttpReqProvider}. */
export interface HttpReqOptions {
  endpoint: URL;
  raw: boolean;
  username?: string;
  password?: string;
  propagationTimeoutMs: number;
  pollingIntervalMs: number;
  httpTimeoutMs: number;
  fetch?: Fetch;
}

/** The provider, from lego's variables. */
export function httpreqFromCredentials(c: Credentials): HttpReqProvider {
  const endpoint = c.get("HTTPREQ_ENDPOINT");
  c.requireAll("httpreq", endpoint ? [] : ["HTTPREQ_ENDPOINT"]);
  let url: URL;
  try {
    url = new URL(endpoint!);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error();
  } catch {
    throw new DnsConfigError(`${c.where}: HTTPREQ_ENDPOINT must be an http(s) URL`);
  }
  const mode = (c.get("HTTPREQ_MODE") ?? "").toUpperCase();
  if (mode !== "" && mode !== "RAW") {
    throw new DnsConfigError(`${c.where}: HTTPREQ_MODE must be empty or RAW`);
  }
  const username = c.get("HTTPREQ_USERNAME");
  const password = c.secret("HTTPREQ_PASSWORD");
  if ((username === undefined) !== (password === undefined)) {
    c.requireAll("httpreq", [username === undefined ? "HTTPREQ_USERNAME" : "HTTPREQ_PASSWORD"]);
  }
  return new HttpReqProvider({
    endpoint: url,
    raw: mode === "RAW",
    username,
    password,
    propagationTimeoutMs: c.duration("HTTPREQ_PROPAGATION_TIMEOUT", 60_000),
    pollingIntervalMs: c.duration("HTTPREQ_POLLING_INTERVAL", 2_000),
    httpTimeoutMs: c.duration("HTTPREQ_HTTP_TIMEOUT", 30_000),
  });
}

export class HttpReqProvider implements DnsProvider {
  readonly name = "httpreq";
  readonly propagationTimeoutMs: number;
  readonly pollingIntervalMs: number;

  constructor(private readonly options: HttpReqOptions) {
    this.propagationTimeoutMs = options.propagationTimeoutMs;
    this.pollingIntervalMs = options.pollingIntervalMs;
  }

  async #post(action: "present" | "cleanup", record: TxtRecord): Promise<void> {
    const url = new URL(this.options.endpoint);
    url.pathname = `${url.pathname.replace(/\/+$/, "")}/${action}`;
    const body = this.options.raw
      ? {
        domain: record.domain.replace(/^\*\./, ""),
        token: record.token,
        keyAuth: record.keyAuthorization,
      }
      : { fqdn: record.fqdn, value: record.value };
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.options.username !== undefined) {
      headers.authorization = `Basic ${btoa(`${this.options.username}:${this.options.password}`)}`;
    }
    const secrets = [this.options.password ?? ""];
    const what = `POST ${url.pathname}`;
    const res = await request(
      this.name,
      what,
      this.options.fetch ?? fetch,
      url,
      { method: "POST", headers, body: JSON.stringify(body) },
      this.options.httpTimeoutMs,
      secrets,
    );
    if (res.status < 200 || res.status > 299) {
      throw new DnsProviderError(
        this.name,
        redact(
          `${what} answered HTTP ${res.status}${res.text ? `: ${excerpt(res.text)}` : ""}`,
          secrets,
        ),
        res.status,
      );
    }
  }

  async present(record: TxtRecord): Promise<undefined> {
    await this.#post("present", record);
    return undefined;
  }

  async cleanUp(record: TxtRecord): Promise<void> {
    await this.#post("cleanup", record);
  }
}
