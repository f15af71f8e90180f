/**
 * A strict parser for the Prometheus text exposition format (0.0.4), used by
 * tests to check that `/metrics` is well formed: it throws on anything a
 * Prometheus server would reject or that breaks the format's rules (bad
 * names or escapes, a TYPE after samples, split families, duplicate series,
 * non-cumulative histogram buckets, a `+Inf` bucket that differs from
 * `_count`).
 *
 * @module
 */

/** One parsed sample. */
export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One family: its TYPE, HELP and samples in order. */
export interface ParsedFamily {
  name: string;
  type: string;
  help?: string;
  samples: ParsedSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(text: string, line: number): number {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    throw new Error(`line ${line}: bad value "${text}"`);
  }
  return Number(text);
}

/** The family a sample name belongs to, given the declared types. */
function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const t = types.get(base);
      if (t === "histogram" || (t === "summary" && suffix !== "_bucket")) return base;
    }
  }
  return name;
}

function parseLabels(text: string, line: number): [Record<string, string>, number] {
  // text starts just after "{"; returns the labels and the index after "}".
  const labels: Record<string, string> = {};
  let i = 0;
  while (true) {
    if (text[i] === "}") return [labels, i + 1];
    const eq = text.indexOf("=", i);
    if (eq === -1) throw new Error(`line ${line}: label without "="`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name "${name}"`);
    if (name in labels) throw new Error(`line ${line}: duplicate label "${name}"`);
    if (text[eq + 1] !== '"') {
      throw new Error(`line ${line}: label value of "${name}" is not quoted`);
    }
    let value = "";
    let j = eq + 2;
    for (;; j++) {
      const c = text[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      if (c === '"') break;
      if (c === "\\") {
        const n = text[++j];
        if (n === "\\") value += "\\";
        else if (n === '"') value += '"';
        else if (n === "n") value += "\n";
        else throw new Error(`line ${line}: bad escape "\\${n}" in label "${name}"`);
      } else value += c;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") {
      throw new Error(`line ${line}: expected "," or "}" after label "${name}"`);
    }
  }
}

/**
 * Parses a whole exposition. Throws an Error naming the line on the first
 * violation.
 *
 * @example
 * ```ts
 * const families = parsePrometheusText("# TYPE up gauge\nup 1\n");
 * families.get("up")!.samples[0].value; // 1
 * ```
 */
export function parsePrometheusText(text: string): Map<string, ParsedFamily> {
  if (text !== "" && !text.endsWith("\n")) throw new Error("exposition must end with a line feed");
  const families = new Map<string, ParsedFamily>();
  const types = new Map<string, string>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const lines = text.split("\n");
  lines.pop();
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw === "") throw new Error(`line ${line}: empty line`);
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(raw);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`line ${line}: bad metric name "${name}"`);
      if (
        closed.has(name) ||
        (current !== undefined && current !== name && families.get(name)?.samples.length)
      ) {
        throw new Error(`line ${line}: family "${name}" is split`);
      }
      if (current !== undefined && current !== name) closed.add(current);
      current = name;
      const family = families.get(name) ?? { name, type: "untyped", samples: [] };
      families.set(name, family);
      if (kind === "TYPE") {
        if (types.has(name)) throw new Error(`line ${line}: second TYPE for "${name}"`);
        if (family.samples.length) {
          throw new Error(`line ${line}: TYPE for "${name}" after its samples`);
        }
        if (!TYPES.has(rest)) throw new Error(`line ${line}: unknown type "${rest}"`);
        types.set(name, rest);
        family.type = rest;
      } else {
        if (family.help !== undefined) throw new Error(`line ${line}: second HELP for "${name}"`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) {
          throw new Error(`line ${line}: bad escape in HELP`);
        }
        family.help = rest.replace(/\\(\\|n)/g, (_, c) => (c === "n" ? "\n" : "\\"));
      }
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(raw);
    if (!nameMatch) throw new Error(`line ${line}: bad sample "${raw}"`);
    const name = nameMatch[0];
    let rest = raw.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      const [parsed, end] = parseLabels(rest.slice(1), line);
      labels = parsed;
      rest = rest.slice(1 + end);
    }
    const parts = rest.split(" ");
    if (parts[0] !== "" || parts.length < 2 || parts.length > 3) {
      throw new Error(`line ${line}: expected "name{labels} value [timestamp]"`);
    }
    const value = parseValue(parts[1], line);
    if (parts.length === 3 && !/^-?\d+$/.test(parts[2])) {
      throw new Error(`line ${line}: bad timestamp "${parts[2]}"`);
    }
    const familyName = familyOf(name, types);
    if (closed.has(familyName)) throw new Error(`line ${line}: family "${familyName}" is split`);
    if (current !== undefined && current !== familyName) closed.add(current);
    current = familyName;
    const family = families.get(familyName) ?? { name: familyName, type: "untyped", samples: [] };
    families.set(familyName, family);
    const type = family.type;
    if (type === "histogram" && name === familyName) {
      throw new Error(`line ${line}: histogram sample without suffix`);
    }
    if (name.endsWith("_bucket") && type === "histogram" && labels.le === undefined) {
      throw new Error(`line ${line}: bucket without "le"`);
    }
    if (type === "counter" && !(value >= 0)) {
      throw new Error(`line ${line}: counter "${name}" is ${value}`);
    }
    const id = name + JSON.stringify(Object.entries(labels).sort());
    if (series.has(id)) {
      throw new Error(`line ${line}: duplicate series ${name}${JSON.stringify(labels)}`);
    }
    series.add(id);
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) if (family.type === "histogram") checkHistogram(family);
  return families;
}

function checkHistogram(family: ParsedFamily): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name.endsWith("_bucket")) g.buckets.push([parseValue(le, 0), s.value]);
    else if (s.name.endsWith("_count")) g.count = s.value;
    else if (s.name.endsWith("_sum")) g.sum = s.value;
  }
  for (const [key, g] of groups) {
    const where = `${family.name}${key}`;
    if (g.count === undefined || g.sum === undefined) {
      throw new Error(`${where}: missing _count or _sum`);
    }
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i][0] > g.buckets[i - 1][0])) {
        throw new Error(`${where}: "le" not increasing`);
      }
      if (g.buckets[i][1] < g.buckets[i - 1][1]) {
        throw new Error(`${where}: buckets not cumulative`);
      }
    }
    const last = g.buckets[g.buckets.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`${where}: no +Inf bucket`);
    if (last[1] !== g.count) {
      throw new Error(`${where}: +Inf bucket ${last[1]} != _count ${g.count}`);
    }
  }
}
