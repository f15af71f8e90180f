/**
 * @module
 * The rule AST: what `parseRule` returns and `printRule` prints. It carries no source
 * positions, so two rules that differ only in spacing, quoting or parentheses that do not
 * change grouping have equal ASTs (property-based tests rely on this).
 */

/** The Traefik v3 HTTP matcher names, in the order error messages list them. */
export const MATCHER_NAMES = [
  "Host",
  "HostRegexp",
  "Path",
  "PathPrefix",
  "PathRegexp",
  "Method",
  "Header",
  "HeaderRegexp",
  "Query",
  "QueryRegexp",
  "ClientIP",
] as const;

/** One of the Traefik v3 HTTP matcher names, in canonical spelling. */
export type MatcherName = typeof MATCHER_NAMES[number];

/** How many values each matcher takes (Traefik's `expectNParameters`). */
export const MATCHER_ARITY: Readonly<Record<MatcherName, readonly number[]>> = {
  Host: [1],
  HostRegexp: [1],
  Path: [1],
  PathPrefix: [1],
  PathRegexp: [1],
  Method: [1],
  Header: [2],
  HeaderRegexp: [2],
  Query: [1, 2],
  QueryRegexp: [1, 2],
  ClientIP: [1],
};

/** A matcher call such as ``Host(`a.com`)``; `args` are the unquoted values. */
export interface MatcherNode {
  type: "matcher";
  name: MatcherName;
  args: string[];
}

/** `!expr`. */
export interface NotNode {
  type: "not";
  expr: RuleAST;
}

/** `left && right` or `left || right`; chains are left-associative. */
export interface BinaryNode {
  type: "and" | "or";
  left: RuleAST;
  right: RuleAST;
}

/** A parsed rule. */
export type RuleAST = MatcherNode | NotNode | BinaryNode;

/**
 * Spellings Traefik accepts for a matcher name: as written, lower case, UPPER case and
 * Title case (`PathPrefix`, `pathprefix`, `PATHPREFIX`, `Pathprefix`), nothing else.
 */
export function matcherSpellings(name: string): string[] {
  const lower = name.toLowerCase();
  return [name, lower, name.toUpperCase(), lower.charAt(0).toUpperCase() + lower.slice(1)];
}

export function spellingTable(names: readonly string[]): Map<string, string> {
  const table = new Map<string, string>();
  for (const name of names) {
    for (const spelling of matcherSpellings(name)) table.set(spelling, name);
  }
  return table;
}

/** Accepted spelling → canonical v3 matcher name. */
export const V3_SPELLINGS: ReadonlyMap<string, string> = spellingTable(MATCHER_NAMES);

/**
 * v3 plus Traefik v2 matcher names: `parseDomains` (like Traefik's ParseDomains) accepts
 * both syntaxes because it runs before the router's syntax is known.
 */
export const V2_AND_V3_SPELLINGS: ReadonlyMap<string, string> = spellingTable([
  ...MATCHER_NAMES,
  "Headers",
  "HeadersRegexp",
  "HostHeader",
]);
