/**
 * The KV codec: Traefik v3's key layout ⇄ {@linkcode DynamicConfig}. A pure
 * core with no I/O, shared by the KV provider (decode) and `storeconfig`
 * (encode).
 *
 * Decoding builds a nested tree from the keys under `rootKey/` (string
 * leaves), then validates it with the same schema as TOML, switched to KV
 * rules (case-insensitive keys, string coercion, indexed lists, "" switches a
 * feature on). Every issue is mapped back from its dotted path to the KV key
 * the user wrote, so an error reads
 * `etcd: traefik/http/services/app/loadbalancer/servers/0/weight: expected an integer >= 0, found string "abc"`.
 *
 * Encoding walks the config alongside the schema so durations are written
 * as durations ("30s") rather than milliseconds, values equal to their
 * default are left out, and a feature with no options becomes an empty value.
 *
 * @example
 * ```ts
 * const entries = encodeDynamicConfig(config, "traefik");
 * // Map { "traefik/http/routers/app/rule" => "Host(`a.com`)", ... }
 * const back = decodeKVEntries(entries, "traefik", "etcd"); // deep-equals config
 * ```
 *
 * @module
 */

import { dynamicConfigSchema, validateDynamic } from "../config/dynamic.ts";
import { ConfigError, type ConfigIssue } from "../config/errors.ts";
import {
  decodeWithSchema,
  formatDuration,
  isTable,
  KV_DECODE_OPTIONS,
  type PathSegment,
  type Schema,
} from "../config/schema.ts";
import type { DynamicConfig } from "../config/types.ts";

/** A raw tree node: a string leaf or a table of nodes. */
type RawNode = string | RawTable;
interface RawTable {
  [key: string]: RawNode;
}

/**
 * Decodes the KV entries under `rootKey/` into a validated dynamic
 * configuration. Keys outside the root are ignored. Throws a
 * {@linkcode ConfigError} whose issues have `source` = `provider` and
 * `path` = the offending KV key, spelled as it is in the store.
 *
 * @example
 * ```ts
 * decodeKVEntries(new Map([
 *   ["traefik/http/routers/app/rule", "Host(`a.com`)"],
 *   ["traefik/http/routers/app/service", "app"],
 *   ["traefik/http/services/app/loadbalancer/servers/0/url", "http://10.0.0.1"],
 * ]), "traefik", "etcd");
 * ```
 */
export function decodeKVEntries(
  entries: ReadonlyMap<string, string> | Iterable<readonly [string, string]>,
  rootKey: string,
  provider: string,
): DynamicConfig {
  const { tree, origin, issues } = buildTree(entries, rootKey, provider);
  if (issues.length > 0) throw new ConfigError(issues);
  try {
    return validateDynamic(tree, `${provider} key prefix`, KV_DECODE_OPTIONS);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(
      error.issues.map((issue) => ({
        source: provider,
        path: originalKey(keyForPath(tree, parseIssuePath(issue.path), rootKey), origin),
        message: issue.message,
      })),
    );
  }
}

/**
 * The key's segments with every schema field name in its canonical
 * spelling (`LoadBalancer` → `loadBalancer`), so two spellings of one field
 * land in one table. Names chosen by users (routers, headers, middleware
 * options) are kept as written: `Web` and `web` are two routers.
 */
function canonicalSegments(schema: Schema, segments: readonly string[]): string[] {
  const out: string[] = [];
  let node: Schema | undefined = schema;
  for (const segment of segments) {
    let next: Schema | undefined;
    let name = segment;
    if (node?.kind === "object" || node?.kind === "union") {
      const known: Readonly<Record<string, Schema>> = node.kind === "object"
        ? node.fields
        : node.variants;
      const field = Object.keys(known).find((k) => k.toLowerCase() === segment.toLowerCase());
      if (field !== undefined) {
        name = field;
        next = known[field];
      }
    } else if (node?.kind === "record") next = node.values;
    else if (node?.kind === "list") next = node.items;
    out.push(name);
    node = next;
  }
  return out;
}

/**
 * Builds the raw tree from keys, keyed by canonical spellings, and the map
 * from each canonical key back to the key as stored. A key that is both a
 * value and a prefix of other keys is accepted only when its value is empty
 * (the "switch on" marker before options were added); otherwise it is
 * reported.
 */
/**
 * Subtrees under the root that hold Portico's own state, not configuration:
 * the cluster's leader record (`ROOT/cluster/`) and ACME data
 * (`ROOT/acme/`). The decoder skips them and `storeconfig` never removes them.
 */
export const PORTICO_STATE_SUBTREES = ["cluster", "acme"] as const;

/** True for a key in one of {@linkcode PORTICO_STATE_SUBTREES} under `rootKey`. */
export function isPorticoStateKey(key: string, rootKey: string): boolean {
  const prefix = `${rootKey.replace(/\/+$/, "")}/`;
  if (!key.startsWith(prefix)) return false;
  const first = key.slice(prefix.length).split("/", 1)[0].toLowerCase();
  return (PORTICO_STATE_SUBTREES as readonly string[]).includes(first);
}

function buildTree(
  entries: ReadonlyMap<string, string> | Iterable<readonly [string, string]>,
  rootKey: string,
  provider: string,
): { tree: RawTable; origin: Map<string, string>; issues: ConfigIssue[] } {
  const prefix = `${rootKey}/`;
  const tree: RawTable = {};
  const origin = new Map<string, string>();
  const issues: ConfigIssue[] = [];
  const report = (key: string, message: string) =>
    issues.push({ source: provider, path: key, message });
  const sorted = [...entries].filter(([key]) =>
    key.startsWith(prefix) && !isPorticoStateKey(key, rootKey)
  ).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0
  );
  for (const [key, value] of sorted) {
    const written = key.slice(prefix.length).split("/");
    if (written.some((s) => s === "")) {
      report(key, 'empty path segment; expected keys like "traefik/http/routers/NAME/rule"');
      continue;
    }
    const segments = canonicalSegments(dynamicConfigSchema, written);
    const canonical = prefix + segments.join("/");
    const twin = origin.get(canonical);
    if (twin !== undefined) {
      report(key, `same key as ${twin} (key names are case-insensitive); keep one of them`);
      continue;
    }
    origin.set(canonical, key);
    let node = tree;
    let ok = true;
    for (let i = 0; i < segments.length - 1 && ok; i++) {
      const segment = segments[i];
      const child = Object.hasOwn(node, segment) ? node[segment] : undefined;
      if (child === undefined || child === "") {
        // An empty value above us only switched the feature on; options below refine it.
        const table: RawTable = {};
        setOwn(node, segment, table);
        node = table;
      } else if (typeof child === "string") {
        report(
          key,
          `${prefix}${
            written.slice(0, i + 1).join("/")
          } holds a value, so no key can be nested under it`,
        );
        ok = false;
      } else {
        node = child;
      }
    }
    if (!ok) continue;
    const last = segments[segments.length - 1];
    const existing = Object.hasOwn(node, last) ? node[last] : undefined;
    if (existing !== undefined && typeof existing !== "string") {
      if (value !== "") {
        report(key, "has a value and keys nested under it; expected one or the other");
      }
      continue;
    }
    setOwn(node, last, value);
  }
  return { tree, origin, issues };
}

/**
 * The stored spelling of a canonical key, or of the prefix it names. A key
 * that is not in the store (a missing required one) keeps the stored
 * spelling of its longest existing prefix and the rest in lowercase, which
 * is how it should be written.
 */
function originalKey(canonical: string, origin: ReadonlyMap<string, string>): string {
  const exact = origin.get(canonical);
  if (exact !== undefined) return exact;
  const parts = canonical.split("/");
  for (let n = parts.length; n > 0; n--) {
    const head = parts.slice(0, n).join("/");
    for (const [c, written] of origin) {
      if (c === head || c.startsWith(head + "/")) {
        const rest = parts.slice(n).map((p) => p.toLowerCase());
        return [...written.split("/").slice(0, n), ...rest].join("/");
      }
    }
  }
  return canonical.toLowerCase();
}

/** Parses a dotted path as formatted by the schema decoder (`a.b[0]."c.d"`) back into segments. */
export function parseIssuePath(path: string): PathSegment[] {
  const segments: PathSegment[] = [];
  let i = 0;
  while (i < path.length) {
    const c = path[i];
    if (c === ".") {
      i++;
    } else if (c === "[") {
      const end = path.indexOf("]", i);
      segments.push(Number(path.slice(i + 1, end)));
      i = end + 1;
    } else if (c === '"') {
      // A JSON string: find its closing quote, skipping escapes.
      let j = i + 1;
      while (j < path.length && path[j] !== '"') j += path[j] === "\\" ? 2 : 1;
      segments.push(JSON.parse(path.slice(i, j + 1)));
      i = j + 1;
    } else {
      let j = i;
      while (j < path.length && path[j] !== "." && path[j] !== "[") j++;
      segments.push(path.slice(i, j));
      i = j;
    }
  }
  return segments;
}

/**
 * The canonical key a decoder path points at: list indexes become the n-th
 * indexed key; the part of the path that is not in the tree (a missing
 * required key) is appended as the schema spells it.
 */
function keyForPath(tree: RawTable, path: readonly PathSegment[], rootKey: string): string {
  const parts: string[] = [rootKey];
  let node: RawNode | undefined = tree;
  for (const segment of path) {
    if (node !== undefined && typeof node !== "string") {
      const table: RawTable = node;
      let key: string | undefined;
      if (typeof segment === "number") {
        const keys = Object.keys(table).filter((k) => /^\d+$/.test(k)).sort((a, b) =>
          Number(a) - Number(b)
        );
        key = keys[segment];
      } else if (Object.hasOwn(table, segment)) key = segment;
      if (key !== undefined) {
        parts.push(key);
        node = table[key];
        continue;
      }
    }
    node = undefined;
    parts.push(String(segment));
  }
  return parts.join("/");
}

// ---------------------------------------------------------------- encoding

/**
 * Encodes a dynamic configuration as Traefik v3 KV keys under `rootKey`,
 * sorted by key. Schema field names are written in lowercase; names chosen
 * by the user (routers, services, header names, middleware options) keep
 * their case.
 *
 * @example
 * ```ts
 * encodeDynamicConfig(config, "traefik").get("traefik/http/routers/app/rule"); // "Host(`a.com`)"
 * ```
 */
export function encodeDynamicConfig(config: DynamicConfig, rootKey: string): Map<string, string> {
  const out = new Map<string, string>();
  encodeNode(dynamicConfigSchema, config, [rootKey], out, true);
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Writes `value` under `key`; returns whether anything was written. */
function encodeNode(
  schema: Schema,
  value: unknown,
  key: string[],
  out: Map<string, string>,
  isRoot = false,
): boolean {
  if (value === undefined || value === null) return false;
  const put = (text: string) => {
    out.set(key.join("/"), text);
    return true;
  };
  switch (schema.kind) {
    case "string":
      return put(String(value));
    case "number":
    case "boolean":
      return put(String(value));
    case "duration":
      return put(formatDuration(value as number));
    case "list": {
      const items = value as unknown[];
      let wrote = false;
      items.forEach((item, i) => {
        // An item that would write nothing still has to exist to keep later indexes in place.
        if (!encodeNode(schema.items, item, [...key, String(i)], out)) {
          switchOn(out, [...key, String(i)]);
        }
        wrote = true;
      });
      return wrote;
    }
    case "record": {
      let wrote = false;
      for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
        if (!encodeNode(schema.values, item, [...key, name], out)) switchOn(out, [...key, name]);
        wrote = true;
      }
      return wrote;
    }
    case "object": {
      let wrote = false;
      for (const [field, fieldSchema] of Object.entries(schema.fields)) {
        const fieldValue = (value as Record<string, unknown>)[field];
        if (fieldValue === undefined || isDefault(fieldSchema, fieldValue)) continue;
        if (encodeNode(fieldSchema, fieldValue, [...key, field.toLowerCase()], out)) wrote = true;
      }
      // A present object with nothing to say is switched on with an empty value,
      // unless leaving it out gives the same thing (it has a default).
      if (!wrote && !isRoot && schema.default === undefined) return put("");
      return wrote;
    }
    case "union": {
      const [[variant, variantValue]] = Object.entries(value as Record<string, unknown>);
      const variantSchema = schema.variants[variant];
      const variantKey = [...key, variant.toLowerCase()];
      if (!encodeNode(variantSchema, variantValue, variantKey, out)) switchOn(out, variantKey);
      return true;
    }
    case "table":
      if (!encodeTable(value, key, out)) return put("");
      return true;
  }
}

function switchOn(out: Map<string, string>, key: string[]): void {
  out.set(key.join("/"), "");
}

/** Free-form options (middlewares): keys as written, scalars as text, lists indexed. */
function encodeTable(value: unknown, key: string[], out: Map<string, string>): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) {
    let wrote = false;
    value.forEach((item, i) => {
      if (!encodeTable(item, [...key, String(i)], out)) out.set([...key, String(i)].join("/"), "");
      wrote = true;
    });
    return wrote;
  }
  if (isTable(value)) {
    let wrote = false;
    for (const [name, item] of Object.entries(value)) {
      if (Array.isArray(item) && item.length === 0) continue;
      if (!encodeTable(item, [...key, name], out)) out.set([...key, name].join("/"), "");
      wrote = true;
    }
    return wrote;
  }
  out.set(key.join("/"), value instanceof Date ? value.toISOString() : String(value));
  return true;
}

const defaults = new WeakMap<Schema, { value: unknown }>();

/** Whether `value` is what decoding would produce for an absent key anyway. */
function isDefault(schema: Schema, value: unknown): boolean {
  if (schema.default === undefined) return false;
  let cached = defaults.get(schema);
  if (cached === undefined) {
    cached = { value: decodeWithSchema(schema, undefined, { source: "default" }).value };
    defaults.set(schema, cached);
  }
  return deepEqual(cached.value, value);
}

/** Structural equality of plain JSON-like values. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isTable(a) && isTable(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

function setOwn(target: RawTable, key: string, value: RawNode): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}
