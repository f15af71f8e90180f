/**
 * Types a parsed Go expression the way `vulcand/predicate` does for oxy,
 * so Portico refuses exactly what Traefik refuses:
 *
 * - `&&` and `||` join conditions; a comparison is `Metric() OP literal`,
 *   the metric on the left (oxy's operators take the mapper first).
 * - Literals keep their Go type: a ratio (float64) compares with `0.5` or
 *   `1.0`, never `1`; a count or a latency (int) with `50`, never `50.5`.
 *   Function arguments are typed the same way: `LatencyAtQuantileMS(50.0)`.
 * - There is no `!`, no arithmetic, no identifiers: each is refused.
 *
 * A language is a table of functions; circuitBreaker and buffering each
 * define theirs. Compiled once; the result is a plain function. Pure.
 *
 * @module
 */

import {
  ExpressionError,
  type GoLiteral,
  type GoNode,
  parseGoExpression,
} from "./go_expression.ts";

export { ExpressionError } from "./go_expression.ts";

/** Go types a function can take or give. */
export type GoType = "int" | "int64" | "float64" | "string";

/** One function of an expression language. */
export interface PredicateFunction<C> {
  params: readonly ("int" | "float64" | "string")[];
  /** What a call gives: a value to compare, or a condition. */
  returns: GoType | "condition";
  /** Binds the (typed) arguments once; the result reads a context per evaluation. */
  bind(args: (number | string)[]): (ctx: C) => number | string | boolean;
}

type Value<C> =
  | { kind: "literal"; type: "int" | "float64" | "string"; value: number | string; at: number }
  | { kind: "metric"; type: GoType; read: (ctx: C) => number | string; label: string; at: number }
  | { kind: "condition"; test: (ctx: C) => boolean; at: number };

const COMPARE: Record<string, (a: number | string, b: number | string) => boolean> = {
  "==": (a, b) => a === b,
  "!=": (a, b) => a !== b,
  "<": (a, b) => a < b,
  "<=": (a, b) => a <= b,
  ">": (a, b) => a > b,
  ">=": (a, b) => a >= b,
};

const TYPE_WORDS: Record<string, string> = {
  int: "an integer such as 50",
  int64: "an integer such as 20",
  float64: "a decimal number such as 0.5 (with a dot: 1.0, not 1)",
  string: 'a quoted string such as "GET"',
};

/**
 * Compiles `src` in the language given by `functions` into a condition.
 *
 * @throws {ExpressionError} saying what oxy would refuse, and where.
 * @example
 * ```ts
 * const f = { Attempts: { params: [], returns: "int", bind: () => (c: { n: number }) => c.n } } as const;
 * compilePredicate("Attempts() < 3", f)({ n: 1 }); // true
 * ```
 */
export function compilePredicate<C>(
  src: string,
  functions: Readonly<Record<string, PredicateFunction<C>>>,
): (ctx: C) => boolean {
  const root = typeNode(parseGoExpression(src), functions);
  if (root.kind !== "condition") {
    throw new ExpressionError(
      root.kind === "metric"
        ? `${root.label} is a value, not a condition: compare it, e.g. ${root.label} > ${
          example(root.type)
        }`
        : "the expression must be a condition, not a constant",
      root.at,
    );
  }
  return root.test;
}

function example(type: GoType): string {
  return type === "float64" ? "0.5" : type === "string" ? '"GET"' : "10";
}

function typeNode<C>(
  node: GoNode,
  functions: Readonly<Record<string, PredicateFunction<C>>>,
): Value<C> {
  switch (node.type) {
    case "paren":
      return typeNode(node.inner, functions);
    case "unary":
      throw new ExpressionError(
        node.op === "!"
          ? "operator ! is not supported (oxy has no negation; invert the comparison instead)"
          : `operator ${node.op} is not supported`,
        node.at,
      );
    case "binary":
      return join(node, typeNode(node.left, functions), typeNode(node.right, functions));
    default:
      return operand(node, functions, false);
  }
}

/** predicate's evaluateExpr: literals and calls only; parentheses are not allowed here. */
function operand<C>(
  node: GoNode,
  functions: Readonly<Record<string, PredicateFunction<C>>>,
  inArguments: boolean,
): Value<C> {
  switch (node.type) {
    case "literal":
      return literal(node.literal, node.at);
    case "ident":
      throw new ExpressionError(
        `${node.name} is not defined (only function calls and literals)`,
        node.at,
      );
    case "selector":
      throw new ExpressionError(`${dotted(node)} is not defined`, node.at);
    case "index":
      throw new ExpressionError("properties are not supported", node.at);
    case "call":
      return call(node, functions);
    default:
      throw new ExpressionError(
        inArguments
          ? "function arguments must be plain literals (no parentheses or operators)"
          : `${node.type} expressions are not supported`,
        node.at,
      );
  }
}

function dotted(node: GoNode): string {
  if (node.type === "ident") return node.name;
  if (node.type === "selector") return `${dotted(node.base)}.${node.name}`;
  return "?";
}

function call<C>(
  node: Extract<GoNode, { type: "call" }>,
  functions: Readonly<Record<string, PredicateFunction<C>>>,
): Value<C> {
  const name = node.callee.type === "ident" || node.callee.type === "selector"
    ? dotted(node.callee)
    : undefined;
  if (name === undefined) throw new ExpressionError("expected a function name", node.at);
  const fn = Object.hasOwn(functions, name) ? functions[name] : undefined;
  if (!fn) {
    throw new ExpressionError(
      `unsupported function ${name}; valid: ${Object.keys(functions).join(", ")}`,
      node.at,
    );
  }
  const signature = `${name}(${fn.params.join(", ")})`;
  if (node.args.length !== fn.params.length) {
    throw new ExpressionError(
      `${signature} takes ${fn.params.length} argument${
        fn.params.length === 1 ? "" : "s"
      }, found ${node.args.length}`,
      node.at,
    );
  }
  const args = node.args.map((arg, i) => {
    const v = operand(arg, functions, true);
    const want = fn.params[i];
    if (v.kind !== "literal" || v.type !== want) {
      throw new ExpressionError(
        `argument ${i + 1} of ${signature} must be ${TYPE_WORDS[want]}, found ${describe(v)}`,
        arg.at,
      );
    }
    return v.value;
  });
  const bound = fn.bind(args);
  if (fn.returns === "condition") {
    return { kind: "condition", test: bound as (ctx: C) => boolean, at: node.at };
  }
  return {
    kind: "metric",
    type: fn.returns,
    read: bound as (ctx: C) => number | string,
    label: `${name}()`,
    at: node.at,
  };
}

function describe<C>(v: Value<C>): string {
  if (v.kind === "condition") return "a condition";
  if (v.kind === "metric") return `${v.label}`;
  if (v.type === "string") return `the string ${JSON.stringify(v.value)}`;
  return `the ${v.type === "int" ? "integer" : "decimal number"} ${v.value}`;
}

function join<C>(node: Extract<GoNode, { type: "binary" }>, x: Value<C>, y: Value<C>): Value<C> {
  const op = node.op;
  if (op === "&&" || op === "||") {
    for (const side of [x, y]) {
      if (side.kind !== "condition") {
        throw new ExpressionError(`${op} joins conditions, found ${describe(side)}`, side.at);
      }
    }
    const l = (x as { test: (c: C) => boolean }).test;
    const r = (y as { test: (c: C) => boolean }).test;
    const test = op === "&&" ? (c: C) => l(c) && r(c) : (c: C) => l(c) || r(c);
    return { kind: "condition", test, at: node.at };
  }
  const compare = COMPARE[op];
  if (!compare) throw new ExpressionError(`operator ${op} is not supported`, node.at);
  if (x.kind !== "metric") {
    throw new ExpressionError(
      `the left side of ${op} must be a function such as NetworkErrorRatio(), found ${describe(x)}`,
      x.at,
    );
  }
  if (x.type === "string" && op !== "==" && op !== "!=") {
    throw new ExpressionError(`${x.label} can only be compared with == or !=`, node.at);
  }
  // Go's int64 mappers still take an `int` constant: predicate has no other integer.
  const want = x.type === "int64" ? "int" : x.type;
  if (y.kind !== "literal" || y.type !== want) {
    throw new ExpressionError(
      `${x.label} must be compared with ${TYPE_WORDS[x.type]}, found ${describe(y)}`,
      y.at,
    );
  }
  const read = x.read;
  const value = y.value;
  return { kind: "condition", test: (c: C) => compare(read(c), value), at: node.at };
}

/** predicate's literalToValue: Atoi for INT, ParseFloat for FLOAT, Unquote for STRING. */
function literal<C>(lit: GoLiteral, at: number): Value<C> {
  switch (lit.kind) {
    case "INT": {
      // strconv.Atoi: base 10 only, so 0x10 and 1_000 are refused and 017 is 17.
      if (!/^[0-9]+$/.test(lit.text)) {
        throw new ExpressionError(
          `failed to parse argument ${lit.text} (only decimal integers)`,
          at,
        );
      }
      const big = BigInt(lit.text);
      if (big > 9223372036854775807n) throw new ExpressionError(`${lit.text} is out of range`, at);
      return { kind: "literal", type: "int", value: Number(big), at };
    }
    case "FLOAT": {
      const value = parseGoFloat(lit.text);
      if (value === undefined) {
        throw new ExpressionError(`failed to parse argument ${lit.text}`, at);
      }
      return { kind: "literal", type: "float64", value, at };
    }
    case "STRING":
      return { kind: "literal", type: "string", value: lit.value, at };
    default:
      throw new ExpressionError(`unsupported literal ${lit.text}`, at);
  }
}

/** A Go FLOAT token's value (decimal or hexadecimal); undefined for what this parser does not read. */
function parseGoFloat(text: string): number | undefined {
  if (text.includes("_")) return undefined;
  const hex = /^0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?[pP]([+-]?[0-9]+)$/.exec(text);
  if (hex) {
    const digits = (hex[1] ?? "") + (hex[2] ?? "");
    const mantissa = digits === "" ? 0 : Number.parseInt(digits, 16);
    return mantissa * 2 ** (Number(hex[3]) - 4 * (hex[2]?.length ?? 0));
  }
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}
