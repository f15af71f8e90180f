/**
 * Go's `Regexp.ReplaceAllString`: `$1`, `${1}`, `$name`, `${name}` and `$$`
 * in the template, and Go's rule for empty matches next to a previous match.
 *
 * @module
 */

import { compileRe2 } from "../../rules/re2.ts";

/** One parsed piece of a replacement template. */
type Piece = string | { group: number };

/**
 * Parses a Go replacement template once. `$` followed by a name takes the
 * longest run of letters, digits and `_` (so `$1x` is group "1x", which is
 * empty, exactly as in Go); a malformed `$` is kept literally.
 */
export function parseTemplate(
  template: string,
  names: ReadonlyMap<string, number> = new Map(),
): Piece[] {
  const pieces: Piece[] = [];
  let text = "";
  let i = 0;
  while (i < template.length) {
    const ch = template[i];
    if (ch !== "$") {
      text += ch;
      i++;
      continue;
    }
    if (template[i + 1] === "$") {
      text += "$";
      i += 2;
      continue;
    }
    let name = "";
    let end = i + 1;
    if (template[i + 1] === "{") {
      const close = template.indexOf("}", i + 2);
      const inner = close === -1 ? "" : template.slice(i + 2, close);
      if (close !== -1 && /^[A-Za-z0-9_]+$/.test(inner)) {
        name = inner;
        end = close + 1;
      }
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(template.slice(i + 1));
      if (m) {
        name = m[0];
        end = i + 1 + m[0].length;
      }
    }
    if (name === "") {
      text += "$";
      i++;
      continue;
    }
    if (text) pieces.push(text);
    text = "";
    // A name the expression lacks expands to "", as in Go; resolve names to indexes once.
    pieces.push({ group: /^\d+$/.test(name) ? Number(name) : names.get(name) ?? -1 });
    i = end;
  }
  if (text) pieces.push(text);
  return pieces;
}

function expand(pieces: Piece[], m: RegExpExecArray): string {
  let out = "";
  for (const p of pieces) {
    if (typeof p === "string") out += p;
    else out += p.group >= 0 ? m[p.group] ?? "" : "";
  }
  return out;
}

/** A global copy of `re` for scanning; build it once, not per request. */
export function globalRegExp(re: RegExp): RegExp {
  return new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g");
}

/** Replaces every match of `re` (which must be global) in `src` as Go does. */
export function goReplaceAll(re: RegExp, src: string, pieces: Piece[]): string {
  let out = "";
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (!m) break;
    const start = m.index;
    const end = start + m[0].length;
    out += src.slice(lastMatchEnd, start);
    // Go skips an empty match right after a previous match.
    if (end > lastMatchEnd || start === 0) out += expand(pieces, m);
    lastMatchEnd = end;
    const width = searchPos < src.length
      ? String.fromCodePoint(src.codePointAt(searchPos)!).length
      : 0;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos++;
    else searchPos = end;
  }
  return out + src.slice(lastMatchEnd);
}

/**
 * The capture-group index of each `(?P<name>…)` / `(?<name>…)` in an RE2
 * source (the first one wins for a repeated name, as in Go's Expand).
 * Needed because the RE2 translation turns named groups into plain ones.
 */
export function captureNames(src: string): Map<string, number> {
  const names = new Map<string, number>();
  let index = 0;
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const ch = src[i];
    if (ch === "\\") {
      // \Q...\E quotes literally; everything else escapes one character.
      if (src[i + 1] === "Q") {
        const end = src.indexOf("\\E", i + 2);
        i = end === -1 ? src.length : end + 1;
      } else i++;
      continue;
    }
    if (inClass) {
      if (ch === "]") inClass = false;
      continue;
    }
    if (ch === "[") {
      inClass = true;
      // A "]" right after "[" or "[^" is a literal member.
      if (src[i + 1] === "^") i++;
      if (src[i + 1] === "]") i++;
      continue;
    }
    if (ch !== "(") continue;
    if (src[i + 1] !== "?") {
      index++;
      continue;
    }
    const named = /^\(\?P?<(\w+)>/.exec(src.slice(i));
    if (named) {
      index++;
      if (!names.has(named[1])) names.set(named[1], index);
    }
  }
  return names;
}

/** A compiled `regex` + `replacement` middleware option pair. */
export interface GoReplacement {
  /** The regex, for testing whether it matches. */
  re: RegExp;
  /** The same regex with the global flag, for {@linkcode goReplaceAll}. */
  scan: RegExp;
  template: Piece[];
}

/**
 * Compiles a Go (RE2) `regex` option and its `replacement` template once, at
 * build time; a regex JavaScript cannot run goes to `fail` with the reason.
 */
export function compileGoReplacement(
  source: string,
  replacement: string,
  fail: (message: string) => never,
): GoReplacement {
  let re: RegExp;
  try {
    re = compileRe2(source);
  } catch (err) {
    fail(`${JSON.stringify(source)}: ${(err as Error).message}`);
  }
  return { re, scan: globalRegExp(re), template: parseTemplate(replacement, captureNames(source)) };
}
