/**
 * The `retryExpression` language of Traefik's buffering middleware (oxy's
 * predicates): `IsNetworkError()`, `Attempts()`, `ResponseCode()`, integer
 * comparisons, `!`, `&&`, `||` and parentheses. Compiled once to a
 * function; a pure core with no I/O.
 *
 * @module
 */

/** What a retry decision looks at. */
export interface RetryFacts {
  /** 1 for the first try. */
  attempts: number;
  responseCode: number;
  /** The upstream could not answer (502/504 from the proxy itself). */
  networkError: boolean;
}

type Node =
  | { kind: "bool"; eval: (f: RetryFacts) => boolean }
  | { kind: "int"; eval: (f: RetryFacts) => number };

/**
 * Compiles `source` to a predicate, or throws an Error saying where it stopped.
 *
 * @example
 * ```ts
 * const retry = compileRetryExpression("IsNetworkError() && Attempts() < 2");
 * retry({ attempts: 1, responseCode: 502, networkError: true }); // true
 * ```
 */
export function compileRetryExpression(source: string): (facts: RetryFacts) => boolean {
  const tokens = source.match(
    /\s*(IsNetworkError|Attempts|ResponseCode|\d+|&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|\S)/g,
  ) ?? [];
  const toks = tokens.map((t) => t.trim());
  let pos = 0;
  const peek = () => toks[pos];
  const fail = (msg: string): never => {
    throw new Error(
      `${msg} at token ${pos + 1} (${
        JSON.stringify(peek() ?? "end")
      }); expected e.g. "IsNetworkError() && Attempts() < 2"`,
    );
  };
  const expect = (t: string) => {
    if (toks[pos] !== t) fail(`expected "${t}"`);
    pos++;
  };

  const primary = (): Node => {
    const t = peek();
    if (t === "(") {
      pos++;
      const n = or();
      expect(")");
      return n;
    }
    if (t === "!") {
      pos++;
      const n = primary();
      if (n.kind !== "bool") fail("`!` needs a condition");
      const e = (n as { eval: (f: RetryFacts) => boolean }).eval;
      return { kind: "bool", eval: (f) => !e(f) };
    }
    if (t === "IsNetworkError" || t === "Attempts" || t === "ResponseCode") {
      pos++;
      expect("(");
      expect(")");
      if (t === "IsNetworkError") return { kind: "bool", eval: (f) => f.networkError };
      if (t === "Attempts") return { kind: "int", eval: (f) => f.attempts };
      return { kind: "int", eval: (f) => f.responseCode };
    }
    if (t !== undefined && /^\d+$/.test(t)) {
      pos++;
      const v = Number(t);
      return { kind: "int", eval: () => v };
    }
    return fail(t === undefined ? "unexpected end" : "unknown function or token");
  };

  const comparison = (): Node => {
    const left = primary();
    const op = peek();
    if (!["==", "!=", "<", ">", "<=", ">="].includes(op ?? "")) return left;
    pos++;
    const right = primary();
    if (left.kind !== "int" || right.kind !== "int") fail(`"${op}" compares numbers`);
    const l = left.eval as (f: RetryFacts) => number;
    const r = right.eval as (f: RetryFacts) => number;
    const cmp: Record<string, (a: number, b: number) => boolean> = {
      "==": (a, b) => a === b,
      "!=": (a, b) => a !== b,
      "<": (a, b) => a < b,
      ">": (a, b) => a > b,
      "<=": (a, b) => a <= b,
      ">=": (a, b) => a >= b,
    };
    const f = cmp[op!];
    return { kind: "bool", eval: (facts) => f(l(facts), r(facts)) };
  };

  const and = (): Node => {
    let left = comparison();
    while (peek() === "&&") {
      pos++;
      const right = comparison();
      if (left.kind !== "bool" || right.kind !== "bool") fail("`&&` joins conditions");
      const l = left.eval as (f: RetryFacts) => boolean;
      const r = right.eval as (f: RetryFacts) => boolean;
      left = { kind: "bool", eval: (f) => l(f) && r(f) };
    }
    return left;
  };

  function or(): Node {
    let left = and();
    while (peek() === "||") {
      pos++;
      const right = and();
      if (left.kind !== "bool" || right.kind !== "bool") fail("`||` joins conditions");
      const l = left.eval as (f: RetryFacts) => boolean;
      const r = right.eval as (f: RetryFacts) => boolean;
      left = { kind: "bool", eval: (f) => l(f) || r(f) };
    }
    return left;
  }

  const root = or();
  if (pos !== toks.length) fail("unexpected token");
  if (root.kind !== "bool") throw new Error("the expression must be a condition, not a number");
  return root.eval as (f: RetryFacts) => boolean;
}
