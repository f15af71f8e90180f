/**
 * The circuit breaker's expression language (Traefik/oxy):
 * `NetworkErrorRatio()`, `ResponseCodeRatio(from, to, dividedByFrom, dividedByTo)`
 * and `LatencyAtQuantileMS(q)`, compared with `> < >= <= == !=` against a
 * number, combined with `&&`, `||`, `!` and parentheses. Parsed once into a
 * predicate over a {@link Metrics} view; no I/O, no time.
 *
 * @module
 */

/** What an expression can ask about the recent traffic. */
export interface Metrics {
  /** Share of requests that failed at the network level (502/504), 0..1. */
  networkErrorRatio(): number;
  /** Responses with a code in [from, to) divided by those in [dividedByFrom, dividedByTo); 0 when the latter is 0. */
  responseCodeRatio(from: number, to: number, dividedByFrom: number, dividedByTo: number): number;
  /** Latency in ms at quantile q (0..100). */
  latencyAtQuantileMS(q: number): number;
}

export type Predicate = (m: Metrics) => boolean;

/** A syntax or meaning error, with the 0-based offset in the expression. */
export class ExpressionError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = "ExpressionError";
  }
}

type Token =
  | { kind: "num"; value: number; at: number }
  | { kind: "ident"; value: string; at: number }
  | { kind: "op"; value: string; at: number }
  | { kind: "end"; at: number };

const OPS = ["&&", "||", ">=", "<=", "==", "!=", ">", "<", "!", "(", ")", ","];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^(\d+(\.\d*)?|\.\d+)/.exec(src.slice(i));
    if (num) {
      out.push({ kind: "num", value: Number(num[0]), at: i });
      i += num[0].length;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (ident) {
      out.push({ kind: "ident", value: ident[0], at: i });
      i += ident[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExpressionError(`unexpected character ${JSON.stringify(c)}`, i);
    out.push({ kind: "op", value: op, at: i });
    i += op.length;
  }
  out.push({ kind: "end", at: src.length });
  return out;
}

type Value = (m: Metrics) => number;

const FUNCTIONS: Record<string, { arity: number; build: (args: number[], at: number) => Value }> = {
  NetworkErrorRatio: { arity: 0, build: () => (m) => m.networkErrorRatio() },
  ResponseCodeRatio: {
    arity: 4,
    build: (args, at) => {
      const [from, to, dFrom, dTo] = args;
      for (const a of args) {
        if (!Number.isInteger(a) || a < 0 || a > 1000) {
          throw new ExpressionError("ResponseCodeRatio takes status codes (integers 0-1000)", at);
        }
      }
      if (from >= to || dFrom >= dTo) {
        throw new ExpressionError("ResponseCodeRatio ranges must have from < to", at);
      }
      return (m) => m.responseCodeRatio(from, to, dFrom, dTo);
    },
  },
  LatencyAtQuantileMS: {
    arity: 1,
    build: ([q], at) => {
      if (!(q > 0 && q <= 100)) {
        throw new ExpressionError("LatencyAtQuantileMS takes a quantile between 0 and 100", at);
      }
      return (m) => m.latencyAtQuantileMS(q);
    },
  },
};

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  ">": (a, b) => a > b,
  "<": (a, b) => a < b,
  ">=": (a, b) => a >= b,
  "<=": (a, b) => a <= b,
  "==": (a, b) => a === b,
  "!=": (a, b) => a !== b,
};

/**
 * Parses an expression into a predicate.
 *
 * @throws {ExpressionError} naming what was expected and where.
 * @example
 * ```ts
 * const tripped = parseExpression("NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(50.0) > 100");
 * ```
 */
export function parseExpression(src: string): Predicate {
  const tokens = tokenize(src);
  let pos = 0;
  const peek = () => tokens[pos];
  const isOp = (value: string) => {
    const t = peek();
    return t.kind === "op" && t.value === value;
  };
  const expectOp = (value: string) => {
    const t = peek();
    if (t.kind !== "op" || t.value !== value) {
      throw new ExpressionError(`expected "${value}"`, t.at);
    }
    pos++;
  };

  const or = (): Predicate => {
    let left = and();
    while (isOp("||")) {
      pos++;
      const l = left, r = and();
      left = (m) => l(m) || r(m);
    }
    return left;
  };
  const and = (): Predicate => {
    let left = unary();
    while (isOp("&&")) {
      pos++;
      const l = left, r = unary();
      left = (m) => l(m) && r(m);
    }
    return left;
  };
  const unary = (): Predicate => {
    if (isOp("!")) {
      pos++;
      const inner = unary();
      return (m) => !inner(m);
    }
    // "(" may open a boolean group or be part of nothing else: metric
    // calls always start with a name, so a "(" here is a group.
    if (isOp("(")) {
      pos++;
      const inner = or();
      expectOp(")");
      return inner;
    }
    return comparison();
  };
  const comparison = (): Predicate => {
    const start = peek().at;
    const left = operand();
    const t = peek();
    if (t.kind !== "op" || !(t.value in COMPARE)) {
      throw new ExpressionError("expected a comparison (>, <, >=, <=, ==, !=)", t.at);
    }
    pos++;
    const right = operand();
    if (left.constant && right.constant) {
      throw new ExpressionError(
        "a comparison must involve a metric such as NetworkErrorRatio()",
        start,
      );
    }
    const compare = COMPARE[t.value];
    const l = left.value, r = right.value;
    return (m) => compare(l(m), r(m));
  };
  const operand = (): { value: Value; constant: boolean } => {
    const t = peek();
    if (t.kind === "num") {
      pos++;
      return { value: () => t.value, constant: true };
    }
    if (t.kind === "ident") {
      pos++;
      const fn = FUNCTIONS[t.value];
      if (!fn) {
        throw new ExpressionError(
          `unknown function ${t.value}; valid: ${Object.keys(FUNCTIONS).join(", ")}`,
          t.at,
        );
      }
      expectOp("(");
      const args: number[] = [];
      while (!isOp(")")) {
        if (args.length > 0) expectOp(",");
        const a = peek();
        if (a.kind !== "num") {
          throw new ExpressionError(`${t.value} takes numbers as arguments`, a.at);
        }
        args.push(a.value);
        pos++;
      }
      expectOp(")");
      if (args.length !== fn.arity) {
        throw new ExpressionError(
          `${t.value} takes ${fn.arity} argument${fn.arity === 1 ? "" : "s"}, found ${args.length}`,
          t.at,
        );
      }
      return { value: fn.build(args, t.at), constant: false };
    }
    throw new ExpressionError(
      t.kind === "end"
        ? "unexpected end of expression"
        : "expected a number or a metric such as NetworkErrorRatio()",
      t.at,
    );
  };

  if (peek().kind === "end") throw new ExpressionError("empty expression", 0);
  const predicate = or();
  if (peek().kind !== "end") {
    throw new ExpressionError("unexpected text after the expression", peek().at);
  }
  return predicate;
}
