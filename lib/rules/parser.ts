/**
 * @module
 * Rule string → AST. Grammar (Go operator precedence, as Traefik parses rules with Go's
 * expression parser): `!` binds tighter than `&&`, which binds tighter than `||`; both
 * binary operators are left-associative; parentheses group.
 *
 * ```
 * or      := and ( "||" and )*
 * and     := unary ( "&&" unary )*
 * unary   := "!" unary | "(" or ")" | call
 * call    := Name "(" [ string ( "," string )* [ "," ] ] ")"
 * ```
 */

import {
  MATCHER_NAMES,
  type MatcherName,
  type RuleAST,
  V2_AND_V3_SPELLINGS,
  V3_SPELLINGS,
} from "./ast.ts";
import { RuleSyntaxError } from "./errors.ts";
import { nearText, type Token, tokenize } from "./lexer.ts";
import { validateMatcher } from "./matchers.ts";

interface RawArg {
  value: string;
  start: number;
}

/** A parsed rule before its matchers are checked (shared with the TCP rule engine). */
export type RawNode =
  | { type: "call"; name: string; args: RawArg[]; start: number; end: number }
  | { type: "not"; expr: RawNode }
  | { type: "and" | "or"; left: RawNode; right: RawNode };

const VALID_MATCHERS_HINT = `valid matchers: ${MATCHER_NAMES.join(", ")}`;

/**
 * Parses without checking arity or values; matcher names are resolved
 * through `spellings`, and `names` are the ones error hints list.
 */
export function parseRaw(
  rule: string,
  spellings: ReadonlyMap<string, string>,
  names: readonly string[] = MATCHER_NAMES,
): RawNode {
  const validHint = names === MATCHER_NAMES
    ? VALID_MATCHERS_HINT
    : `valid matchers: ${names.join(", ")}`;
  const fail = (reason: string, at: number, near?: string, hint?: string): never => {
    throw new RuleSyntaxError(rule, reason, at, near ?? nearText(rule, at), hint);
  };
  if (rule.trim() === "") {
    fail("empty rule; expected a matcher such as Host(`example.com`)", 0);
  }
  const tokens = tokenize(rule);
  let pos = 0;
  const peek = (): Token => tokens[pos];
  const describe = (t: Token) =>
    t.kind === "eof"
      ? "end of rule"
      : t.kind === "invalid"
      ? `unexpected character ${JSON.stringify(t.value)}${t.hint ? ` (${t.hint})` : ""}`
      : JSON.stringify(t.value);

  const parseOr = (): RawNode => {
    let left = parseAnd();
    while (peek().kind === "||") {
      pos++;
      left = { type: "or", left, right: parseAnd() };
    }
    return left;
  };
  const parseAnd = (): RawNode => {
    let left = parseUnary();
    while (peek().kind === "&&") {
      pos++;
      left = { type: "and", left, right: parseUnary() };
    }
    return left;
  };
  const parseUnary = (): RawNode => {
    const t = peek();
    if (t.kind === "!") {
      pos++;
      return { type: "not", expr: parseUnary() };
    }
    if (t.kind === "(") {
      pos++;
      const inner = parseOr();
      const close = peek();
      if (close.kind !== ")") {
        fail(
          `expected ")" to close the "(" at column ${t.start + 1}, found ${describe(close)}`,
          close.start,
        );
      }
      pos++;
      return inner;
    }
    if (t.kind === "ident") return parseCall();
    if (t.kind === "string") {
      return fail(
        `expected a matcher before value ${JSON.stringify(t.value)}`,
        t.start,
        undefined,
        validHint,
      );
    }
    return fail(`expected a matcher, "!" or "(", found ${describe(t)}`, t.start);
  };
  const parseCall = (): RawNode => {
    const nameTok = tokens[pos++];
    const name = spellings.get(nameTok.value);
    if (tokens[pos].kind !== "(") {
      if (name === undefined) {
        fail(
          `unknown matcher ${JSON.stringify(nameTok.value)}`,
          nameTok.start,
          undefined,
          validHint,
        );
      }
      fail(
        `expected "(" after matcher ${JSON.stringify(nameTok.value)}, found ${
          describe(tokens[pos])
        }`,
        tokens[pos].start,
      );
    }
    pos++;
    const args: RawArg[] = [];
    while (peek().kind !== ")") {
      const t = peek();
      if (t.kind !== "string") {
        const what = t.kind === "ident"
          ? `unquoted value starting with ${JSON.stringify(t.value)}`
          : describe(t);
        fail(
          `expected a value in backticks or double quotes in ${nameTok.value}(...), found ${what}`,
          t.start,
        );
      }
      args.push({ value: t.value, start: t.start });
      pos++;
      if (peek().kind === ",") pos++;
      else if (peek().kind !== ")") {
        fail(`expected "," or ")" after a value, found ${describe(peek())}`, peek().start);
      }
    }
    const end = tokens[pos++].end;
    if (name === undefined) {
      const canonical = names.find((m) => m.toLowerCase() === nameTok.value.toLowerCase());
      fail(
        `unknown matcher ${JSON.stringify(nameTok.value)}`,
        nameTok.start,
        rule.slice(nameTok.start, end),
        canonical
          ? `matcher names are case-sensitive: write ${canonical}, ${canonical.toLowerCase()}, ${canonical.toUpperCase()} or ${
            canonical.charAt(0) + canonical.slice(1).toLowerCase()
          }`
          : validHint,
      );
    }
    return { type: "call", name: name!, args, start: nameTok.start, end };
  };

  const tree = parseOr();
  const rest = peek();
  if (rest.kind !== "eof") {
    const hint = rest.kind === "ident" || rest.kind === "(" || rest.kind === "!"
      ? `join conditions with "&&" or "||"`
      : undefined;
    fail(
      `unexpected ${
        rest.kind === "invalid" ? describe(rest).replace("unexpected ", "") : describe(rest)
      } after a complete expression`,
      rest.start,
      undefined,
      hint,
    );
  }
  return tree;
}

/**
 * Parses and validates a Traefik v3 rule.
 *
 * @throws {RuleSyntaxError} on a syntax error, an unknown matcher, a wrong number of values,
 *   an empty value or an invalid value (bad regexp, IP, path without a leading `/`, ...).
 * @example
 * ```ts
 * const ast = parseRule("Host(`a.com`) && PathPrefix(`/api`)");
 * // { type: "and", left: { type: "matcher", name: "Host", args: ["a.com"] }, right: ... }
 * ```
 */
export function parseRule(rule: string): RuleAST {
  const toAst = (node: RawNode): RuleAST => {
    switch (node.type) {
      case "and":
      case "or":
        return { type: node.type, left: toAst(node.left), right: toAst(node.right) };
      case "not":
        return { type: "not", expr: toAst(node.expr) };
      case "call": {
        const name = node.name as MatcherName;
        const values = node.args.map((a) => a.value);
        const problem = validateMatcher(name, values);
        if (problem) {
          const at = problem.arg === undefined ? node.start : node.args[problem.arg].start;
          throw new RuleSyntaxError(rule, problem.reason, at, rule.slice(node.start, node.end));
        }
        return { type: "matcher", name, args: values };
      }
    }
  };
  return toAst(parseRaw(rule, V3_SPELLINGS));
}

/**
 * The domains of the positive (not negated) `Host` matchers of a rule, lowercased, in
 * source order, as Traefik's `ParseDomains`: it accepts v2 and v3 matcher names, does not
 * check arity, and returns `[]` for a rule it cannot parse. Negation is pushed down first,
 * so `!(!Host(`a`))` yields `a`. Used to know which certificates a router needs.
 *
 * @example
 * ```ts
 * parseDomains("Host(`Foo.Bar`) || Host(`bar.buz`) && Path(`/test`)"); // ["foo.bar", "bar.buz"]
 * ```
 */
export function parseDomains(rule: string): string[] {
  let tree: RawNode;
  try {
    tree = parseRaw(rule, V2_AND_V3_SPELLINGS);
  } catch {
    return [];
  }
  const out: string[] = [];
  const walk = (node: RawNode, negated: boolean) => {
    if (node.type === "not") walk(node.expr, !negated);
    else if (node.type === "call") {
      if (!negated && node.name === "Host") {
        for (const a of node.args) out.push(a.value.toLowerCase());
      }
    } else {
      walk(node.left, negated);
      walk(node.right, negated);
    }
  };
  walk(tree, false);
  return out;
}
