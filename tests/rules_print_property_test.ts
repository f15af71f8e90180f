/**
 * @module
 * Property: for any valid rule AST, printRule's output parses back to the same AST, and
 * the compiled original and reprinted rules agree on sampled requests.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  compileRule,
  type MatchRequest,
  parseRule,
  printRule,
  type RuleAST,
} from "../lib/rules/mod.ts";

const text = fc.string({
  minLength: 1,
  maxLength: 6,
  unit: fc.constantFrom("a", "b", "`", '"', "\\", "\n", "\r", "é", " ", "."),
});
const matcher: fc.Arbitrary<RuleAST> = fc.oneof(
  fc.constantFrom("a.com", "B.com", "*.x.org", "a.com.").map((h) =>
    ({ type: "matcher", name: "Host", args: [h] }) as RuleAST
  ),
  text.map((p) => ({ type: "matcher", name: "Path", args: ["/" + p] }) as RuleAST),
  text.map((p) => ({ type: "matcher", name: "PathPrefix", args: ["/" + p] }) as RuleAST),
  fc.tuple(fc.constantFrom("X-A", "x-b"), text).map(([k, v]) =>
    ({ type: "matcher", name: "Header", args: [k, v] }) as RuleAST
  ),
  fc.tuple(text, fc.option(text, { nil: undefined })).map(([k, v]) =>
    ({ type: "matcher", name: "Query", args: v === undefined ? [k] : [k, v] }) as RuleAST
  ),
  fc.constantFrom("^/a", "(?i)b$", "[[:alpha:]]+").map((re) =>
    ({ type: "matcher", name: "PathRegexp", args: [re] }) as RuleAST
  ),
  fc.constantFrom("GET", "post").map((m) =>
    ({ type: "matcher", name: "Method", args: [m] }) as RuleAST
  ),
);
const ast: fc.Arbitrary<RuleAST> = fc.letrec<{ node: RuleAST }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    matcher,
    tie("node").map((expr) => ({ type: "not", expr }) as RuleAST),
    fc.tuple(fc.constantFrom("and", "or"), tie("node"), tie("node")).map(([type, left, right]) =>
      ({ type, left, right }) as RuleAST
    ),
  ),
})).node;

const requests: MatchRequest[] = ["/a", "/b", "/aé", "/"].flatMap((path) =>
  ["a.com", "y.x.org", "b.com"].map((host) => ({
    method: "GET",
    host,
    path,
    query: "a=b&b",
    headers: new Headers({ "x-a": "a" }),
    clientIp: "10.0.0.1",
  }))
);

Deno.test("rules: printRule output parses back to the same AST", () => {
  fc.assert(
    fc.property(ast, (tree) => {
      const printed = printRule(tree);
      assert.deepEqual(parseRule(printed), tree, printed);
      const a = compileRule(printed);
      const b = compileRule(printRule(parseRule(printed)));
      for (const r of requests) assert.equal(a.match(r), b.match(r));
    }),
    { numRuns: 300 },
  );
});
