/**
 * The one error type every configuration problem becomes. It carries every
 * issue found (not just the first), so a user fixes a file in one pass.
 *
 * @module
 */

/** One problem in one place of one configuration source. */
export interface ConfigIssue {
  /** Where the configuration came from: a file path, `etcd`, `redis`, … */
  source: string;
  /** Dotted path to the offending key, e.g. `http.services.app.loadBalancer.servers[0].url`; "" for the whole source. */
  path: string;
  /** What was expected and what was found. */
  message: string;
}

/** Formats one issue as `source: path: message`, leaving out empty parts. */
export function formatIssue(issue: ConfigIssue): string {
  const parts = [issue.source, issue.path, issue.message].filter((part) => part !== "");
  return parts.join(": ");
}

/**
 * A configuration that cannot be used. `message` has one line per issue.
 *
 * @example
 * ```ts
 * try {
 *   validateStatic(raw, "portico.toml");
 * } catch (e) {
 *   if (e instanceof ConfigError) console.error(e.message);
 *   // portico.toml: entryPoints.web.adress: unknown key; did you mean "address"?
 * }
 * ```
 */
export class ConfigError extends Error {
  /** Every issue found, in the order they were found. */
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    super(
      issues.length === 0 ? "invalid configuration" : issues.map(formatIssue).join("\n"),
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}
