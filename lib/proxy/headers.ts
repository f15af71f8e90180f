/**
 * Header rules for forwarding: hop-by-hop removal and the X-Forwarded-* set
 * that Traefik writes.
 *
 * @module
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy ones Go's proxy strips). */
const HOP_BY_HOP = new Set([
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
  /** When false, incoming X-Forwarded-* are dropped first (client not trusted). */
  trustForwarded: boolean;
}

const FORWARDED_NAMES = [
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
 * Builds the upstream request headers as a plain object for `node:http`,
 * without copying the client's Headers more than once.
 *
 * @example
 * ```ts
 * const out = upstreamRequestHeaders(req.headers, info, { keepUpgrade: false });
 * ```
 */
export function upstreamRequestHeaders(
  incoming: Headers,
  info: ForwardedInfo,
  options: { keepUpgrade: boolean },
): Record<string, string | string[]> {
  const listed = connectionListed(incoming.get("connection"));
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of incoming) {
    if (HOP_BY_HOP.has(name) || (listed && listed.has(name))) continue;
    if (!info.trustForwarded && FORWARDED_NAMES.includes(name)) continue;
    if (name === "set-cookie") continue;
    out[name] = value;
  }
  if (options.keepUpgrade) {
    const upgrade = incoming.get("upgrade");
    if (upgrade) {
      out["connection"] = "Upgrade";
      out["upgrade"] = upgrade;
    }
  }
  // Traefik keeps `te: trailers` because gRPC needs it.
  const te = incoming.get("te");
  if (te && te.toLowerCase().includes("trailers")) out["te"] = "trailers";

  const prior = info.trustForwarded ? incoming.get("x-forwarded-for") : null;
  out["x-forwarded-for"] = prior ? `${prior}, ${info.clientIp}` : info.clientIp;
  if (!info.trustForwarded || !out["x-forwarded-proto"]) out["x-forwarded-proto"] = info.proto;
  if (!info.trustForwarded || !out["x-forwarded-host"]) out["x-forwarded-host"] = info.host;
  if (!info.trustForwarded || !out["x-forwarded-port"]) out["x-forwarded-port"] = String(info.port);
  out["x-forwarded-server"] = info.serverName;
  if (!info.trustForwarded || !out["x-real-ip"]) out["x-real-ip"] = info.clientIp;
  return out;
}

/**
 * Copies an upstream response's headers into web Headers, dropping
 * hop-by-hop headers and those named in the upstream's `Connection`.
 */
export function downstreamResponseHeaders(
  raw: string[],
): Headers {
  const headers = new Headers();
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() === "connection") listed = connectionListed(raw[i + 1]);
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(name) || (listed && listed.has(name))) continue;
    headers.append(name, raw[i + 1]);
  }
  return headers;
}
