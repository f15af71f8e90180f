/**
 * Parses the Go expression syntax that oxy's `vulcand/predicate` reads
 * (Traefik's `circuitBreaker.expression` and `buffering.retryExpression`
 * are both compiled by it with `go/parser.ParseExpr`). Only the syntax is
 * checked here: literals keep their Go kind (INT, FLOAT, STRING...) because
 * predicate hands them to Go functions by reflection, so `1` and `1.0` are
 * different values there. Typing lives in predicate.ts. Pure.
 *
 * @module
 */

/** A syntax error, with the 0-based offset in the expression. */
export class ExpressionError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = "ExpressionError";
  }
}

/** A Go literal: INT and FLOAT stay apart, as `strconv.Atoi` and `ParseFloat` see them. */
export type GoLiteral =
  | { kind: "INT"; text: string }
  | { kind: "FLOAT"; text: string }
  | { kind: "STRING"; value: string }
  | { kind: "CHAR" | "IMAG"; text: string };

/** The expression tree, as `go/ast` would give it (only the shapes predicate looks at). */
export type GoNode =
  | { type: "binary"; op: string; left: GoNode; right: GoNode; at: number }
  | { type: "unary"; op: string; operand: GoNode; at: number }
  | { type: "paren"; inner: GoNode; at: number }
  | { type: "call"; callee: GoNode; args: GoNode[]; at: number }
  | { type: "ident"; name: string; at: number }
  | { type: "selector"; base: GoNode; name: string; at: number }
  | { type: "index"; base: GoNode; at: number }
  | { type: "literal"; literal: GoLiteral; at: number };

type Token =
  | { kind: "ident"; text: string; at: number }
  | { kind: "literal"; literal: GoLiteral; at: number }
  | { kind: "op"; text: string; at: number }
  | { kind: "semicolon"; at: number }
  | { kind: "end"; at: number };

/** Go's binary operators by precedence (go/token), highest last. */
const PRECEDENCE: Record<string, number> = {
  "||": 1,
  "&&": 2,
  "==": 3,
  "!=": 3,
  "<": 3,
  "<=": 3,
  ">": 3,
  ">=": 3,
  "+": 4,
  "-": 4,
  "|": 4,
  "^": 4,
  "*": 5,
  "/": 5,
  "%": 5,
  "<<": 5,
  ">>": 5,
  "&": 5,
  "&^": 5,
};

// Longest first, so "&&" is not read as "&" "&".
const OPERATORS = [
  "&^=",
  "<<=",
  ">>=",
  "...",
  "&&",
  "||",
  "==",
  "!=",
  "<=",
  ">=",
  "<<",
  ">>",
  "&^",
  "<-",
  "++",
  "--",
  "+=",
  "-=",
  "*=",
  "/=",
  ":=",
  "+",
  "-",
  "*",
  "/",
  "%",
  "&",
  "|",
  "^",
  "<",
  ">",
  "=",
  "!",
  "(",
  ")",
  "[",
  "]",
  "{",
  "}",
  ",",
  ".",
  ":",
  ";",
];

const DEC = "[0-9](?:_?[0-9])*";
const HEX = "[0-9a-fA-F](?:_?[0-9a-fA-F])*";
const DECIMAL_FLOAT = new RegExp(
  `^(?:${DEC}\\.(?:${DEC})?(?:[eE][+-]?${DEC})?|${DEC}[eE][+-]?${DEC}|\\.${DEC}(?:[eE][+-]?${DEC})?)`,
);
const HEX_FLOAT = new RegExp(
  `^0[xX](?:_?${HEX}(?:\\.(?:${HEX})?)?|\\.${HEX})[pP][+-]?${DEC}`,
);
const INTEGER = new RegExp(
  `^(?:0[xX]_?${HEX}|0[bB]_?[01](?:_?[01])*|0[oO]_?[0-7](?:_?[0-7])*|0(?:_?[0-9])*|[1-9](?:_?[0-9])*)`,
);

/** Tokens after which a newline ends the statement (Go's automatic semicolon). */
function endsLine(t: Token | undefined): boolean {
  if (!t) return false;
  if (t.kind === "ident" || t.kind === "literal") return true;
  return t.kind === "op" && (t.text === ")" || t.text === "]" || t.text === "}" ||
    t.text === "++" || t.text === "--");
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const newline = (at: number) => {
    if (endsLine(out[out.length - 1])) out.push({ kind: "semicolon", at });
  };
  while (i < src.length) {
    const c = src[i];
    if (c === "\n") {
      newline(i);
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (src.startsWith("//", i)) {
      const end = src.indexOf("\n", i);
      i = end === -1 ? src.length : end;
      continue;
    }
    if (src.startsWith("/*", i)) {
      const end = src.indexOf("*/", i + 2);
      if (end === -1) throw new ExpressionError("comment not terminated", i);
      if (src.slice(i, end).includes("\n")) newline(i);
      i = end + 2;
      continue;
    }
    const rest = src.slice(i);
    const ident = /^[\p{L}_][\p{L}\p{Nd}_]*/u.exec(rest);
    if (ident) {
      out.push({ kind: "ident", text: ident[0], at: i });
      i += ident[0].length;
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(src[i + 1] ?? ""))) {
      const float = HEX_FLOAT.exec(rest) ?? DECIMAL_FLOAT.exec(rest);
      const int = INTEGER.exec(rest);
      let text: string;
      let kind: "INT" | "FLOAT";
      if (float && (!int || float[0].length >= int[0].length)) {
        text = float[0];
        kind = "FLOAT";
      } else if (int) {
        text = int[0];
        kind = "INT";
        // Go refuses 08 and 09: a leading 0 makes an octal literal.
        if (/^0[0-9_]*[89]/.test(text)) {
          throw new ExpressionError(`invalid digit in octal literal ${text}`, i);
        }
      } else {
        throw new ExpressionError(`malformed number`, i);
      }
      const end = i + text.length;
      if (src[end] === "i") {
        out.push({ kind: "literal", literal: { kind: "IMAG", text: text + "i" }, at: i });
        i = end + 1;
        continue;
      }
      if (/[\p{L}\p{Nd}_.]/u.test(src[end] ?? "")) {
        throw new ExpressionError(`malformed number ${JSON.stringify(text + src[end])}`, i);
      }
      out.push({ kind: "literal", literal: { kind, text }, at: i });
      i = end;
      continue;
    }
    if (c === '"') {
      const m = /^"((?:[^"\\\n]|\\.)*)"/.exec(rest);
      if (!m) throw new ExpressionError("string literal not terminated", i);
      out.push({ kind: "literal", literal: { kind: "STRING", value: unquote(m[1], i) }, at: i });
      i += m[0].length;
      continue;
    }
    if (c === "`") {
      const end = src.indexOf("`", i + 1);
      if (end === -1) throw new ExpressionError("raw string literal not terminated", i);
      out.push({
        kind: "literal",
        literal: { kind: "STRING", value: src.slice(i + 1, end).replaceAll("\r", "") },
        at: i,
      });
      i = end + 1;
      continue;
    }
    if (c === "'") {
      const m = /^'((?:[^'\\\n]|\\.)+)'/.exec(rest);
      if (!m) throw new ExpressionError("rune literal not terminated", i);
      out.push({ kind: "literal", literal: { kind: "CHAR", text: m[0] }, at: i });
      i += m[0].length;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExpressionError(`unexpected character ${JSON.stringify(c)}`, i);
    out.push(op === ";" ? { kind: "semicolon", at: i } : { kind: "op", text: op, at: i });
    i += op.length;
  }
  newline(src.length);
  out.push({ kind: "end", at: src.length });
  return out;
}

/** The value of a Go interpreted string literal body. */
function unquote(body: string, at: number): string {
  return body.replace(
    /\\(?:([abfnrtv\\"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3})|(.))/g,
    (_m, simple, x, u, bigU, octal, bad) => {
      if (simple) {
        return ({ a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" } as Record<
          string,
          string
        >)[simple] ?? simple;
      }
      if (x) return String.fromCharCode(parseInt(x, 16));
      if (u || bigU) return String.fromCodePoint(parseInt(u ?? bigU, 16));
      if (octal) return String.fromCharCode(parseInt(octal, 8));
      throw new ExpressionError(`unknown escape sequence \\${bad}`, at);
    },
  );
}

/**
 * Parses `src` as one Go expression, as `go/parser.ParseExpr` does.
 *
 * @throws {ExpressionError} naming what was expected and where.
 * @example
 * ```ts
 * parseGoExpression("NetworkErrorRatio() > 0.5").type; // "binary"
 * ```
 */
export function parseGoExpression(src: string): GoNode {
  const tokens = tokenize(src);
  let pos = 0;
  const peek = () => tokens[pos];
  const isOp = (text: string) => {
    const t = peek();
    return t.kind === "op" && t.text === text;
  };
  const expectOp = (text: string) => {
    const t = peek();
    if (t.kind !== "op" || t.text !== text) throw new ExpressionError(`expected "${text}"`, t.at);
    pos++;
  };

  const binary = (minPrecedence: number): GoNode => {
    let left = unary();
    for (;;) {
      const t = peek();
      const precedence = t.kind === "op" ? PRECEDENCE[t.text] : undefined;
      if (precedence === undefined || precedence < minPrecedence) return left;
      pos++;
      const right = binary(precedence + 1);
      left = { type: "binary", op: (t as { text: string }).text, left, right, at: t.at };
    }
  };
  const unary = (): GoNode => {
    const t = peek();
    if (t.kind === "op" && ["+", "-", "!", "^", "*", "&", "<-"].includes(t.text)) {
      pos++;
      return { type: "unary", op: t.text, operand: unary(), at: t.at };
    }
    return postfix(operand());
  };
  const operand = (): GoNode => {
    const t = peek();
    if (t.kind === "literal") {
      pos++;
      return { type: "literal", literal: t.literal, at: t.at };
    }
    if (t.kind === "ident") {
      pos++;
      return { type: "ident", name: t.text, at: t.at };
    }
    if (t.kind === "op" && t.text === "(") {
      pos++;
      const inner = binary(1);
      expectOp(")");
      return { type: "paren", inner, at: t.at };
    }
    throw new ExpressionError(
      t.kind === "end" ? "unexpected end of expression" : "expected an operand",
      t.at,
    );
  };
  const postfix = (node: GoNode): GoNode => {
    for (;;) {
      const t = peek();
      if (t.kind !== "op") return node;
      if (t.text === "(") {
        pos++;
        const args: GoNode[] = [];
        while (!isOp(")")) {
          args.push(binary(1));
          if (!isOp(",")) break;
          pos++;
        }
        expectOp(")");
        node = { type: "call", callee: node, args, at: node.at };
      } else if (t.text === ".") {
        pos++;
        const name = peek();
        if (name.kind !== "ident") throw new ExpressionError("expected a name after '.'", name.at);
        pos++;
        node = { type: "selector", base: node, name: name.text, at: node.at };
      } else if (t.text === "[") {
        pos++;
        let depth = 1;
        while (depth > 0) {
          const n = peek();
          if (n.kind === "end") throw new ExpressionError(`expected "]"`, n.at);
          if (n.kind === "op" && n.text === "[") depth++;
          if (n.kind === "op" && n.text === "]") depth--;
          pos++;
        }
        node = { type: "index", base: node, at: t.at };
      } else {
        return node;
      }
    }
  };

  if (peek().kind === "end" || (peek().kind === "semicolon" && tokens[pos + 1]?.kind === "end")) {
    throw new ExpressionError("empty expression", 0);
  }
  const root = binary(1);
  // ParseExpr accepts one trailing automatic semicolon (a final newline).
  if (peek().kind === "semicolon" && tokens[pos + 1]?.kind === "end") pos++;
  const last = peek();
  if (last.kind !== "end") {
    throw new ExpressionError(
      last.kind === "semicolon"
        ? "a line break here ends the expression (Go inserts a semicolon after it)"
        : "unexpected text after the expression",
      last.at,
    );
  }
  return root;
}
