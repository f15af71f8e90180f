/**
 * @module
 * The one error type the rule engine throws for a rule a user wrote.
 */

/**
 * A rule that cannot be parsed or whose matcher values are invalid.
 *
 * The message names the rule, the 1-based column (in UTF-16 code units of the rule
 * string) and the text there, e.g.
 * ``rule "Host(`a.com`) && Pat(`/x`)": unknown matcher "Pat" at column 18 (near "Pat(`/x`)"); valid matchers: Host, ...``
 */
export class RuleSyntaxError extends Error {
  /** The whole rule as given. */
  readonly rule: string;
  /** 1-based column where the problem starts. */
  readonly column: number;
  /** The offending text at `column`. */
  readonly near: string;
  /** The reason alone, without rule, column and hint. */
  readonly reason: string;

  constructor(rule: string, reason: string, offset: number, near: string, hint?: string) {
    const column = offset + 1;
    super(
      `rule ${JSON.stringify(rule)}: ${reason} at column ${column} (near ${JSON.stringify(near)})` +
        (hint ? `; ${hint}` : ""),
    );
    this.name = "RuleSyntaxError";
    this.rule = rule;
    this.column = column;
    this.near = near;
    this.reason = reason;
  }
}
