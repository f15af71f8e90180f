/**
 * @module
 * Tokenizer for rule strings. Traefik parses rules as Go expressions, so string values
 * follow Go literal syntax: backtick raw strings (no escapes, carriage returns dropped) and
 * double-quoted strings with Go escapes. A newline right after `)`, a name or a string ends
 * the expression, as Go's automatic semicolon insertion does.
 */

import { RuleSyntaxError } from "./errors.ts";

/** Token kinds. */
export type TokenKind =
  | "ident"
  | "string"
  | "("
  | ")"
  | ","
  | "&&"
  | "||"
  | "!"
  | "invalid"
  | "eof";

/** One token with its source offset (0-based) and, for strings, the unquoted value. */
export interface Token {
  kind: TokenKind;
  start: number;
  end: number;
  /** Identifier text, unquoted string value, or the character of an invalid token. */
  value: string;
  /** For an invalid token: what the user probably meant. */
  hint?: string;
}

const IDENT_START = /[\p{L}_]/u;
const IDENT_PART = /[\p{L}\p{Nd}_]/u;

/** Text shown as `near` in errors: from `offset`, at most 24 code units. */
export function nearText(rule: string, offset: number): string {
  const rest = rule.slice(offset);
  return rest.length > 24 ? rest.slice(0, 24) : rest;
}

/**
 * Splits `rule` into tokens. An unexpected character becomes an `invalid` token for the
 * parser to report in context; a malformed string throws RuleSyntaxError here.
 */
export function tokenize(rule: string): Token[] {
  const tokens: Token[] = [];
  const fail = (reason: string, at: number): never => {
    throw new RuleSyntaxError(rule, reason, at, nearText(rule, at));
  };
  let i = 0;
  const n = rule.length;
  while (i < n) {
    const c = rule[i];
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "\n") {
      const prev = tokens[tokens.length - 1];
      if (prev && (prev.kind === ")" || prev.kind === "ident" || prev.kind === "string")) {
        // Go inserts a semicolon here: only trailing whitespace may follow.
        let j = i;
        while (j < n && /\s/.test(rule[j])) j++;
        if (j < n) {
          fail(
            `unexpected newline before ${
              JSON.stringify(rule[j])
            }; put "&&" or "||" at the end of the line, not the start`,
            i,
          );
        }
      }
      i++;
      continue;
    }
    const start = i;
    if (c === "(" || c === ")" || c === ",") {
      tokens.push({ kind: c, start, end: i + 1, value: c });
      i++;
    } else if (c === "!") {
      tokens.push({ kind: "!", start, end: i + 1, value: c });
      i++;
    } else if ((c === "&" || c === "|") && rule[i + 1] === c) {
      tokens.push({ kind: c === "&" ? "&&" : "||", start, end: i + 2, value: c + c });
      i += 2;
    } else if (c === "`") {
      const close = rule.indexOf("`", i + 1);
      if (close < 0) fail("unterminated backtick string", start);
      tokens.push({
        kind: "string",
        start,
        end: close + 1,
        value: rule.slice(i + 1, close).replaceAll("\r", ""),
      });
      i = close + 1;
    } else if (c === '"') {
      const [value, end] = readInterpreted(rule, i, fail);
      tokens.push({ kind: "string", start, end, value });
      i = end;
    } else if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(rule[j])) j++;
      tokens.push({ kind: "ident", start, end: j, value: rule.slice(i, j) });
      i = j;
    } else {
      // Reported by the parser, which knows what it expected here.
      const ch = String.fromCodePoint(rule.codePointAt(i)!);
      const hint = c === "&" || c === "|" ? `did you mean "${c}${c}"?` : undefined;
      tokens.push({ kind: "invalid", start, end: i + ch.length, value: ch, hint });
      i += ch.length;
    }
  }
  tokens.push({ kind: "eof", start: n, end: n, value: "" });
  return tokens;
}

const SIMPLE_ESCAPES: Record<string, number> = {
  a: 7,
  b: 8,
  f: 12,
  n: 10,
  r: 13,
  t: 9,
  v: 11,
  "\\": 92,
  '"': 34,
};

/** Reads a Go interpreted string literal starting at the `"` at `at`. */
function readInterpreted(
  rule: string,
  at: number,
  fail: (reason: string, at: number) => never,
): [string, number] {
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  let i = at + 1;
  let plainFrom = i;
  const flushPlain = (to: number) => {
    if (to > plainFrom) bytes.push(...encoder.encode(rule.slice(plainFrom, to)));
  };
  while (true) {
    if (i >= rule.length) fail("unterminated double-quoted string", at);
    const c = rule[i];
    if (c === '"') {
      flushPlain(i);
      break;
    }
    if (c === "\n") fail("newline in double-quoted string", i);
    if (c !== "\\") {
      i++;
      continue;
    }
    flushPlain(i);
    const e = rule[i + 1];
    if (e === undefined) fail("unterminated double-quoted string", at);
    if (e in SIMPLE_ESCAPES) {
      bytes.push(SIMPLE_ESCAPES[e]);
      i += 2;
    } else if (e === "x" || e === "u" || e === "U") {
      const len = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = rule.slice(i + 2, i + 2 + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) fail(`invalid escape \\${e}${hex}`, i);
      const code = parseInt(hex, 16);
      if (e === "x") bytes.push(code);
      else {
        if (code > 0x10ffff || (code >= 0xd800 && code < 0xe000)) {
          fail(`escape \\${e}${hex} is not a valid Unicode code point`, i);
        }
        bytes.push(...encoder.encode(String.fromCodePoint(code)));
      }
      i += 2 + len;
    } else if (e >= "0" && e <= "7") {
      const oct = rule.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) {
        fail(`invalid octal escape \\${oct}`, i);
      }
      bytes.push(parseInt(oct, 8));
      i += 4;
    } else {
      fail(
        `unknown escape sequence \\${e} in double-quoted string (use a backtick string for regexps)`,
        i,
      );
    }
    plainFrom = i;
  }
  return [new TextDecoder().decode(new Uint8Array(bytes)), i + 1];
}
