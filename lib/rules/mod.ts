/**
 * @module
 * The Traefik v3 HTTP rule engine: rule grammar → AST → compiled predicate, default
 * priority, the domains a rule names, and the request view predicates read.
 *
 * @example
 * ```ts
 * import { compileRule, matchRequestFrom } from "./lib/rules/mod.ts";
 * const rule = compileRule("Host(`a.com`) && PathPrefix(`/api`)");
 * Deno.serve((req, info) =>
 *   new Response(null, { status: rule.match(matchRequestFrom(req, info.remoteAddr.hostname)) ? 200 : 404 })
 * );
 * ```
 */

export { MATCHER_ARITY, MATCHER_NAMES } from "./ast.ts";
export type { BinaryNode, MatcherName, MatcherNode, NotNode, RuleAST } from "./ast.ts";
export { RuleSyntaxError } from "./errors.ts";
export { parseDomains, parseRule } from "./parser.ts";
export { compileAst, compileRule, exactHosts } from "./compile.ts";
export type { CompiledRule } from "./compile.ts";
export type { Predicate } from "./matchers.ts";
export { compareRoutes, defaultPriority, effectivePriority } from "./priority.ts";
export type { Prioritised } from "./priority.ts";
export { printRule } from "./printer.ts";
export { routingPath, RoutingPathError } from "./routing_path.ts";
export { matchRequestFrom, matchRequestFromTarget } from "./request.ts";
export type { HeaderLookup, MatchRequest } from "./request.ts";
export { canonicalHost, hostIndexKey } from "./host.ts";
export { parseQuery } from "./query.ts";
export { compileRe2, Re2Error, translateRe2 } from "./re2.ts";
