/**
 * Header rules for forwarding: hop-by-hop removal and the X-Forwarded-* set
 * that Traefik writes.
 *
 * @module
 */

import type { RequestTrace } from "../tracing/request_trace.ts";

/** Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy ones Go's proxy strips). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Lower-cased names listed in a `Connection` header, which are hop-by-hop too. */
function connectionListed(value: string | null): Set<string> | undefined {
  if (!value) return undefined;
  const names = new Set<string>();
  for (const part of value.split(",")) {
    const name = part.trim().toLowerCase();
    if (name) names.add(name);
  }
  return names;
}

/** What the proxy knows about the client side of one request. */
export interface ForwardedInfo {
  clientIp: string;
  /** "http" or "https" as seen by the client. */
  proto: "http" | "https";
  /** Host header as the client sent it (with port if any). */
  host: string;
  /** Port the client connected to. */
  port: number;
  /** This proxy's host name, for X-Forwarded-Server. */
  serverName: string;
  /** Whether the client may set X-Forwarded-*; untrusted ones are removed on entry. */
  trustForwarded: boolean;
  /**
   * Forwarding headers a middleware set (a value) or removed (null) on
   * purpose, e.g. `customRequestHeaders` with `X-Forwarded-For = ""`. In
   * Traefik the entrypoint writes these headers before the middlewares, so
   * a middleware's edit is final; here they are written when forwarding,
   * so the edits are applied last. Names are lower-case.
   */
  forwardedEdits?: Map<string, string | null>;
  /** The request's trace when tracing is on: the service records the upstream and sends `traceparent`. */
  trace?: RequestTrace;
}

export const FORWARDED_NAMES: readonly string[] = [
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-server",
  "x-real-ip",
  "forwarded",
  "x-forwarded-prefix",
  "x-forwarded-uri",
  "x-forwarded-method",
  "x-forwarded-tls-client-cert",
  "x-forwarded-tls-client-cert-info",
];

/**
 * Removes client-supplied forwarding headers, for a client that is not
 * trusted. Done when the request enters, before middlewares, so that what a
 * middleware adds (X-Forwarded-Prefix, …) survives. Returns the same object
 * when there is nothing to remove, so the common case copies nothing.
 */
export function withoutForwardedHeaders(incoming: Headers): Headers {
  let copy: Headers | undefined;
  for (const name of FORWARDED_NAMES) {
    if (incoming.has(name)) {
      copy ??= new Headers(incoming);
      copy.delete(name);
    }
  }
  return copy ?? incoming;
}

/**
 * Builds the upstream request headers as a plain object for `node:http`,
 * without copying the client's Headers more than once. Forwarding headers
 * already present came from a trusted client or a middleware (untrusted ones
 * were removed on entry): X-Forwarded-For is appended to, the others kept.
 *
 * @example
 * ```ts
 * const out = upstreamRequestHeaders(proxy.headers, proxy, { keepUpgrade: false });
 * ```
 */
export function upstreamRequestHeaders(
  incoming: Headers,
  info: ForwardedInfo,
  options: { keepUpgrade: boolean },
): Record<string, string | string[]> {
  const listed = connectionListed(incoming.get("connection"));
  const out: Record<string, string | string[]> = {};
  // forEach, not for…of: Deno's Headers iterator re-sorts the whole list on
  // every step (quadratic; 25 % of CPU with 50 header-setting middlewares).
  incoming.forEach((value, name) => {
    if (HOP_BY_HOP.has(name) || (listed && listed.has(name))) return;
    if (name === "set-cookie") return;
    out[name] = value;
  });
  if (options.keepUpgrade) {
    const upgrade = incoming.get("upgrade");
    if (upgrade) {
      out["connection"] = "Upgrade";
      out["upgrade"] = upgrade;
    }
  }
  // An HTTP/2 request has no Host field (its :authority is the host): HTTP/1.1 upstreams need one.
  if (out["host"] === undefined && info.host) out["host"] = info.host;
  // Traefik keeps `te: trailers` because gRPC needs it.
  const te = incoming.get("te");
  if (te && te.toLowerCase().includes("trailers")) out["te"] = "trailers";

  // A trusted client's list is kept, minus empty entries ("a,,b" or ","),
  // so the result stays a well-formed list ending with the peer.
  const prior = out["x-forwarded-for"];
  const kept = typeof prior === "string"
    ? prior.split(",").map((p) => p.trim()).filter((p) => p !== "").join(", ")
    : "";
  out["x-forwarded-for"] = kept ? `${kept}, ${info.clientIp}` : info.clientIp;
  out["x-forwarded-proto"] ??= info.proto;
  out["x-forwarded-host"] ??= info.host;
  out["x-forwarded-port"] ??= String(info.port);
  out["x-forwarded-server"] = info.serverName;
  out["x-real-ip"] ??= info.clientIp;
  if (info.forwardedEdits) {
    for (const [name, value] of info.forwardedEdits) {
      if (value === null) delete out[name];
      else out[name] = value;
    }
  }
  return out;
}

/**
 * Copies an upstream response's headers (a flat name, value, name, value
 * list as node's `rawHeaders`) into web Headers, dropping hop-by-hop headers
 * and those named in the upstream's `Connection`.
 */
export function downstreamResponseHeaders(
  raw: string[],
): Headers {
  const headers = new Headers();
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() !== "connection") continue;
    for (const name of connectionListed(raw[i + 1]) ?? []) (listed ??= new Set()).add(name);
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(name) || (listed && listed.has(name))) continue;
    headers.append(name, raw[i + 1]);
  }
  return headers;
}

/**
 * The upstream request's header lines, built from the engine's flat header
 * list with the same rules as {@linkcode upstreamRequestHeaders}: hop-by-hop
 * and Connection-listed headers dropped, `te: trailers` kept, X-Forwarded-*
 * set (X-Forwarded-For appended to). Repeated fields stay separate lines,
 * as Go's proxy sends them. `host` replaces the client's Host when given.
 */
export function upstreamHeaderLines(
  list: readonly string[],
  info: ForwardedInfo,
  host: string | undefined,
): string {
  let prior = "";
  let proto = false, fhost = false, fport = false, realIp = false;
  const listed = connectionListedIn(list);
  let out = "";
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i];
    const value = list[i + 1];
    if (HOP_BY_HOP.has(name) || (listed !== undefined && listed.has(name))) {
      if (name === "te" && value.toLowerCase().includes("trailers")) out += "te: trailers\r\n";
      continue;
    }
    switch (name) {
      case "host":
        out += `host: ${host ?? value}\r\n`;
        host = undefined;
        continue;
      case "x-forwarded-for":
        prior = prior ? `${prior},${value}` : value;
        continue;
      case "x-forwarded-server":
        continue;
      case "x-forwarded-proto":
        proto = true;
        break;
      case "x-forwarded-host":
        fhost = true;
        break;
      case "x-forwarded-port":
        fport = true;
        break;
      case "x-real-ip":
        realIp = true;
        break;
    }
    out += `${name}: ${value}\r\n`;
  }
  if (host !== undefined) out += `host: ${host}\r\n`;
  const edits = info.forwardedEdits;
  const add = (name: string, value: string) => {
    const edit = edits?.get(name);
    if (edit === undefined) out += `${name}: ${value}\r\n`;
    else if (edit !== null) out += `${name}: ${edit}\r\n`;
  };
  const kept = prior ? prior.split(",").map((p) => p.trim()).filter((p) => p !== "").join(", ") : "";
  add("x-forwarded-for", kept ? `${kept}, ${info.clientIp}` : info.clientIp);
  if (!proto) add("x-forwarded-proto", info.proto);
  if (!fhost) add("x-forwarded-host", info.host);
  if (!fport) add("x-forwarded-port", String(info.port));
  add("x-forwarded-server", info.serverName);
  if (!realIp) add("x-real-ip", info.clientIp);
  return out;
}

/** Removes client-supplied forwarding headers from a flat list (untrusted client); same list when none. */
export function listWithoutForwarded(list: string[]): string[] {
  let copy: string[] | undefined;
  for (let i = 0; i < list.length; i += 2) {
    if (FORWARDED_SET.has(list[i])) {
      copy ??= list.slice(0, i);
    } else if (copy) {
      copy.push(list[i], list[i + 1]);
    }
  }
  return copy ?? list;
}

const FORWARDED_SET: ReadonlySet<string> = new Set(FORWARDED_NAMES);

/** The names a flat header list's `Connection` fields make hop-by-hop, if any. */
export function connectionListedIn(list: readonly string[]): Set<string> | undefined {
  let listed: Set<string> | undefined;
  for (let i = 0; i < list.length; i += 2) {
    if (list[i] === "connection") {
      for (const name of connectionListed(list[i + 1]) ?? []) (listed ??= new Set()).add(name);
    }
  }
  return listed;
}
