/**
 * Syntax checks for the string values configuration holds: listen addresses,
 * IPs and CIDR ranges, upstream URLs, names and references. Each check
 * returns a message saying what would be valid, or undefined when the value
 * is fine, so schemas can use them directly as `validate` hooks.
 *
 * @module
 */

/** A listen address split into its parts. */
export interface ListenAddress {
  /** "" means every interface. IPv6 literals are without brackets. */
  hostname: string;
  port: number;
}

const ADDRESS_EXPECTED = 'expected an address like ":80", "127.0.0.1:8000" or "[::1]:443"';

/**
 * Parses a Traefik entrypoint address (`:80`, `127.0.0.1:8000`, `[::1]:80`,
 * optionally with a `/tcp` suffix). Returns a message when it is not one.
 *
 * @example
 * ```ts
 * parseListenAddress("[::1]:8443"); // { hostname: "::1", port: 8443 }
 * parseListenAddress("localhost");   // 'expected an address like ":80", …'
 * ```
 */
export function parseListenAddress(address: string): ListenAddress | string {
  let text = address.trim();
  const slash = text.lastIndexOf("/");
  if (slash !== -1) {
    const protocol = text.slice(slash + 1).toLowerCase();
    if (protocol === "udp") return "UDP entrypoints are not supported yet";
    if (protocol !== "tcp") return `${ADDRESS_EXPECTED} (optionally ending in "/tcp")`;
    text = text.slice(0, slash);
  }
  let hostname: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]:");
    if (close === -1) return ADDRESS_EXPECTED;
    hostname = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIPv6(hostname)) {
      return `${ADDRESS_EXPECTED} (the part in brackets must be an IPv6 address)`;
    }
  } else {
    const colon = text.lastIndexOf(":");
    if (colon === -1) return `${ADDRESS_EXPECTED} (the port is missing)`;
    hostname = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (hostname.includes(":")) return `${ADDRESS_EXPECTED} (put an IPv6 address in brackets)`;
    if (hostname !== "" && !/^[A-Za-z0-9.-]+$/.test(hostname)) {
      return `${ADDRESS_EXPECTED} (the host must be a name or an IP address)`;
    }
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    return `${ADDRESS_EXPECTED} (the port must be a number from 0 to 65535)`;
  }
  return { hostname, port: Number(portText) };
}

/** True when two listeners on these hosts and the same port would collide. */
export function hostsOverlap(a: string, b: string): boolean {
  const wildcard = (host: string) => host === "" || host === "0.0.0.0" || host === "::";
  return wildcard(a) || wildcard(b) || a.toLowerCase() === b.toLowerCase();
}

/** True for a dotted-quad IPv4 address. */
export function isIPv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 &&
    parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255);
}

/** True for an IPv6 address in any of its textual forms (with `::`, with an IPv4 tail). */
export function isIPv6(text: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(":")) return false;
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const all = [...groups(halves[0]), ...(halves.length === 2 ? groups(halves[1]) : [])];
  let slots = 0;
  for (const [index, group] of all.entries()) {
    if (index === all.length - 1 && group.includes(".")) {
      if (!isIPv4(group)) return false;
      slots += 2;
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(group)) {
      slots += 1;
    } else {
      return false;
    }
  }
  return halves.length === 2 ? slots < 8 : slots === 8;
}

/** Checks an IP address or CIDR range such as `10.0.0.0/8` or `fd00::/8`. */
export function checkIpOrCidr(text: string): string | undefined {
  const [ip, bits, extra] = text.split("/");
  const expected = 'expected an IP address or CIDR range like "10.0.0.0/8" or "fd00::/8"';
  if (extra !== undefined) return expected;
  const max = isIPv4(ip) ? 32 : isIPv6(ip) ? 128 : undefined;
  if (max === undefined) return expected;
  if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max)) return expected;
  return undefined;
}

/** Checks an absolute http:// or https:// URL with a host, e.g. an upstream server. */
export function checkHttpUrl(text: string): string | undefined {
  const expected = 'expected an absolute http:// or https:// URL like "http://10.0.0.1:8080"';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return expected;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `${expected} (scheme "${url.protocol.slice(0, -1)}" is not supported)`;
  }
  if (url.hostname === "") return `${expected} (the host is missing)`;
  return undefined;
}

/**
 * Checks a reference to a router, service or middleware: a name, optionally
 * qualified with its provider (`api@internal`, `auth@file`).
 */
export function checkReference(text: string): string | undefined {
  if (!/^[^\s@]+(@[A-Za-z0-9_-]+)?$/.test(text)) {
    return 'expected a name, optionally with a provider, like "app" or "app@file"';
  }
  return undefined;
}

/** Checks a name the user gives to a router, service, middleware, entrypoint, … */
export function checkName(name: string): string | undefined {
  if (name === "" || /[\s@/]/.test(name)) {
    return 'invalid name; names must not be empty or contain spaces, "@" or "/"';
  }
  return undefined;
}

/** Checks a domain name for a certificate, allowing one leading `*.` wildcard label. */
export function checkDomain(text: string): string | undefined {
  const labels = text.split(".");
  const ok = labels.every((label, index) =>
    (index === 0 && label === "*" && labels.length > 1) ||
    /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label)
  );
  return ok ? undefined : 'expected a domain name like "example.com" or "*.example.com"';
}

/** Checks a peer or KV endpoint: `host:port` or an http(s) URL. */
export function checkEndpoint(text: string): string | undefined {
  const expected = 'expected "host:port" or a URL like "http://10.0.0.2:2379"';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    try {
      const url = new URL(text);
      return url.hostname === "" ? expected : undefined;
    } catch {
      return expected;
    }
  }
  const parsed = parseListenAddress(text);
  if (typeof parsed === "string" || parsed.hostname === "") return expected;
  return undefined;
}
