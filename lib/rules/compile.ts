/**
 * @module
 * Rule → compiled predicate, plus the host set the router indexes by.
 */

import type { RuleAST } from "./ast.ts";
import { hostIndexKey } from "./host.ts";
import { buildMatcher, type Predicate } from "./matchers.ts";
import { parseRule } from "./parser.ts";
import { effectivePriority } from "./priority.ts";
import type { MatchRequest } from "./request.ts";

/** A rule ready for the request path. */
export interface CompiledRule {
  /** The rule as given. */
  readonly rule: string;
  readonly ast: RuleAST;
  /** The effective priority: the one given, or the default when it is 0 or missing. */
  readonly priority: number;
  /** See {@link exactHosts}: `undefined` when the rule can match any host. */
  readonly hosts: string[] | undefined;
  /** Whether the rule matches the request. Does no I/O and does not throw. */
  match(req: MatchRequest): boolean;
}

/** Compiles an AST (whose values were validated by `parseRule`) into one closure. */
export function compileAst(ast: RuleAST): Predicate {
  switch (ast.type) {
    case "matcher":
      return buildMatcher(ast.name, ast.args);
    case "not": {
      const inner = compileAst(ast.expr);
      return (r) => !inner(r);
    }
    case "and": {
      const l = compileAst(ast.left);
      const r = compileAst(ast.right);
      return (q) => l(q) && r(q);
    }
    case "or": {
      const l = compileAst(ast.left);
      const r = compileAst(ast.right);
      return (q) => l(q) || r(q);
    }
  }
}

/**
 * Parses, validates and compiles a rule.
 *
 * @param priority the router's priority; 0 or missing means the default (byte length).
 * @throws {RuleSyntaxError} for any invalid rule.
 * @example
 * ```ts
 * const rule = compileRule("Host(`a.com`) && PathPrefix(`/api`)");
 * rule.match(matchRequestFrom(req, info.remoteAddr.hostname)); // boolean
 * rule.hosts;    // ["a.com"]
 * rule.priority; // 35
 * ```
 */
export function compileRule(rule: string, priority?: number): CompiledRule {
  const ast = parseRule(rule);
  return {
    rule,
    ast,
    priority: effectivePriority(rule, priority),
    hosts: exactHosts(ast),
    match: compileAst(ast),
  };
}

type HostSet = Set<string> | undefined;

function literalKeys(expr: string): HostSet {
  const h = expr.toLowerCase();
  if (h.startsWith("*")) return undefined;
  // Host(`a.`) also matches "a" and "a.."; Host(`a`) matches "a" and "a.".
  return h.endsWith(".") ? new Set([hostIndexKey(h), h]) : new Set([h]);
}

function both(a: HostSet, b: HostSet): HostSet {
  if (!a) return b;
  if (!b) return a;
  return new Set([...a].filter((h) => b.has(h)));
}

function either(a: HostSet, b: HostSet): HostSet {
  return a && b ? new Set([...a, ...b]) : undefined;
}

function hostsOf(ast: RuleAST, negated: boolean): HostSet {
  switch (ast.type) {
    case "matcher":
      return !negated && ast.name === "Host" ? literalKeys(ast.args[0]) : undefined;
    case "not":
      return hostsOf(ast.expr, !negated);
    case "and":
    case "or": {
      // De Morgan: under negation, && behaves as || and vice versa.
      const conj = (ast.type === "and") !== negated;
      const l = hostsOf(ast.left, negated);
      const r = hostsOf(ast.right, negated);
      return conj ? both(l, r) : either(l, r);
    }
  }
}

/**
 * The host index keys a rule requires, for dispatching by host before running rules.
 *
 * Contract: if `exactHosts(ast)` returns a list `S`, then for every request `r`,
 * `match(r)` implies `hostIndexKey(r.host)` is in `S` (the key is the canonical host with
 * one trailing dot removed). So a router may try the rule only for requests whose key is
 * in `S`, and must still run `match`. `[]` means the rule can never match. `undefined`
 * means the rule may match some host not listed (no positive literal `Host` constrains it,
 * e.g. `PathPrefix(...)`, `HostRegexp(...)`, `Host(`*.a.com`)`, `!Host(...)`, or
 * `Host(a) || Path(...)`): put it in the host-agnostic list, tried for every request.
 *
 * Keys are lowercased; they are sorted for stable output.
 *
 * @example
 * ```ts
 * exactHosts(parseRule("(Host(`a.com`) || Host(`B.com`)) && Path(`/`)")); // ["a.com", "b.com"]
 * exactHosts(parseRule("Host(`a.com`) || Path(`/`)"));                    // undefined
 * ```
 */
export function exactHosts(ast: RuleAST): string[] | undefined {
  const set = hostsOf(ast, false);
  return set ? [...set].sort() : undefined;
}
