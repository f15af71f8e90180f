/**
 * Where a DNS provider's settings come from, as lego reads them: an
 * environment variable `NAME`, or `NAME_FILE` naming a file that holds the
 * value (trimmed). As a Portico extension, a resolver may name its own
 * credentials file (`dnsChallenge.credentialsFile`, `NAME=value` lines),
 * consulted before the environment: two resolvers can then use two
 * accounts at one provider (traefik#5472).
 *
 * Values are never logged; errors name the variable, never its value.
 *
 * @module
 */

import { parseDuration } from "../../config/schema.ts";
import { DnsConfigError } from "./types.ts";

/** Reads a file's text synchronously (replaced in tests). */
export type ReadFile = (path: string) => string;

/**
 * Parses a credentials file: `NAME=value` per line; blank lines and `#`
 * comments skipped; an optional `export ` prefix and one pair of matching
 * quotes around the value are removed. Throws naming the line.
 */
export function parseCredentialsFile(where: string, text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) {
      throw new DnsConfigError(`${where}, line ${i + 1}: expected NAME=value`);
    }
    let value = m[2];
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
      value = value.slice(1, -1);
    }
    out.set(m[1], value);
  }
  return out;
}

/** The settings of one resolver's provider. */
export class Credentials {
  readonly #secrets: string[] = [];

  constructor(
    /** How the source is named in errors: `certificatesResolvers.NAME.acme.dnsChallenge`. */
    readonly where: string,
    private readonly env: (name: string) => string | undefined,
    private readonly file?: Map<string, string>,
    private readonly readFile: ReadFile = Deno.readTextFileSync,
  ) {}

  /** Builds the source, reading `credentialsFile` when one is named. */
  static load(
    where: string,
    env: (name: string) => string | undefined,
    credentialsFile?: string,
    readFile: ReadFile = Deno.readTextFileSync,
  ): Credentials {
    if (!credentialsFile) return new Credentials(where, env, undefined, readFile);
    let text: string;
    try {
      text = readFile(credentialsFile);
    } catch (err) {
      throw new DnsConfigError(
        `${where}.credentialsFile: cannot read "${credentialsFile}": ${(err as Error).message}`,
      );
    }
    return new Credentials(where, env, parseCredentialsFile(`${credentialsFile}`, text), readFile);
  }

  #one(name: string): string | undefined {
    const direct = this.file?.get(name) ?? nonEmpty(this.env(name));
    if (direct !== undefined && direct !== "") return direct;
    const path = this.file?.get(`${name}_FILE`) ?? nonEmpty(this.env(`${name}_FILE`));
    if (!path) return undefined;
    try {
      return this.readFile(path).trim();
    } catch (err) {
      throw new DnsConfigError(
        `${this.where}: ${name}_FILE names "${path}", which cannot be read: ${
          (err as Error).message
        }`,
      );
    }
  }

  /** The first of `names` (a variable and its aliases) that is set, else undefined. */
  get(...names: string[]): string | undefined {
    for (const n of names) {
      const v = this.#one(n);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** Like {@linkcode get}, and the value is remembered as a secret to redact. */
  secret(...names: string[]): string | undefined {
    const v = this.get(...names);
    if (v !== undefined) this.#secrets.push(v);
    return v;
  }

  /** The text of the file that variable `name` names (lego's `RFC2136_TSIG_FILE`). */
  fileNamedBy(name: string, path: string): string {
    try {
      return this.readFile(path);
    } catch (err) {
      throw new DnsConfigError(
        `${this.where}: ${name} names "${path}", which cannot be read: ${(err as Error).message}`,
      );
    }
  }

  /** Remembers a secret found inside a file, to redact it like the others. */
  remember(secret: string): void {
    this.#secrets.push(secret);
  }

  /** Every secret read so far, to redact from any message a provider builds. */
  get secrets(): string[] {
    return [...this.#secrets];
  }

  /** Throws naming every one of `missing` (variable names) when any is given. */
  requireAll(provider: string, missing: string[]): void {
    if (missing.length === 0) return;
    throw new DnsConfigError(
      `${this.where}: provider ${provider} needs ${
        missing.length === 1 ? "the variable" : "the variables"
      } ${missing.join(", ")}, not set (in the environment, as NAME_FILE, ${
        this.file ? "or in credentialsFile" : "or in a credentialsFile"
      })`,
    );
  }

  /**
   * A time in milliseconds from `name`: seconds as lego writes them (`60`)
   * or a duration (`500ms`, `1m`); `fallbackMs` when unset.
   */
  duration(name: string, fallbackMs: number): number {
    const v = this.get(name);
    if (v === undefined) return fallbackMs;
    const ms = parseDuration(v);
    if (ms === undefined || ms < 0) {
      throw new DnsConfigError(
        `${this.where}: ${name} must be a number of seconds or a duration like "30s"`,
      );
    }
    return ms;
  }

  /** A non-negative integer from `name`, `fallback` when unset. */
  integer(name: string, fallback: number): number {
    const v = this.get(name);
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v.trim())) {
      throw new DnsConfigError(`${this.where}: ${name} must be a whole number`);
    }
    return Number(v.trim());
  }

  /** A boolean from `name` (`true`/`false`, `1`/`0`), `fallback` when unset. */
  flag(name: string, fallback: boolean): boolean {
    const v = this.get(name)?.trim().toLowerCase();
    if (v === undefined) return fallback;
    if (v === "true" || v === "1") return true;
    if (v === "false" || v === "0") return false;
    throw new DnsConfigError(`${this.where}: ${name} must be true or false`);
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}
