/**
 * Fuzzing the rule parser: arbitrary text never crashes it (only a
 * `RuleSyntaxError` or a compile error naming the problem), never takes
 * long, and whatever parses prints back to a rule with the same AST.
 * (`rules_print_property_test.ts` starts from generated ASTs; this starts
 * from generated text.) `FUZZ_RUNS` raises the case count (`deno task fuzz`).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { compileRule, parseRule, printRule, RuleSyntaxError } from "../lib/rules/mod.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 300);
/** Per case; a parser that backtracks exponentially would blow through it. */
const BOUND_MS = 250;

/** Text built from the grammar's own pieces, so the parser gets deep, not just the first token. */
const ruleText = fc.array(
  fc.oneof(
    fc.constantFrom(
      "Host(",
      "PathPrefix(",
      "Path(",
      "Header(",
      "HeaderRegexp(",
      "Query(",
      "Method(",
      "ClientIP(",
      "HostRegexp(",
      "PathRegexp(",
      "QueryRegexp(",
      "HostSNI(",
      ")",
      "(",
      "&&",
      "||",
      "!",
      ",",
      " ",
      "`a.com`",
      "`/x`",
      '"b"',
      "`10.0.0.0/8`",
      "`^/a(b|c)*$`",
      "`",
      '"',
      "\\",
      "\n",
      "((((",
      "))))",
      "`(a+)+$`",
      "`[[:alpha:]]`",
      "`*.x.org`",
      "`GET`",
    ),
    fc.string({ maxLength: 4 }),
  ),
  { maxLength: 24 },
).map((parts) => parts.join(""));

/** Well-formed-ish rules written the ways people write them: spacing, quoting, nesting. */
const sp = fc.constantFrom("", " ", "  ", "\t");
const arg = fc.oneof(
  fc.stringMatching(/^[a-z0-9./*^$()|+-]{0,8}$/).map((v) => `\`${v}\``),
  fc.stringMatching(/^[a-z0-9./ -]{0,8}$/).map((v) => JSON.stringify(v)),
);
const call = fc.tuple(
  fc.constantFrom(
    "Host",
    "PathPrefix",
    "Path",
    "Method",
    "HostRegexp",
    "PathRegexp",
    "Header",
    "Query",
    "ClientIP",
  ),
  fc.array(arg, { minLength: 1, maxLength: 2 }),
  sp,
).map(([n, args, s]) => `${n}(${s}${args.join(`,${s}`)}${s})`);
const structured: fc.Arbitrary<string> = fc.letrec<{ rule: string }>((tie) => ({
  rule: fc.oneof(
    { depthSize: "small" },
    call,
    fc.tuple(tie("rule"), fc.constantFrom("&&", "||"), tie("rule"), sp).map(([a, op, b, s]) =>
      `${a}${s}${op}${s}${b}`
    ),
    fc.tuple(tie("rule"), sp).map(([a, s]) => `!${s}${a}`),
    fc.tuple(tie("rule"), sp).map(([a, s]) => `(${s}${a}${s})`),
  ),
})).rule;

const anyText = fc.oneof(
  structured,
  ruleText,
  fc.string({ maxLength: 64 }),
  fc.string({ unit: "binary", maxLength: 64 }),
);

function timed<T>(fn: () => T): { value?: T; error?: unknown; ms: number } {
  const t = performance.now();
  try {
    return { value: fn(), ms: performance.now() - t };
  } catch (error) {
    return { error, ms: performance.now() - t };
  }
}

Deno.test("fuzz: parseRule on arbitrary text returns an AST or a RuleSyntaxError, quickly", () => {
  fc.assert(
    fc.property(anyText, (text) => {
      const r = timed(() => parseRule(text));
      assert.ok(r.ms < BOUND_MS, `parse took ${r.ms.toFixed(1)} ms for ${JSON.stringify(text)}`);
      if (r.error !== undefined) {
        assert.ok(
          r.error instanceof RuleSyntaxError,
          `unexpected ${String(r.error)} for ${JSON.stringify(text)}`,
        );
        assert.ok((r.error as Error).message.length > 0);
      }
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz: compileRule never throws anything but an Error with a message, quickly", () => {
  fc.assert(
    fc.property(anyText, (text) => {
      const r = timed(() => compileRule(text, 0));
      assert.ok(r.ms < BOUND_MS, `compile took ${r.ms.toFixed(1)} ms for ${JSON.stringify(text)}`);
      if (r.error !== undefined) {
        const e = r.error as Error;
        assert.ok(
          e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError),
          `${e} for ${JSON.stringify(text)}`,
        );
        assert.ok(e.message.length > 0);
      }
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz: what parses prints back to the same AST", () => {
  let parsed = 0;
  fc.assert(
    fc.property(fc.oneof(structured, ruleText), (text) => {
      let ast;
      try {
        ast = parseRule(text);
      } catch {
        return; // not a rule; covered above
      }
      parsed++;
      const printed = printRule(ast);
      assert.deepEqual(
        parseRule(printed),
        ast,
        `${JSON.stringify(text)} printed as ${JSON.stringify(printed)}`,
      );
    }),
    { numRuns: RUNS * 3 },
  );
  assert.ok(parsed > 0, "some generated text was a valid rule");
});
