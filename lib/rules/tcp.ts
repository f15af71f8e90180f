/**
 * @module
 * The Traefik v3 TCP rule engine: the same grammar as HTTP rules (`&&`,
 * `||`, `!`, parentheses) over the four TCP matchers, evaluated on what a
 * connection shows before any byte is forwarded: the TLS ClientHello's SNI
 * name and ALPN protocols, and the client address.
 *
 * - `HostSNI(`*`)` matches every connection, TLS or not, with or without SNI;
 *   alone it is a catch-all, tried after every specific route.
 * - `HostSNI(`a.example`)` matches that SNI name, case-insensitively, with a
 *   trailing dot ignored; `*.example` matches one first label.
 * - `HostSNIRegexp` is a Go RE2 expression on the SNI name.
 * - `ALPN(`h2`)` matches an offered protocol; `acme-tls/1` is refused.
 * - `ClientIP` takes an address or CIDR range.
 * - The default priority is the rule's length, and -1 for `HostSNI(`*`)` alone.
 */

import { spellingTable } from "./ast.ts";
import { RuleSyntaxError } from "./errors.ts";
import { ipChecker } from "./ip.ts";
import { parseRaw, type RawNode } from "./parser.ts";
import { defaultPriority } from "./priority.ts";
import { compileRe2, Re2Error } from "./re2.ts";

/** The Traefik v3 TCP matcher names. */
export const TCP_MATCHER_NAMES = ["HostSNI", "HostSNIRegexp", "ClientIP", "ALPN"] as const;
export type TcpMatcherName = typeof TCP_MATCHER_NAMES[number];

const TCP_SPELLINGS = spellingTable(TCP_MATCHER_NAMES);

/** What a TCP rule sees of a connection. */
export interface TcpConnData {
  /** The SNI name, lower-cased; "" for no SNI or a connection that is not TLS. */
  serverName: string;
  clientIp: string;
  /** ALPN protocols the client offered; [] when none. */
  alpn: readonly string[];
}

/** A compiled TCP rule. */
export interface CompiledTcpRule {
  readonly rule: string;
  readonly priority: number;
  /** True for `HostSNI(`*`)` alone: tried after every specific route of its kind. */
  readonly catchAll: boolean;
  /** Every `HostSNI` value in the rule (Traefik's ParseHostSNI), lower-cased. */
  readonly hostSNIs: string[];
  match(conn: TcpConnData): boolean;
}

type TcpPredicate = (conn: TcpConnData) => boolean;

/** Traefik's `hostOrIP`: word characters, dots, dashes and colons, with an optional `*.` first label. */
const HOST_OR_IP = /^(\*\.)?[\w.\-:]+$/;
const ACME_TLS_ALPN = "acme-tls/1";

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Traefik's DomainMatchHostExpression: a leading `*` stands for exactly the first label. */
function hostSniMatcher(expr: string): TcpPredicate {
  const host = (expr.endsWith(".") ? expr.slice(0, -1) : expr).toLowerCase();
  if (host.startsWith("*")) {
    const suffix = host.slice(1);
    return (c) => {
      if (c.serverName === "") return false;
      const dot = c.serverName.indexOf(".");
      return dot >= 0 ? c.serverName.slice(dot) === suffix : suffix === "";
    };
  }
  return (c) => c.serverName !== "" && c.serverName === host;
}

/** Builds one matcher; returns the reason its value is refused as a string. */
function buildMatcher(name: TcpMatcherName, args: string[]): TcpPredicate | string {
  if (args.length !== 1) return `${name} takes 1 value, got ${args.length}`;
  const value = args[0];
  if (value === "") return `empty value for ${name}`;
  switch (name) {
    case "HostSNI": {
      if (value === "*") return () => true;
      if (!HOST_OR_IP.test(value)) {
        return `invalid HostSNI value ${JSON.stringify(value)}: not a valid hostname`;
      }
      return hostSniMatcher(value);
    }
    case "HostSNIRegexp": {
      if (!isAscii(value)) {
        return `invalid HostSNIRegexp value ${JSON.stringify(value)}: not a valid hostname`;
      }
      try {
        const re = compileRe2(value);
        return (c) => re.test(c.serverName);
      } catch (e) {
        if (e instanceof Re2Error) {
          return `invalid Go RE2 regexp ${JSON.stringify(value)} in HostSNIRegexp: ${e.message}`;
        }
        throw e;
      }
    }
    case "ClientIP": {
      try {
        const check = ipChecker([value]);
        return (c) => check(c.clientIp);
      } catch (e) {
        return `invalid ClientIP value: ${(e as Error).message}`;
      }
    }
    case "ALPN":
      if (value === ACME_TLS_ALPN) {
        return `ALPN value "${ACME_TLS_ALPN}" is not allowed (it is reserved for ACME TLS-ALPN challenges)`;
      }
      return (c) => c.alpn.includes(value);
  }
}

function compile(rule: string, node: RawNode): TcpPredicate {
  switch (node.type) {
    case "not": {
      const inner = compile(rule, node.expr);
      return (c) => !inner(c);
    }
    case "and": {
      const l = compile(rule, node.left), r = compile(rule, node.right);
      return (c) => l(c) && r(c);
    }
    case "or": {
      const l = compile(rule, node.left), r = compile(rule, node.right);
      return (c) => l(c) || r(c);
    }
    case "call": {
      const values = node.args.map((a) => a.value);
      const built = buildMatcher(node.name as TcpMatcherName, values);
      if (typeof built === "string") {
        const bad = values.findIndex((v) => v === "" || built.includes(JSON.stringify(v)));
        const at = bad >= 0 && node.args[bad] ? node.args[bad].start : node.start;
        throw new RuleSyntaxError(rule, built, at, rule.slice(node.start, node.end));
      }
      return built;
    }
  }
}

function hostSniValues(node: RawNode, out: string[]): string[] {
  if (node.type === "call") {
    if (node.name === "HostSNI") { for (const a of node.args) out.push(a.value.toLowerCase()); }
  } else if (node.type === "not") hostSniValues(node.expr, out);
  else {
    hostSniValues(node.left, out);
    hostSniValues(node.right, out);
  }
  return out;
}

/**
 * The `HostSNI` values of a rule, lower-cased, as Traefik's ParseHostSNI:
 * matcher values are not checked (so `HostSNI()` gives none), but the
 * grammar and the matcher names are.
 *
 * @throws {RuleSyntaxError} for a syntax error or an unknown matcher.
 * @example
 * ```ts
 * parseHostSNI("HostSNI(`Foo.Bar`) && ClientIP(`10.1`)"); // ["foo.bar"]
 * ```
 */
export function parseHostSNI(rule: string): string[] {
  return hostSniValues(parseRaw(rule, TCP_SPELLINGS, TCP_MATCHER_NAMES), []);
}

/**
 * Parses, validates and compiles a TCP rule.
 *
 * @param priority the router's priority; 0 or missing means the default.
 * @throws {RuleSyntaxError} for any invalid rule.
 * @example
 * ```ts
 * const rule = compileTcpRule("HostSNI(`db.example.com`) && ClientIP(`10.0.0.0/8`)");
 * rule.match({ serverName: "db.example.com", clientIp: "10.1.2.3", alpn: [] }); // true
 * ```
 */
export function compileTcpRule(rule: string, priority?: number): CompiledTcpRule {
  const tree = parseRaw(rule, TCP_SPELLINGS, TCP_MATCHER_NAMES);
  const match = compile(rule, tree);
  let bare = tree;
  while (bare.type === "not") bare = bare.expr;
  const catchAll = bare.type === "call" && bare.name === "HostSNI" && bare.args.length === 1 &&
    bare.args[0].value === "*";
  return {
    rule,
    priority: priority ? priority : catchAll && tree === bare ? -1 : defaultPriority(rule),
    catchAll,
    hostSNIs: hostSniValues(tree, []),
    match,
  };
}
