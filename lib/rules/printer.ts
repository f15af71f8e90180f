/**
 * @module
 * AST → rule string. The output parses back to an equal AST: parentheses are added only
 * where precedence or left-associativity needs them, and values use backticks unless they
 * contain a backtick or a carriage return (which Go drops from raw strings).
 */

import type { RuleAST } from "./ast.ts";

function quote(value: string): string {
  if (!value.includes("`") && !value.includes("\r")) return "`" + value + "`";
  let out = '"';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

const LEVEL = { or: 1, and: 2, not: 3, matcher: 4 } as const;

/**
 * Prints a rule AST as a Traefik v3 rule string.
 *
 * @example
 * ```ts
 * printRule(parseRule("(Host(`a`) || Host(`b`)) && !Path(\"/x\")"));
 * // "(Host(`a`) || Host(`b`)) && !Path(`/x`)"
 * ```
 */
export function printRule(ast: RuleAST): string {
  const wrap = (node: RuleAST, min: number) => {
    const s = printRule(node);
    return LEVEL[node.type] < min ? `(${s})` : s;
  };
  switch (ast.type) {
    case "matcher":
      return `${ast.name}(${ast.args.map(quote).join(", ")})`;
    case "not":
      return "!" + wrap(ast.expr, LEVEL.not);
    case "and":
    case "or": {
      const level = LEVEL[ast.type];
      const op = ast.type === "and" ? " && " : " || ";
      // Left-associative: a right child of the same level needs parentheses.
      return wrap(ast.left, level) + op + wrap(ast.right, level + 1);
    }
  }
}
