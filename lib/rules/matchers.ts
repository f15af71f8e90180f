/**
 * @module
 * One predicate builder per matcher. Values are checked here, once, when the rule is
 * parsed or compiled; the returned closures do only per-request work.
 */

import { MATCHER_ARITY, type MatcherName } from "./ast.ts";
import { hostMatcher } from "./host.ts";
import { ipChecker } from "./ip.ts";
import { queryValues } from "./query.ts";
import { compileRe2, Re2Error } from "./re2.ts";
import type { HeaderLookup, MatchRequest } from "./request.ts";

/** A compiled matcher or rule. */
export type Predicate = (req: MatchRequest) => boolean;

/** Why a matcher's values are invalid; `arg` is the index of the offending value. */
export interface MatcherProblem {
  reason: string;
  arg?: number;
}

class MatcherValueError extends Error {
  constructor(readonly problem: MatcherProblem) {
    super(problem.reason);
  }
}

const bad = (reason: string, arg?: number): never => {
  throw new MatcherValueError({ reason, arg });
};

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function regexp(name: string, pattern: string, arg: number): RegExp {
  try {
    return compileRe2(pattern);
  } catch (e) {
    if (e instanceof Re2Error) {
      return bad(`invalid Go RE2 regexp ${JSON.stringify(pattern)} in ${name}: ${e.message}`, arg);
    }
    throw e;
  }
}

/**
 * Headers joins repeated fields with ", "; Go compares each field line on its own. Test the
 * joined value first, then each field, so both one-line and repeated headers match.
 */
function headerAny(headers: HeaderLookup, key: string, test: (v: string) => boolean): boolean {
  const joined = headers.get(key);
  if (joined === null) return false;
  if (test(joined)) return true;
  if (joined.indexOf(", ") < 0) return false;
  for (const part of joined.split(", ")) if (test(part)) return true;
  return false;
}

function queryMatcher(key: string, value: string): Predicate {
  return (r) => {
    if (r.query === "") return false;
    const values = queryValues(r.query, key);
    return values !== undefined && values.includes(value);
  };
}

function arityText(name: MatcherName): string {
  const n = MATCHER_ARITY[name];
  if (name === "Header" || name === "HeaderRegexp") return "2 values (header name, value)";
  if (name === "Query" || name === "QueryRegexp") return "1 or 2 values (key, or key and value)";
  return n.map(String).join(" or ") + (n[n.length - 1] === 1 ? " value" : " values");
}

/**
 * Builds the predicate for one matcher call.
 *
 * @throws {MatcherValueError} (internal) with the reason and the offending value index.
 */
function build(name: MatcherName, args: string[]): Predicate {
  if (!MATCHER_ARITY[name].includes(args.length)) {
    bad(`${name} takes ${arityText(name)}, got ${args.length}`);
  }
  args.forEach((a, k) => {
    if (a === "") bad(`empty value for ${name}`, k);
  });
  const [a0, a1] = args;
  switch (name) {
    case "ClientIP": {
      let check: (ip: string) => boolean;
      try {
        check = ipChecker([a0]);
      } catch (e) {
        return bad(`invalid ClientIP value: ${(e as Error).message}`, 0);
      }
      return (r) => check(r.clientIp);
    }
    case "Method": {
      const m = a0.toUpperCase();
      return (r) => r.method === m;
    }
    case "Host": {
      if (!isAscii(a0)) {
        bad(
          `invalid Host value ${
            JSON.stringify(a0)
          }: non-ASCII characters are not allowed (use the punycode form, xn--...)`,
          0,
        );
      }
      const m = hostMatcher(a0);
      return (r) => m(r.host);
    }
    case "HostRegexp": {
      if (!isAscii(a0)) {
        bad(
          `invalid HostRegexp value ${JSON.stringify(a0)}: non-ASCII characters are not allowed`,
          0,
        );
      }
      const re = regexp(name, a0, 0);
      return (r) => re.test(r.host);
    }
    case "Path":
    case "PathPrefix": {
      if (a0[0] !== "/") bad(`${name} value ${JSON.stringify(a0)} must start with "/"`, 0);
      return name === "Path" ? (r) => r.path === a0 : (r) => r.path.startsWith(a0);
    }
    case "PathRegexp": {
      const re = regexp(name, a0, 0);
      return (r) => re.test(r.path);
    }
    case "Header": {
      if (!HEADER_NAME.test(a0)) return () => false;
      return (r) => headerAny(r.headers, a0, (v) => v === a1);
    }
    case "HeaderRegexp": {
      const re = regexp(name, a1, 1);
      if (!HEADER_NAME.test(a0)) return () => false;
      return (r) => headerAny(r.headers, a0, (v) => re.test(v));
    }
    case "Query":
      return queryMatcher(a0, a1 ?? "");
    case "QueryRegexp": {
      if (args.length === 1) return queryMatcher(a0, "");
      const re = regexp(name, a1, 1);
      return (r) => {
        if (r.query === "") return false;
        const values = queryValues(r.query, a0);
        return values !== undefined && values.some((v) => re.test(v));
      };
    }
  }
}

/** Checks a matcher's values; returns the problem, or `undefined` if they are valid. */
export function validateMatcher(name: MatcherName, args: string[]): MatcherProblem | undefined {
  try {
    build(name, args);
    return undefined;
  } catch (e) {
    if (e instanceof MatcherValueError) return e.problem;
    throw e;
  }
}

/** Builds the predicate for a matcher whose values were validated by the parser. */
export function buildMatcher(name: MatcherName, args: string[]): Predicate {
  return build(name, args);
}
