/**
 * A small declarative schema language for configuration trees, and the one
 * decoder that walks a raw tree (from TOML or from KV keys) against it.
 *
 * The decoder collects every issue rather than stopping at the first, each
 * with a dotted path and "expected …, found …". It applies defaults (a
 * default is itself decoded, so an object default of `{}` fills in its
 * fields' defaults) and normalises durations to milliseconds.
 *
 * Raw trees from a KV store differ from TOML: keys are lowercase, every leaf
 * is a string, lists are tables keyed "0", "1", …, and an empty value turns
 * on a feature that has no options. {@linkcode DecodeOptions} switches each
 * of those on, so the same schemas serve both ({@linkcode KV_DECODE_OPTIONS}).
 *
 * @example
 * ```ts
 * const schema = obj({
 *   address: str({ required: true }),
 *   timeout: duration({ default: "10s" }),
 * });
 * const { value, issues } = decodeWithSchema(schema, { address: ":80" }, { source: "x.toml" });
 * // value = { address: ":80", timeout: 10000 }, issues = []
 * ```
 *
 * @module
 */

import { ConfigError, type ConfigIssue } from "./errors.ts";

// ---------------------------------------------------------------- schema nodes

/** One step of a path: a key, or an index into a list. */
export type PathSegment = string | number;

/** What a `check` hook may use to report problems below the checked node. */
export interface CheckContext {
  /** Reports an issue at the checked node, or at `subpath` below it. */
  report(message: string, ...subpath: PathSegment[]): void;
}

/** Options every schema node takes. */
export interface BaseOptions {
  /** A missing value is an error. */
  required?: boolean;
  /** Used when the value is missing; decoded through the schema like any input. */
  default?: unknown;
  /** How the expected value reads in messages, overriding the generated text. */
  expected?: string;
  /**
   * Runs once the node decoded without issues, with the decoded value.
   * Cross-field rules live here.
   */
  // deno-lint-ignore no-explicit-any
  check?: (value: any, ctx: CheckContext) => void;
}

/** A string, optionally restricted to a set of values or a pattern. */
export interface StringSchema extends BaseOptions {
  kind: "string";
  /** "" is accepted; by default it is not. */
  allowEmpty?: boolean;
  /** The accepted values; the canonical spelling is what decoding returns. */
  values?: readonly string[];
  /** Match `values` (and `aliases`) regardless of case. */
  ignoreCase?: boolean;
  /** Other spellings mapped to a canonical value, e.g. `TRACE` → `DEBUG`. */
  aliases?: Readonly<Record<string, string>>;
  /** Returns a message when the string is not valid. */
  validate?: (value: string) => string | undefined;
  /** A TOML integer is accepted too and decoded as itself (e.g. `workers = 2` or `"auto"`). */
  orInteger?: { min: number; max: number };
}

/** A finite number, optionally an integer within bounds. */
export interface NumberSchema extends BaseOptions {
  kind: "number";
  integer?: boolean;
  min?: number;
  max?: number;
}

/** `true` or `false`. */
export interface BooleanSchema extends BaseOptions {
  kind: "boolean";
}

/** A Traefik duration, normalised to milliseconds. */
export interface DurationSchema extends BaseOptions {
  kind: "duration";
  /** Lowest accepted value in milliseconds; 0 unless set. */
  min?: number;
}

/** A list whose items all follow one schema. */
export interface ListSchema extends BaseOptions {
  kind: "list";
  items: Schema;
  minItems?: number;
}

/** A table keyed by user-chosen names (routers, services, entrypoints, …). */
export interface RecordSchema extends BaseOptions {
  kind: "record";
  values: Schema;
  /** Returns a message when a name is not valid. */
  validateKey?: (key: string) => string | undefined;
}

/** A table with known keys. */
export interface ObjectSchema extends BaseOptions {
  kind: "object";
  fields: Readonly<Record<string, Schema>>;
  /** Groups of keys of which exactly one must be present. */
  exactlyOne?: readonly (readonly string[])[];
  /** Groups of keys of which at most one may be present. */
  atMostOne?: readonly (readonly string[])[];
  /** Keys known from Traefik that are not supported; the value is the reason. */
  unsupported?: Readonly<Record<string, string>>;
  /** Keys known from Traefik that are accepted and dropped. */
  ignored?: readonly string[];
  /** `true` means an empty table (a feature switched on), `false` means absent. */
  allowBoolean?: boolean;
}

/** A table with exactly one key out of a known set, the key naming a variant. */
export interface UnionSchema extends BaseOptions {
  kind: "union";
  variants: Readonly<Record<string, Schema>>;
  /** What the key names, for messages: "service type", "middleware type". */
  label: string;
  unsupported?: Readonly<Record<string, string>>;
}

/** Any table, kept as it is (options some other module validates). */
export interface TableSchema extends BaseOptions {
  kind: "table";
}

/** Any schema node. */
export type Schema =
  | StringSchema
  | NumberSchema
  | BooleanSchema
  | DurationSchema
  | ListSchema
  | RecordSchema
  | ObjectSchema
  | UnionSchema
  | TableSchema;

// ---------------------------------------------------------------- builders

type Opts<S> = Omit<S, "kind">;

/** A string. */
export function str(options: Opts<StringSchema> = {}): StringSchema {
  return { kind: "string", ...options };
}

/** One of a fixed set of strings. */
export function enumOf(
  values: readonly string[],
  options: Omit<Opts<StringSchema>, "values"> = {},
): StringSchema {
  return { kind: "string", values, ...options };
}

/** A number. */
export function num(options: Opts<NumberSchema> = {}): NumberSchema {
  return { kind: "number", ...options };
}

/** An integer. */
export function int(options: Omit<Opts<NumberSchema>, "integer"> = {}): NumberSchema {
  return { kind: "number", integer: true, ...options };
}

/** A boolean. */
export function bool(options: Opts<BooleanSchema> = {}): BooleanSchema {
  return { kind: "boolean", ...options };
}

/** A duration in milliseconds. */
export function duration(options: Opts<DurationSchema> = {}): DurationSchema {
  return { kind: "duration", ...options };
}

/** A list of `items`. */
export function list(items: Schema, options: Omit<Opts<ListSchema>, "items"> = {}): ListSchema {
  return { kind: "list", items, ...options };
}

/** A list of non-empty strings, empty by default. */
export function stringList(options: Omit<Opts<ListSchema>, "items"> = {}): ListSchema {
  return { kind: "list", items: str(), default: [], ...options };
}

/** A table of named `values`. */
export function record(
  values: Schema,
  options: Omit<Opts<RecordSchema>, "values"> = {},
): RecordSchema {
  return { kind: "record", values, ...options };
}

/** A table with known keys. */
export function obj(
  fields: Record<string, Schema>,
  options: Omit<Opts<ObjectSchema>, "fields"> = {},
): ObjectSchema {
  return { kind: "object", fields, ...options };
}

/** A table with exactly one key naming a variant. */
export function union(
  variants: Record<string, Schema>,
  options: Omit<Opts<UnionSchema>, "variants">,
): UnionSchema {
  return { kind: "union", variants, ...options };
}

/** Any table, kept as is. */
export function table(options: Opts<TableSchema> = {}): TableSchema {
  return { kind: "table", ...options };
}

// ---------------------------------------------------------------- decoding

/** How to read a raw tree. TOML needs none of the switches; KV trees need all. */
export interface DecodeOptions {
  /** Named in every issue: a file path, `etcd`, … */
  source: string;
  /** Match known keys regardless of case (KV keys are lowercase). */
  caseInsensitive?: boolean;
  /** Read string leaves as numbers, booleans and durations; "" as an empty table. */
  coerceStrings?: boolean;
  /** Read tables keyed "0", "1", … as lists. */
  listsFromIndexedTables?: boolean;
}

/** The switches a tree built from KV keys needs. */
export const KV_DECODE_OPTIONS: Omit<DecodeOptions, "source"> = {
  caseInsensitive: true,
  coerceStrings: true,
  listsFromIndexedTables: true,
};

/** What {@linkcode decodeWithSchema} returns: `value` is meaningful only when `issues` is empty. */
export interface DecodeResult<T> {
  value: T | undefined;
  issues: ConfigIssue[];
}

/**
 * Decodes `tree` against `schema`, collecting every issue.
 *
 * @example
 * ```ts
 * // A KV tree: lowercase keys, string leaves, indexed tables.
 * const tree = { servers: { "0": { url: "http://a" } }, passhostheader: "false" };
 * decodeWithSchema(lbSchema, tree, { source: "etcd", ...KV_DECODE_OPTIONS });
 * ```
 */
export function decodeWithSchema<T = unknown>(
  schema: Schema,
  tree: unknown,
  options: DecodeOptions,
): DecodeResult<T> {
  const decoder = new Decoder(options);
  const value = tree === undefined ? decoder.missing(schema, []) : decoder.decode(schema, tree, []);
  return { value: value as T | undefined, issues: decoder.issues };
}

/** Like {@linkcode decodeWithSchema}, but throws a {@linkcode ConfigError} on any issue. */
export function decodeOrThrow<T = unknown>(
  schema: Schema,
  tree: unknown,
  options: DecodeOptions,
): T {
  const { value, issues } = decodeWithSchema<T>(schema, tree, options);
  if (issues.length > 0) throw new ConfigError(issues);
  return value as T;
}

/** Collects issues with paths, for checks that run after decoding. */
export class IssueCollector {
  readonly issues: ConfigIssue[] = [];
  constructor(readonly source: string) {}

  /** Records an issue at `path`. */
  add(path: readonly PathSegment[], message: string): void {
    this.issues.push({ source: this.source, path: formatPath(path), message });
  }

  /** Throws a {@linkcode ConfigError} holding every issue, if there is any. */
  throwIfAny(): void {
    if (this.issues.length > 0) throw new ConfigError(this.issues);
  }
}

class Decoder {
  readonly issues: ConfigIssue[] = [];
  constructor(readonly options: DecodeOptions) {}

  report(path: readonly PathSegment[], message: string): void {
    this.issues.push({ source: this.options.source, path: formatPath(path), message });
  }

  /** The value for an absent key: its default, an error if required, or undefined. */
  missing(schema: Schema, path: PathSegment[]): unknown {
    if (schema.default !== undefined) return this.decode(schema, cloneTree(schema.default), path);
    if (schema.required) this.report(path, `missing; expected ${describeExpected(schema)}`);
    return undefined;
  }

  decode(schema: Schema, raw: unknown, path: PathSegment[]): unknown {
    const before = this.issues.length;
    const value = this.decodeKind(schema, raw, path);
    if (schema.check && this.issues.length === before && value !== undefined) {
      schema.check(value, {
        report: (message, ...subpath) => this.report([...path, ...subpath], message),
      });
    }
    return value;
  }

  private decodeKind(schema: Schema, raw: unknown, path: PathSegment[]): unknown {
    switch (schema.kind) {
      case "string":
        return this.decodeString(schema, raw, path);
      case "number":
        return this.decodeNumber(schema, raw, path);
      case "boolean":
        return this.decodeBoolean(schema, raw, path);
      case "duration":
        return this.decodeDuration(schema, raw, path);
      case "list":
        return this.decodeList(schema, raw, path);
      case "record":
        return this.decodeRecord(schema, raw, path);
      case "object":
        return this.decodeObject(schema, raw, path);
      case "union":
        return this.decodeUnion(schema, raw, path);
      case "table":
        return this.decodeTable(schema, raw, path);
    }
  }

  private mismatch(schema: Schema, raw: unknown, path: PathSegment[]): undefined {
    this.report(path, `expected ${describeExpected(schema)}, found ${describeFound(raw)}`);
    return undefined;
  }

  private decodeString(schema: StringSchema, raw: unknown, path: PathSegment[]): unknown {
    const whole = schema.orInteger;
    if (whole && typeof raw === "number" && Number.isInteger(raw) && raw >= whole.min && raw <= whole.max) return raw;
    if (typeof raw !== "string") return this.mismatch(schema, raw, path);
    if (raw === "" && !schema.allowEmpty && !schema.values?.includes("")) {
      this.report(path, `expected ${describeExpected(schema, true)}, found an empty string`);
      return undefined;
    }
    let value = raw;
    if (schema.aliases) {
      const alias = findKey(Object.keys(schema.aliases), value, schema.ignoreCase ?? false);
      if (alias !== undefined) value = schema.aliases[alias];
    }
    if (schema.values) {
      const canonical = findKey(schema.values, value, schema.ignoreCase ?? false);
      if (canonical === undefined) return this.mismatch(schema, raw, path);
      value = canonical;
    }
    const problem = schema.validate?.(value);
    if (problem !== undefined) {
      this.report(path, `${problem}, found ${describeFound(raw)}`);
      return undefined;
    }
    return value;
  }

  private decodeNumber(schema: NumberSchema, raw: unknown, path: PathSegment[]): unknown {
    let value = raw;
    if (typeof value === "string" && this.options.coerceStrings) {
      value = NUMBER_TEXT.test(value.trim()) ? Number(value.trim()) : value;
    }
    if (typeof value === "bigint") value = Number(value);
    if (typeof value !== "number" || !Number.isFinite(value)) {
      return this.mismatch(schema, raw, path);
    }
    if (schema.integer && !Number.isInteger(value)) return this.mismatch(schema, raw, path);
    if (schema.min !== undefined && value < schema.min) return this.mismatch(schema, raw, path);
    if (schema.max !== undefined && value > schema.max) return this.mismatch(schema, raw, path);
    return value;
  }

  private decodeBoolean(schema: BooleanSchema, raw: unknown, path: PathSegment[]): unknown {
    if (typeof raw === "boolean") return raw;
    if (typeof raw === "string" && this.options.coerceStrings) {
      // The spellings Go's strconv.ParseBool accepts, as Traefik's KV provider does.
      if (["1", "t", "T", "TRUE", "true", "True"].includes(raw)) return true;
      if (["0", "f", "F", "FALSE", "false", "False"].includes(raw)) return false;
    }
    return this.mismatch(schema, raw, path);
  }

  private decodeDuration(schema: DurationSchema, raw: unknown, path: PathSegment[]): unknown {
    let ms: number | undefined;
    if (typeof raw === "number" && Number.isFinite(raw)) ms = raw * 1000;
    else if (typeof raw === "bigint") ms = Number(raw) * 1000;
    // Traefik's own duration type accepts strings in TOML too, so no coercion switch is needed.
    else if (typeof raw === "string") ms = parseDuration(raw);
    if (ms === undefined) return this.mismatch(schema, raw, path);
    const min = schema.min ?? 0;
    if (ms < min) {
      this.report(
        path,
        `expected a duration of at least ${formatDuration(min)}, found ${describeFound(raw)}`,
      );
      return undefined;
    }
    return ms;
  }

  private asTable(raw: unknown): Record<string, unknown> | undefined {
    if (raw === "" && this.options.coerceStrings) return {};
    return isTable(raw) ? raw : undefined;
  }

  private decodeList(schema: ListSchema, raw: unknown, path: PathSegment[]): unknown {
    let items: unknown[] | undefined;
    if (Array.isArray(raw)) items = raw;
    else if (raw === "" && this.options.coerceStrings) items = [];
    else if (this.options.listsFromIndexedTables && isTable(raw)) items = indexedTableToList(raw);
    if (items === undefined) return this.mismatch(schema, raw, path);
    if (schema.minItems !== undefined && items.length < schema.minItems) {
      this.report(
        path,
        `expected at least ${schema.minItems} item${schema.minItems === 1 ? "" : "s"}, found ${
          describeFound(items)
        }`,
      );
      return undefined;
    }
    return items.map((item, index) => {
      if (item === undefined || item === null) {
        return this.mismatch(schema.items, item, [...path, index]);
      }
      return this.decode(schema.items, item, [...path, index]);
    });
  }

  private decodeRecord(schema: RecordSchema, raw: unknown, path: PathSegment[]): unknown {
    const input = this.asTable(raw);
    if (input === undefined) return this.mismatch(schema, raw, path);
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(input)) {
      const keyProblem = schema.validateKey?.(key);
      if (keyProblem !== undefined) {
        this.report([...path, key], keyProblem);
        continue;
      }
      const decoded = this.decode(schema.values, value, [...path, key]);
      if (decoded !== undefined) setOwn(out, key, decoded);
    }
    return out;
  }

  /**
   * Maps each input key to a known key. Unknown and unsupported keys become
   * issues; the map holds only known ones.
   */
  private matchKeys(
    input: Record<string, unknown>,
    known: readonly string[],
    unsupported: Readonly<Record<string, string>>,
    ignored: readonly string[],
    path: PathSegment[],
  ): Map<string, string> {
    const matched = new Map<string, string>(); // canonical -> input key
    const ci = this.options.caseInsensitive ?? false;
    for (const key of Object.keys(input)) {
      const canonical = findKey(known, key, ci);
      if (canonical !== undefined) {
        const previous = matched.get(canonical);
        if (previous !== undefined) {
          this.report(
            [...path, key],
            `duplicate key: "${previous}" and "${key}" are the same key (keys are case-insensitive here)`,
          );
          continue;
        }
        matched.set(canonical, key);
        continue;
      }
      if (findKey(ignored, key, ci) !== undefined) continue;
      const unsupportedKey = findKey(Object.keys(unsupported), key, ci);
      if (unsupportedKey !== undefined) {
        this.report([...path, key], unsupported[unsupportedKey]);
        continue;
      }
      const suggestion = suggestKey(key, known);
      this.report(
        [...path, key],
        suggestion !== undefined
          ? `unknown key; did you mean "${suggestion}"?`
          : known.length === 0
          ? "unknown key; nothing is allowed here"
          : `unknown key; expected one of: ${known.join(", ")}`,
      );
    }
    return matched;
  }

  private decodeObject(schema: ObjectSchema, raw: unknown, path: PathSegment[]): unknown {
    if (schema.allowBoolean && raw === false) return undefined;
    if (schema.allowBoolean && raw === true) raw = {};
    const input = this.asTable(raw);
    if (input === undefined) return this.mismatch(schema, raw, path);
    const known = Object.keys(schema.fields);
    const matched = this.matchKeys(
      input,
      known,
      schema.unsupported ?? {},
      schema.ignored ?? [],
      path,
    );
    const out: Record<string, unknown> = {};
    for (const [name, fieldSchema] of Object.entries(schema.fields)) {
      const inputKey = matched.get(name);
      const fieldPath = [...path, name];
      const value = inputKey === undefined
        ? this.missing(fieldSchema, fieldPath)
        : this.decode(fieldSchema, input[inputKey], fieldPath);
      if (value !== undefined) out[name] = value;
    }
    for (const group of schema.exactlyOne ?? []) {
      const present = group.filter((name) => matched.has(name));
      if (present.length !== 1) {
        this.report(
          path,
          `expected exactly one of ${group.map(quote).join(", ")}, found ${
            present.length === 0 ? "none" : present.map(quote).join(" and ")
          }`,
        );
      }
    }
    for (const group of schema.atMostOne ?? []) {
      const present = group.filter((name) => matched.has(name));
      if (present.length > 1) {
        this.report(
          path,
          `expected at most one of ${group.map(quote).join(", ")}, found ${
            present.map(quote).join(" and ")
          }`,
        );
      }
    }
    return out;
  }

  private decodeUnion(schema: UnionSchema, raw: unknown, path: PathSegment[]): unknown {
    const input = isTable(raw) ? raw : undefined;
    if (input === undefined) return this.mismatch(schema, raw, path);
    const known = Object.keys(schema.variants);
    const before = this.issues.length;
    const matched = this.matchKeys(input, known, schema.unsupported ?? {}, [], path);
    if (matched.size !== 1) {
      // Unknown keys already explain an empty match; say nothing more then.
      if (matched.size > 1 || this.issues.length === before) {
        this.report(
          path,
          `expected exactly one ${schema.label} (${known.join(", ")}), found ${
            matched.size === 0 ? "none" : [...matched.keys()].map(quote).join(" and ")
          }`,
        );
      }
      return undefined;
    }
    const [[canonical, inputKey]] = [...matched.entries()];
    const value = this.decode(schema.variants[canonical], input[inputKey], [...path, canonical]);
    return value === undefined ? undefined : { [canonical]: value };
  }

  private decodeTable(schema: TableSchema, raw: unknown, path: PathSegment[]): unknown {
    const input = this.asTable(raw);
    if (input === undefined) return this.mismatch(schema, raw, path);
    return plainTree(input, this.options.listsFromIndexedTables ?? false);
  }
}

// ---------------------------------------------------------------- durations

const NUMBER_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION_PART = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

/**
 * Parses a Traefik duration string to milliseconds: Go's `time.ParseDuration`
 * forms ("100ms", "1m30s", "1.5h", "-2s") and a bare number of seconds ("10").
 * Returns undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  let rest = text.trim();
  if (rest === "") return undefined;
  // Traefik reads a bare number as seconds, not as Go's unit-less nanoseconds.
  if (NUMBER_TEXT.test(rest)) return Number(rest) * 1000;
  let sign = 1;
  if (rest[0] === "-" || rest[0] === "+") {
    if (rest[0] === "-") sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  let total = 0;
  let parts = 0;
  while (rest !== "") {
    const match = DURATION_PART.exec(rest);
    if (match === null) return undefined;
    total += Number(match[1]) * DURATION_UNITS[match[2]];
    rest = rest.slice(match[0].length);
    parts++;
  }
  return parts === 0 ? undefined : sign * total;
}

/** Formats milliseconds the way a user would write them: "1m30s", "100ms", "0s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1000) return `${ms}ms`;
  let rest = ms;
  let out = "";
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  if (rest > 0) out += `${rest / 1000}s`;
  return out;
}

// ---------------------------------------------------------------- helpers

/** True for a plain table (TOML table or JSON object), false for lists, dates and scalars. */
export function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

function indexedTableToList(raw: Record<string, unknown>): unknown[] | undefined {
  const keys = Object.keys(raw);
  if (!keys.every((key) => /^\d+$/.test(key))) return undefined;
  // Gaps (0, 2) keep their order and close up, as Traefik's KV decoder does.
  return keys.sort((a, b) => Number(a) - Number(b)).map((key) => raw[key]);
}

/** Copies a tree into plain objects and arrays, turning indexed tables into lists if asked. */
function plainTree(value: unknown, listsFromIndexedTables: boolean): unknown {
  if (Array.isArray(value)) return value.map((item) => plainTree(item, listsFromIndexedTables));
  if (!isTable(value)) return value;
  if (listsFromIndexedTables && Object.keys(value).length > 0) {
    const items = indexedTableToList(value);
    if (items !== undefined) return items.map((item) => plainTree(item, listsFromIndexedTables));
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    setOwn(out, key, plainTree(item, listsFromIndexedTables));
  }
  return out;
}

/** Sets a key even when it is `__proto__`, which plain assignment would treat as the prototype. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function cloneTree(value: unknown): unknown {
  return plainTree(value, false);
}

function findKey(known: readonly string[], key: string, ignoreCase: boolean): string | undefined {
  if (known.includes(key)) return key;
  if (!ignoreCase) return undefined;
  const lower = key.toLowerCase();
  return known.find((candidate) => candidate.toLowerCase() === lower);
}

function quote(text: string): string {
  return `"${text}"`;
}

/** Levenshtein distance between two strings. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

/**
 * The known key a mistyped `key` most likely meant, compared without case:
 * `entrypoint` → `entryPoints`, `rul` → `rule`. Undefined when nothing is close.
 */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(key.length, best.length) / 3));
  if (bestDistance <= limit) return best;
  // A truncated key ("health" for "healthCheck") is also a likely typo.
  const prefixed = known.find((candidate) =>
    lower.length >= 3 && candidate.toLowerCase().startsWith(lower)
  );
  return prefixed;
}

/** Formats a path as `a.b[0].c`; names that are not plain words are quoted. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else {
      const part = /^[A-Za-z0-9_-]+$/.test(segment) ? segment : JSON.stringify(segment);
      out += out === "" ? part : `.${part}`;
    }
  }
  return out;
}

/** Describes a raw value for "found …": `number 3`, `string "x"`, `a table`. */
export function describeFound(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") {
    if (value === "") return "an empty string";
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return `string ${JSON.stringify(shown)}`;
  }
  if (typeof value === "number" || typeof value === "bigint") return `number ${value}`;
  if (typeof value === "boolean") return `boolean ${value}`;
  if (value instanceof Date) return "a date";
  if (Array.isArray(value)) {
    return value.length === 0
      ? "an empty list"
      : `a list of ${value.length} item${value.length === 1 ? "" : "s"}`;
  }
  if (isTable(value)) return Object.keys(value).length === 0 ? "an empty table" : "a table";
  return typeof value;
}

/** Describes what a schema accepts, for "expected …". */
export function describeExpected(schema: Schema, nonEmpty = false): string {
  if (schema.expected !== undefined) return schema.expected;
  switch (schema.kind) {
    case "string":
      if (schema.values && schema.orInteger) {
        return `an integer from ${schema.orInteger.min} to ${schema.orInteger.max} or ${schema.values.map(quote).join(", ")}`;
      }
      if (schema.values) return `one of ${schema.values.map(quote).join(", ")}`;
      return nonEmpty ? "a non-empty string" : "a string";
    case "number": {
      const noun = schema.integer ? "an integer" : "a number";
      const { min, max } = schema;
      if (min !== undefined && max !== undefined) return `${noun} from ${min} to ${max}`;
      if (min !== undefined) return `${noun} >= ${min}`;
      if (max !== undefined) return `${noun} <= ${max}`;
      return noun;
    }
    case "boolean":
      return "a boolean (true or false)";
    case "duration":
      return 'a duration (seconds as a number, or a string like "10s", "1m30s", "100ms")';
    case "list": {
      const item = schema.items.kind;
      if (item === "string") return "a list of strings";
      if (item === "number") return "a list of numbers";
      if (item === "object" || item === "table" || item === "union") return "a list of tables";
      return "a list";
    }
    case "record":
    case "object":
    case "table":
      return "a table";
    case "union":
      return `a table with exactly one ${schema.label} (${
        Object.keys(schema.variants).join(", ")
      })`;
  }
}
