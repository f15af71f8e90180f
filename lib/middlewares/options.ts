/**
 * Reads a middleware's options the way Traefik's providers deliver them:
 * TOML/YAML give camelCase keys with typed values, while KV stores give
 * lowercased keys with string values ("true", "10"). One accessor accepts
 * both, so each factory validates its options once, by name, with errors
 * that name the middleware, the option and what would be valid.
 *
 * @example
 * ```ts
 * const o = readOptions(context.name, options);
 * o.unknownKeysCheck(["prefix"]);
 * const prefix = o.string("prefix", { required: true });
 * ```
 *
 * @module
 */

import { parseDuration as parseDurationText, suggestKey } from "../config/schema.ts";
import { MiddlewareConfigError } from "./types.ts";

/** Per-option settings shared by every accessor. */
export interface OptionSpec<T> {
  /** Throw when the option is absent. */
  required?: boolean;
  /** Value when the option is absent (ignored when `required`). */
  default?: T;
}

/** Typed, case-insensitive access to one middleware's options. */
export interface OptionReader {
  /** The middleware name used in errors. */
  readonly name: string;
  /** True when the option is present (any case). */
  has(key: string): boolean;
  /** The raw value of an option (any case), or undefined. */
  raw(key: string): unknown;
  string(key: string, spec: OptionSpec<string> & { required: true }): string;
  string(key: string, spec: OptionSpec<string> & { default: string }): string;
  string(key: string, spec?: OptionSpec<string>): string | undefined;
  number(key: string, spec: OptionSpec<number> & { default: number }): number;
  number(key: string, spec: OptionSpec<number> & { required: true }): number;
  number(key: string, spec?: OptionSpec<number>): number | undefined;
  int(key: string, spec: OptionSpec<number> & { default: number }): number;
  int(key: string, spec: OptionSpec<number> & { required: true }): number;
  int(key: string, spec?: OptionSpec<number>): number | undefined;
  bool(key: string, spec: OptionSpec<boolean> & { default: boolean }): boolean;
  bool(key: string, spec?: OptionSpec<boolean>): boolean | undefined;
  /** A list of strings; a single string is split on commas (Traefik's KV form). */
  stringList(key: string, spec: OptionSpec<string[]> & { default: string[] }): string[];
  stringList(key: string, spec: OptionSpec<string[]> & { required: true }): string[];
  stringList(key: string, spec?: OptionSpec<string[]>): string[] | undefined;
  /** A duration in milliseconds: "10s", "1m30s", "100ms", or a bare number of seconds. */
  duration(key: string, spec: OptionSpec<number> & { default: number }): number;
  duration(key: string, spec: OptionSpec<number> & { required: true }): number;
  duration(key: string, spec?: OptionSpec<number>): number | undefined;
  /** A string-to-string map (e.g. custom headers); keys keep their case. */
  record(
    key: string,
    spec: OptionSpec<Record<string, string>> & { default: Record<string, string> },
  ): Record<string, string>;
  record(
    key: string,
    spec?: OptionSpec<Record<string, string>>,
  ): Record<string, string> | undefined;
  /** A nested options object, read with the same rules (e.g. `ipStrategy`). */
  object(key: string, spec?: { required?: boolean }): OptionReader | undefined;
  /** Throws for any key not in `allowed` (case-insensitive), suggesting the closest one. */
  unknownKeysCheck(allowed: string[]): void;
  /** Throws a MiddlewareConfigError naming `key`. */
  fail(key: string, message: string): never;
}

/**
 * An accessor over `options` for the middleware `name`. `path` prefixes
 * option names in errors for nested objects (e.g. `ipStrategy.depth`).
 */
export function readOptions(
  name: string,
  options: Record<string, unknown> | undefined | null,
  path = "",
): OptionReader {
  const source: Record<string, unknown> = options && typeof options === "object" ? options : {};
  const byLower = new Map<string, string>();
  for (const key of Object.keys(source)) byLower.set(key.toLowerCase(), key);

  const label = (key: string) => `option ${path}${key}`;
  const fail = (key: string, message: string): never => {
    throw new MiddlewareConfigError(name, `${label(key)}: ${message}`);
  };
  const raw = (key: string): unknown => {
    const actual = byLower.get(key.toLowerCase());
    return actual === undefined ? undefined : source[actual];
  };
  const has = (key: string) => raw(key) !== undefined && raw(key) !== null;

  // Shared absent/required/default handling for every typed accessor.
  function read<T>(
    key: string,
    spec: OptionSpec<T> | undefined,
    convert: (v: unknown) => T,
  ): T | undefined {
    const value = raw(key);
    if (value === undefined || value === null) {
      if (spec?.required) fail(key, "is required");
      return spec?.default;
    }
    return convert(value);
  }

  const reader: OptionReader = {
    name,
    has,
    raw,
    fail,
    string: ((key: string, spec?: OptionSpec<string>) =>
      read(key, spec, (v) => {
        if (typeof v === "string") {
          if (spec?.required && v === "") fail(key, "must not be empty");
          return v;
        }
        if (typeof v === "number" || typeof v === "boolean") return String(v);
        return fail(key, `expected a string, found ${describe(v)}`);
      })) as OptionReader["string"],
    number: ((key: string, spec?: OptionSpec<number>) =>
      read(
        key,
        spec,
        (v) => toNumber(v) ?? fail(key, `expected a number, found ${describe(v)}`),
      )) as OptionReader["number"],
    int: ((key: string, spec?: OptionSpec<number>) =>
      read(key, spec, (v) => {
        const n = toNumber(v);
        if (n === undefined || !Number.isInteger(n)) {
          fail(key, `expected an integer, found ${describe(v)}`);
        }
        return n as number;
      })) as OptionReader["int"],
    bool: ((key: string, spec?: OptionSpec<boolean>) =>
      read(key, spec, (v) => {
        if (typeof v === "boolean") return v;
        if (typeof v === "string") {
          const s = v.trim().toLowerCase();
          if (s === "true") return true;
          if (s === "false") return false;
        }
        return fail(key, `expected true or false, found ${describe(v)}`);
      })) as OptionReader["bool"],
    stringList: ((key: string, spec?: OptionSpec<string[]>) =>
      read(key, spec, (v) => {
        if (typeof v === "string") return v.split(",").map((s) => s.trim()).filter((s) => s !== "");
        if (Array.isArray(v)) {
          return v.map((item, i) => {
            if (typeof item === "string") return item;
            if (typeof item === "number" || typeof item === "boolean") return String(item);
            return fail(`${key}[${i}]`, `expected a string, found ${describe(item)}`);
          });
        }
        // KV stores deliver lists as objects keyed "0", "1", ...
        if (isPlainObject(v) && Object.keys(v).every((k) => /^\d+$/.test(k))) {
          return Object.keys(v).sort((a, b) => Number(a) - Number(b)).map((k) =>
            String((v as Record<string, unknown>)[k])
          );
        }
        return fail(key, `expected a list of strings, found ${describe(v)}`);
      })) as OptionReader["stringList"],
    duration: ((key: string, spec?: OptionSpec<number>) =>
      read(key, spec, (v) => {
        const ms = parseDuration(v);
        if (ms === undefined) {
          fail(
            key,
            `expected a duration such as "10s", "100ms", "1m30s" or a number of seconds, found ${
              describe(v)
            }`,
          );
        }
        if ((ms as number) < 0) fail(key, `must not be negative, found ${describe(v)}`);
        return ms as number;
      })) as OptionReader["duration"],
    record: ((key: string, spec?: OptionSpec<Record<string, string>>) =>
      read(key, spec, (v) => {
        if (!isPlainObject(v)) {
          return fail(key, `expected a table of name = "value", found ${describe(v)}`);
        }
        const out: Record<string, string> = {};
        for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
          if (typeof item === "string") {
            out[k] = item;
          } else if (typeof item === "number" || typeof item === "boolean") out[k] = String(item);
          else if (item === null || item === undefined) out[k] = "";
          else fail(`${key}.${k}`, `expected a string, found ${describe(item)}`);
        }
        return out;
      })) as OptionReader["record"],
    object(key: string, spec?: { required?: boolean }) {
      const v = raw(key);
      if (v === undefined || v === null) {
        if (spec?.required) fail(key, "is required");
        return undefined;
      }
      if (!isPlainObject(v)) fail(key, `expected a table of options, found ${describe(v)}`);
      const actual = byLower.get(key.toLowerCase()) ?? key;
      return readOptions(name, v as Record<string, unknown>, `${path}${actual}.`);
    },
    unknownKeysCheck(allowed: string[]) {
      const known = new Set(allowed.map((k) => k.toLowerCase()));
      for (const key of Object.keys(source)) {
        if (known.has(key.toLowerCase())) continue;
        const hint = suggestKey(key, allowed);
        const valid = `valid options: ${allowed.join(", ") || "(none)"}`;
        throw new MiddlewareConfigError(
          name,
          `unknown ${label(key)}${hint ? ` (did you mean "${hint}"?)` : ""}; ${valid}`,
        );
      }
    },
  };
  return reader;
}

/**
 * Parses a Traefik duration into milliseconds: a Go duration string
 * ("1h2m", "1.5s", "100ms") or a bare number, which Traefik reads as
 * seconds. Returns undefined when `value` is not a duration. Strings go
 * through the config schema's parser, so both read durations alike.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value * 1000 : undefined;
  return typeof value === "string" ? parseDurationText(value) : undefined;
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string" && v.trim() !== "") {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a table";
  if (typeof v === "string") return JSON.stringify(v);
  return `${typeof v} ${String(v)}`;
}
