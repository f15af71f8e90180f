/**
 * DNS name-server addresses as configs write them (`dnsChallenge.resolvers`,
 * lego's variables), parsed once for the static config and the DNS-01 code.
 *
 * @module
 */

/** A name server to query. */
export interface NameServer {
  ipAddr: string;
  port: number;
}

/** `1.1.1.1`, `1.1.1.1:53` or `[2606:4700::1111]:53` (lego's form; port 53 by default), or an error message. */
export function parseNameServer(text: string): NameServer | string {
  const expected = 'expected an IP address with an optional port, like "1.1.1.1:53"';
  const t = text.trim();
  let host = t;
  let port = 53;
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(t);
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d+))?$/.exec(t);
  if (v6) {
    host = v6[1];
    if (v6[2]) port = Number(v6[2]);
  } else if (v4) {
    host = v4[1];
    if (v4[2]) port = Number(v4[2]);
    if (host.split(".").some((o) => Number(o) > 255)) return expected;
  } else if (/^[0-9a-fA-F:]+$/.test(t) && t.includes(":")) {
    host = t;
  } else return expected;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return expected;
  return { ipAddr: host, port };
}
