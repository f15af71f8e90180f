/**
 * Traefik-style overrides of the static configuration from command-line
 * flags (`--entryPoints.web.address=:8000`) and environment variables
 * (`PORTICO_ENTRYPOINTS_WEB_ADDRESS=:8000`), applied to the raw TOML tree
 * before validation, so an overridden value is checked like a written one.
 *
 * Paths are matched case-insensitively against `staticConfigSchema`; a name
 * the user chooses (an entrypoint, a resolver) reuses the spelling already in
 * the file, else keeps the flag's spelling (environment names are
 * lowercased, as Traefik does). Environment variables go first, flags last,
 * so a flag wins over the environment, which wins over the file.
 *
 * @module
 */

import { ConfigError, type ConfigIssue } from "../config/errors.ts";
import type { Schema } from "../config/schema.ts";
import { staticConfigSchema } from "../config/static.ts";
import { ENV_PREFIX } from "../env.ts";


/** Command-line flags that are not configuration keys. */
export const CLI_FLAGS = new Set(["configfile", "help", "h", "keep", "dry-run", "dryrun"]);

/** One applied override: the dotted path it set and where it came from (`--flag` or env name). */
export interface AppliedOverride {
  path: string;
  origin: string;
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === "object" && v !== null && !Array.isArray(v);

/** The existing key of `tree` equal to `name` ignoring case, else undefined. */
function existingKey(tree: Tree, name: string): string | undefined {
  const lower = name.toLowerCase();
  return Object.keys(tree).find((k) => k.toLowerCase() === lower);
}

/** Turns the text of a flag or variable into the raw value the schema node expects. */
function convert(schema: Schema | undefined, text: string): unknown {
  switch (schema?.kind) {
    case "boolean":
      return /^(true|false)$/i.test(text) ? text.toLowerCase() === "true" : text;
    case "number":
      return text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
    case "duration":
      // A bare number is seconds in Traefik; keep it a number so the schema reads it so.
      return text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
    case "list":
      return text === "" ? [] : text.split(",").map((item) => convert(schema.items, item.trim()));
    case "object":
      // `--api` or `--api=true` switches a section on; `false` switches it off.
      if (schema.allowBoolean && /^(true|false)$/i.test(text)) return text.toLowerCase() === "true";
      return text;
    default:
      return text;
  }
}

/**
 * Resolves `segments` against `schema`, writing `value` into `tree`.
 * Returns the dotted path written, or an error message.
 */
function assign(
  schema: Schema | undefined,
  tree: Tree,
  segments: readonly string[],
  text: string,
  fromEnv: boolean,
  done: string[],
): string | { error: string } {
  const [head, ...rest] = segments;
  const at = done.length ? done.join(".") : "the top level";
  if (schema === undefined || schema.kind === "table" || schema.kind === "union") {
    // Below a free-form table every name is the user's.
    const key = existingKey(tree, head) ?? (fromEnv ? head.toLowerCase() : head);
    if (rest.length === 0) {
      tree[key] = text;
      return [...done, key].join(".");
    }
    if (!isTree(tree[key])) tree[key] = {};
    return assign(undefined, tree[key] as Tree, rest, text, fromEnv, [...done, key]);
  }
  if (schema.kind === "object") {
    const field = Object.keys(schema.fields).find((f) => f.toLowerCase() === head.toLowerCase());
    if (field === undefined) {
      return {
        error: `unknown key "${head}" under ${at}; expected one of: ${
          Object.keys(schema.fields).join(", ")
        }`,
      };
    }
    const child = schema.fields[field];
    const key = existingKey(tree, field) ?? field;
    if (rest.length === 0) {
      tree[key] = convert(child, text);
      return [...done, key].join(".");
    }
    if (!isTree(tree[key])) tree[key] = {};
    return assign(child, tree[key] as Tree, rest, text, fromEnv, [...done, key]);
  }
  if (schema.kind === "record") {
    // Environment names cannot say where a name with "_" ends: try the
    // shortest name first, then longer ones, until the rest resolves.
    const widths = fromEnv ? rest.length : 0;
    let firstError: { error: string } | undefined;
    for (let w = 0; w <= widths; w++) {
      if (rest.length - w === 0) break;
      const name = [head, ...rest.slice(0, w)].join("_");
      const key = existingKey(tree, name) ?? (fromEnv ? name.toLowerCase() : name);
      const fresh = !isTree(tree[key]);
      const sub = fresh ? {} : tree[key] as Tree;
      const result = assign(schema.values, sub, rest.slice(w), text, fromEnv, [...done, key]);
      if (typeof result === "string") {
        tree[key] = sub;
        return result;
      }
      firstError ??= result;
    }
    return firstError ?? { error: `expected a key below "${[...done, head].join(".")}"` };
  }
  if (schema.kind === "list") {
    const index = Number(head);
    if (!Number.isInteger(index) || index < 0) {
      return { error: `expected a list index under ${at}, found "${head}"` };
    }
    return {
      error: `indexed list items are not supported from flags; set ${at} to a comma-separated list`,
    };
  }
  return { error: `${at} is a value and has no key "${head}"` };
}

/** Splits a flag name (`entryPoints.web.address`) into path segments. */
function flagSegments(name: string): string[] {
  return name.split(".").filter((s) => s !== "");
}

/**
 * Applies environment variables then flags to a raw static tree (mutated and
 * returned). Throws a {@linkcode ConfigError} naming the flag or variable
 * for a key the static config does not have. Variables whose first segment
 * is not a top-level key (e.g. `PORTICO_TEST_HOOKS`) are not config and are
 * left alone.
 *
 * @example
 * ```ts
 * const { tree } = applyOverrides({}, new Map([["entryPoints.web.address", ":8000"]]), {
 *   PORTICO_API_INSECURE: "true",
 * });
 * // tree = { api: { insecure: true }, entryPoints: { web: { address: ":8000" } } }
 * ```
 */
export function applyOverrides(
  raw: Record<string, unknown>,
  flags: ReadonlyMap<string, string>,
  env: Readonly<Record<string, string>>,
): { tree: Record<string, unknown>; applied: AppliedOverride[] } {
  const issues: ConfigIssue[] = [];
  const applied: AppliedOverride[] = [];
  const topLevel = staticConfigSchema.kind === "object"
    ? Object.keys(staticConfigSchema.fields).map((k) => k.toLowerCase())
    : [];
  const run = (origin: string, segments: string[], text: string, fromEnv: boolean) => {
    const result = assign(staticConfigSchema, raw, segments, text, fromEnv, []);
    if (typeof result === "string") applied.push({ path: result, origin });
    else issues.push({ source: origin, path: segments.join("."), message: result.error });
  };
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX)) continue;
    const segments = name.slice(ENV_PREFIX.length).split("_").filter((s) => s !== "");
    if (segments.length === 0 || !topLevel.includes(segments[0].toLowerCase())) continue;
    run(`environment variable ${name}`, segments, env[name], true);
  }
  for (const [name, text] of flags) {
    if (CLI_FLAGS.has(name.toLowerCase())) continue;
    run(`flag --${name}`, flagSegments(name), text, false);
  }
  if (issues.length) throw new ConfigError(issues);
  return { tree: raw, applied };
}

/**
 * Re-labels validation issues about an overridden key so they name the flag
 * or variable instead of the file.
 */
export function relabelIssues(
  error: ConfigError,
  applied: readonly AppliedOverride[],
): ConfigError {
  const byPath = new Map(applied.map((a) => [a.path.toLowerCase(), a.origin]));
  return new ConfigError(error.issues.map((issue) => {
    const path = issue.path.toLowerCase();
    for (const [p, origin] of byPath) {
      if (path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`)) {
        return { ...issue, source: origin };
      }
    }
    return issue;
  }));
}
