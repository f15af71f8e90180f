/**
 * @module
 * Go RE2 regexp syntax → JavaScript RegExp (Unicode mode).
 *
 * Traefik compiles rule regexps with Go's `regexp` package. Everything RE2 accepts that
 * JavaScript can express with the same meaning is translated; everything else is refused
 * with an `Re2Error` naming the construct. What changes in translation, and why:
 * - `.` → `[^\n]` (JS `.` also stops at `\r`, U+2028, U+2029); with `(?s)` → any character.
 * - `\s` → `[\t\n\f\r ]` (Go's `\s` is ASCII and excludes `\v`); `\S` likewise.
 * - `^`/`$` under `(?m)` → lookarounds on `\n` only (JS multiline also breaks at `\r`).
 * - `\A` / `\z` → lookarounds for start/end of text.
 * - `(?P<name>…)` / `(?<name>…)` → plain capture groups (only match/no-match matters here).
 * - `(?i)`/`(?-i)` → JS modifier groups `(?i:…)` / `(?-i:…)`; `(?s)`, `(?m)`, `(?U)` are
 *   applied by the translation itself (`(?U)` swaps greedy and lazy quantifiers).
 * - `[[:alpha:]]` POSIX classes, `\pL` / `\p{Greek}` properties, `\Q…\E`, octal and
 *   `\x{…}` escapes, `\a`, escaped punctuation, a literal `{` that does not start a repeat.
 * Refused: lookahead/lookbehind, backreferences, `\C`, `\Z`, atomic groups, possessive
 * quantifiers, comments, repeat counts above 1000 (all refused by Go too, or unsupported).
 *
 * One difference remains: JS regexps backtrack, so a pathological pattern such as
 * `(a+)+$` can take exponential time where Go is linear. Rules come from the operator,
 * not from clients, so this is documented rather than prevented.
 */

/** A regexp RE2 would reject, or one that JS cannot express with the same meaning. */
export class Re2Error extends Error {
  /** 0-based offset in the pattern. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = "Re2Error";
    this.offset = offset;
  }
}

interface Flags {
  i: boolean;
  m: boolean;
  s: boolean;
  U: boolean;
}

interface Group {
  saved: Flags;
  /** JS modifier groups opened by `(?i)` inside this group, to close at `|` and `)`. */
  wrappers: string[];
}

type Range = [number, number];

const MAX_CP = 0x10ffff;
const POSIX: Record<string, Range[]> = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0, 0x7f]],
  blank: [[9, 9], [32, 32]],
  cntrl: [[0, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[9, 13], [32, 32]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a], [0x5f, 0x5f]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};
const GO_SPACE: Range[] = [[9, 10], [12, 13], [32, 32]];

function complement(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  return out;
}

const cp = (c: number) => `\\u{${c.toString(16)}}`;
const rangesBody = (ranges: Range[]) =>
  ranges.map(([lo, hi]) => (lo === hi ? cp(lo) : `${cp(lo)}-${cp(hi)}`)).join("");

/** Characters that must be escaped to be literal in a JS Unicode-mode regexp. */
const JS_SYNTAX = new Set("^$\\.*+?()[]{}|/-");

function literal(c: string, inClass: boolean): string {
  // Unicode mode refuses `\-` outside a class, where `-` needs no escape.
  if (c === "-" && !inClass) return c;
  if (JS_SYNTAX.has(c)) return inClass && !"\\]^-[".includes(c) ? c : `\\${c}`;
  return c;
}

function propertyEscape(name: string, negated: boolean, at: number): string {
  if (!/^[A-Za-z_]+$/.test(name)) {
    throw new Re2Error(`invalid character class range \\p{${name}}`, at);
  }
  const p = negated ? "P" : "p";
  if (name === "Any") return `\\${p}{Any}`;
  if (/^[A-Z][a-z]?$/.test(name)) return `\\${p}{${name}}`;
  return `\\${p}{Script=${name}}`;
}

/**
 * Translates a Go RE2 pattern into the source of an equivalent JS RegExp to be compiled
 * with the `u` flag.
 *
 * @throws {Re2Error} for syntax RE2 rejects or constructs without a faithful translation.
 */
export function translateRe2(src: string): string {
  let out = "";
  let i = 0;
  let flags: Flags = { i: false, m: false, s: false, U: false };
  const groups: Group[] = [{ saved: flags, wrappers: [] }];
  const names = new Set<string>();
  const err = (msg: string, at: number): never => {
    throw new Re2Error(msg, at);
  };
  const closeWrappers = (g: Group) => {
    out += ")".repeat(g.wrappers.length);
  };

  /** Parses an escape at `i` (pointing at `\`); returns JS text and, if one char, its code point. */
  const escape = (inClass: boolean): { js: string; cp?: number; ranges?: Range[] } => {
    const at = i;
    const c = src[i + 1];
    if (c === undefined) err("trailing backslash at end of expression", at);
    i += 2;
    switch (c) {
      case "a":
        return { js: cp(7), cp: 7 };
      case "f":
        return { js: cp(12), cp: 12 };
      case "t":
        return { js: cp(9), cp: 9 };
      case "n":
        return { js: cp(10), cp: 10 };
      case "r":
        return { js: cp(13), cp: 13 };
      case "v":
        return { js: cp(11), cp: 11 };
      case "d":
      case "D":
      case "w":
      case "W":
        return { js: `\\${c}` };
      case "s":
        return {
          js: inClass ? rangesBody(GO_SPACE) : `[${rangesBody(GO_SPACE)}]`,
          ranges: GO_SPACE,
        };
      case "S": {
        const r = complement(GO_SPACE);
        return { js: inClass ? rangesBody(r) : `[${rangesBody(r)}]`, ranges: r };
      }
      case "b":
      case "B":
        if (inClass) err(`invalid escape sequence \\${c} in character class`, at);
        return { js: `\\${c}` };
      case "A":
        if (inClass) err("invalid escape sequence \\A in character class", at);
        return { js: "(?<![\\s\\S])" };
      case "z":
        if (inClass) err("invalid escape sequence \\z in character class", at);
        return { js: "(?![\\s\\S])" };
      case "p":
      case "P": {
        let name: string;
        if (src[i] === "{") {
          const close = src.indexOf("}", i);
          if (close < 0) err("invalid character class range: missing }", at);
          name = src.slice(i + 1, close);
          i = close + 1;
        } else {
          name = src[i] ?? "";
          i++;
        }
        let negated = c === "P";
        if (name.startsWith("^")) {
          negated = !negated;
          name = name.slice(1);
        }
        return { js: propertyEscape(name, negated, at) };
      }
      case "x": {
        let hex: string;
        if (src[i] === "{") {
          const close = src.indexOf("}", i);
          hex = close < 0 ? "" : src.slice(i + 1, close);
          i = close + 1;
        } else {
          hex = src.slice(i, i + 2);
          i += 2;
        }
        const code = parseInt(hex, 16);
        if (!/^[0-9a-fA-F]{1,8}$/.test(hex) || code > MAX_CP) {
          err(`invalid escape sequence \\x${hex}`, at);
        }
        return { js: cp(code), cp: code };
      }
      case "C":
        return err("\\C (match any byte) is not supported", at);
      case "Z":
        return err("\\Z is not supported by RE2; use \\z for end of text", at);
      case "Q": {
        if (inClass) err("\\Q...\\E inside a character class is not supported", at);
        const end = src.indexOf("\\E", i);
        const text = end < 0 ? src.slice(i) : src.slice(i, end);
        i = end < 0 ? src.length : end + 2;
        return { js: [...text].map((ch) => literal(ch, false)).join("") };
      }
      case "E":
        return { js: "" };
    }
    if (c >= "0" && c <= "7") {
      // Go: \1-\7 alone is a backreference (unsupported); with more digits, octal.
      if (c !== "0" && !(src[i] >= "0" && src[i] <= "7")) {
        err(`backreference \\${c} is not supported by RE2`, at);
      }
      let digits = c;
      while (digits.length < 3 && src[i] >= "0" && src[i] <= "7") digits += src[i++];
      const code = parseInt(digits, 8);
      return { js: cp(code), cp: code };
    }
    if (c === "8" || c === "9") err(`backreference \\${c} is not supported by RE2`, at);
    if (c === "k") err("named backreference \\k is not supported by RE2", at);
    const code = c.codePointAt(0)!;
    if (code < 0x80 && !/[0-9A-Za-z]/.test(c)) return { js: literal(c, inClass), cp: code };
    return err(`invalid escape sequence \\${c}`, at);
  };

  const parseClass = () => {
    const at = i;
    i++;
    let js = "[";
    if (src[i] === "^") {
      js += "^";
      i++;
    }
    let first = true;
    while (true) {
      if (i >= src.length) err("missing closing ] in character class", at);
      const c = src[i];
      if (c === "]" && !first) {
        i++;
        break;
      }
      first = false;
      if (c === "[" && src[i + 1] === ":") {
        const close = src.indexOf(":]", i + 2);
        if (close >= 0) {
          let name = src.slice(i + 2, close);
          const neg = name.startsWith("^");
          if (neg) name = name.slice(1);
          const ranges = POSIX[name];
          if (!ranges) err(`invalid character class range [:${name}:]`, i);
          js += rangesBody(neg ? complement(ranges) : ranges);
          i = close + 2;
          continue;
        }
      }
      // One class item: a char (possibly the start of a range) or a class escape.
      let lo: number | undefined;
      let text: string;
      if (c === "\\") {
        const e = escape(true);
        if (e.cp === undefined) {
          // A class escape such as \d never starts a range; a following "-" is literal.
          js += e.js;
          continue;
        }
        text = e.js;
        lo = e.cp;
      } else {
        const ch = String.fromCodePoint(src.codePointAt(i)!);
        i += ch.length;
        text = literal(ch, true);
        lo = ch.codePointAt(0)!;
      }
      if (src[i] === "-" && src[i + 1] !== "]" && i + 1 < src.length) {
        const dashAt = i;
        i++;
        let hi: number | undefined;
        let hiText: string;
        if (src[i] === "\\") {
          const e = escape(true);
          hi = e.cp;
          hiText = e.js;
        } else {
          const ch = String.fromCodePoint(src.codePointAt(i)!);
          i += ch.length;
          hi = ch.codePointAt(0)!;
          hiText = literal(ch, true);
        }
        if (lo === undefined || hi === undefined || hi < lo) {
          err(`invalid character class range ${src.slice(dashAt - 1, i)}`, dashAt);
        }
        js += `${text}-${hiText}`;
      } else {
        js += text;
      }
    }
    out += js + "]";
  };

  /** After an atom: copies a quantifier if present, applying `(?U)`. */
  const quantifier = () => {
    const at = i;
    let q = "";
    const c = src[i];
    if (c === "*" || c === "+" || c === "?") {
      q = c;
      i++;
    } else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
      if (!m) return;
      const min = Number(m[1]);
      const max = m[3] ? Number(m[3]) : min;
      if (min > 1000 || max > 1000) {
        err(`invalid repeat count ${m[0]} (RE2 allows at most 1000)`, at);
      }
      if (m[3] && max < min) err(`invalid repeat count ${m[0]}`, at);
      q = m[0];
      i += m[0].length;
    } else return;
    let lazy = false;
    if (src[i] === "?") {
      lazy = true;
      i++;
    }
    const next = src[i];
    if (
      next === "*" || next === "+" || next === "?" ||
      (next === "{" && /^\{\d+(,\d*)?\}/.test(src.slice(i)))
    ) {
      err(`invalid nested repetition operator ${src.slice(at, i + 1)}`, at);
    }
    if (flags.U) lazy = !lazy;
    out += q + (lazy ? "?" : "");
  };

  while (i < src.length) {
    const c = src[i];
    const atomStart = out.length;
    switch (c) {
      case "(": {
        const at = i;
        if (src[i + 1] !== "?") {
          groups.push({ saved: flags, wrappers: [] });
          out += "(";
          i++;
          break;
        }
        const rest = src.slice(i + 2);
        const named = /^P?<([^>]*)>/.exec(rest);
        if (named && !/^<[=!]/.test(rest)) {
          const name = named[1];
          if (!/^\w+$/.test(name)) err(`invalid named capture ${JSON.stringify(name)}`, at);
          if (names.has(name)) err(`duplicate capture group name ${JSON.stringify(name)}`, at);
          names.add(name);
          groups.push({ saved: flags, wrappers: [] });
          out += "(";
          i += 2 + named[0].length;
          break;
        }
        if (/^(=|!|<=|<!)/.test(rest)) {
          err(
            "lookahead and lookbehind assertions (?=, (?!, (?<=, (?<! are not supported by RE2",
            at,
          );
        }
        const fm = /^([imsU]*)(?:-([imsU]*))?([:)])/.exec(rest);
        if (!fm || (fm[2] !== undefined && fm[2] === "") || (fm[1] === "" && fm[2] === undefined && fm[3] === ")")) {
          err(`invalid or unsupported Perl syntax ${JSON.stringify(src.slice(at, at + 3))}`, at);
        }
        const next: Flags = { ...flags };
        for (const f of fm![1]) next[f as keyof Flags] = true;
        for (const f of fm![2] ?? "") next[f as keyof Flags] = false;
        const mod = next.i === flags.i ? "" : next.i ? "i" : "-i";
        i += 2 + fm![0].length;
        if (fm![3] === ":") {
          groups.push({ saved: flags, wrappers: [] });
          out += mod ? `(?${mod}:` : "(?:";
        } else if (mod) {
          // Go: the flag holds to the end of the enclosing group, across `|`.
          groups[groups.length - 1].wrappers.push(mod);
          out += `(?${mod}:`;
        }
        flags = next;
        continue;
      }
      case ")": {
        if (groups.length === 1) err("unexpected ) without a matching (", i);
        const g = groups.pop()!;
        closeWrappers(g);
        out += ")";
        flags = g.saved;
        i++;
        break;
      }
      case "|": {
        const g = groups[groups.length - 1];
        closeWrappers(g);
        out += "|" + g.wrappers.map((w) => `(?${w}:`).join("");
        i++;
        continue;
      }
      case "[":
        parseClass();
        break;
      case "\\": {
        const e = escape(false);
        out += e.js;
        break;
      }
      case ".":
        out += flags.s ? "[\\s\\S]" : "[^\\n]";
        i++;
        break;
      case "^":
        out += flags.m ? "(?<![^\\n])" : "^";
        i++;
        break;
      case "$":
        out += flags.m ? "(?![^\\n])" : "$";
        i++;
        break;
      case "*":
      case "+":
      case "?":
        err(`missing argument to repetition operator ${c}`, i);
        break;
      case "{":
        if (/^\{\d+(,\d*)?\}/.test(src.slice(i))) {
          err("missing argument to repetition operator {", i);
        }
        out += "\\{";
        i++;
        break;
      default: {
        const ch = String.fromCodePoint(src.codePointAt(i)!);
        out += literal(ch, false);
        i += ch.length;
      }
    }
    if (out.length > atomStart) quantifier();
  }
  if (groups.length > 1) err("missing closing )", src.length);
  closeWrappers(groups[0]);
  return out;
}

/**
 * Compiles a Go RE2 pattern to a JS RegExp with the same match/no-match behaviour
 * (unanchored search, like Go's `MatchString`).
 *
 * @throws {Re2Error} when RE2 would reject the pattern or JS cannot express it.
 * @example
 * ```ts
 * compileRe2("(?i)^/api/(?P<v>v[0-9]+)").test("/API/v2"); // true
 * ```
 */
export function compileRe2(src: string): RegExp {
  const js = translateRe2(src);
  try {
    return new RegExp(js, "u");
  } catch (e) {
    const msg = (e as Error).message.replace(/^Invalid regular expression: \/.*\/u?: /, "");
    throw new Re2Error(`invalid regexp: ${msg}`, 0);
  }
}
