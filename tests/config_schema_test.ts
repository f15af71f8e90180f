/**
 * Tests for the schema language and its decoder: durations, suggestions,
 * paths, defaults, unions, and the KV switches (case, coercion, indexed lists).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  bool,
  ConfigError,
  decodeOrThrow,
  decodeWithSchema,
  describeFound,
  duration,
  enumOf,
  formatDuration,
  formatPath,
  int,
  KV_DECODE_OPTIONS,
  list,
  num,
  obj,
  parseDuration,
  record,
  type Schema,
  str,
  suggestKey,
  table,
  union,
} from "../lib/config/mod.ts";

Deno.test("parseDuration reads Traefik duration forms as milliseconds", () => {
  const cases: [string, number | undefined][] = [
    ["100ms", 100],
    ["10s", 10_000],
    ["1m30s", 90_000],
    ["1h", 3_600_000],
    ["1.5h", 5_400_000],
    ["1h2m3s4ms", 3_723_004],
    ["500us", 0.5],
    ["2µs", 0.002],
    ["1000000ns", 1],
    ["10", 10_000],
    ["2.5", 2_500],
    ["0", 0],
    ["-2s", -2_000],
    ["+3s", 3_000],
    [" 5s ", 5_000],
    ["", undefined],
    ["abc", undefined],
    ["10x", undefined],
    ["1s x", undefined],
    ["s", undefined],
    ["1.2.3s", undefined],
    ["-", undefined],
    ["1d", undefined],
  ];
  for (const [text, expected] of cases) {
    const got = parseDuration(text);
    if (expected === undefined) assert.equal(got, undefined, `"${text}"`);
    else {assert.ok(
        Math.abs((got ?? NaN) - expected) < 1e-9,
        `"${text}": got ${got}, want ${expected}`,
      );}
  }
});

Deno.test("formatDuration writes milliseconds back the way users write them", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [100, "100ms"],
    [1_000, "1s"],
    [90_000, "1m30s"],
    [3_600_000, "1h"],
    [3_723_500, "1h2m3.5s"],
    [-2_000, "-2s"],
  ];
  for (const [ms, text] of cases) {
    assert.equal(formatDuration(ms), text);
    assert.equal(parseDuration(text), ms, `round trip of ${text}`);
  }
});

Deno.test("duration schema: numbers are seconds, strings are Go durations, negatives refused", () => {
  const schema = obj({ t: duration({ default: "30s" }), m: duration({ min: 1 }) });
  const cases: { raw: unknown; want?: Record<string, number>; error?: RegExp }[] = [
    { raw: {}, want: { t: 30_000 } },
    { raw: { t: 10 }, want: { t: 10_000 } },
    { raw: { t: 0.25 }, want: { t: 250 } },
    { raw: { t: "1m30s" }, want: { t: 90_000 } },
    { raw: { t: "42" }, want: { t: 42_000 } },
    { raw: { t: 0 }, want: { t: 0 } },
    { raw: { t: "-1s" }, error: /^t: expected a duration of at least 0s, found string "-1s"$/ },
    { raw: { t: -5 }, error: /^t: expected a duration of at least 0s, found number -5$/ },
    { raw: { m: 0 }, error: /^m: expected a duration of at least 1ms, found number 0$/ },
    { raw: { t: "soon" }, error: /^t: expected a duration .*"10s".*found string "soon"$/ },
    { raw: { t: true }, error: /^t: expected a duration .*found boolean true$/ },
    { raw: { t: [1] }, error: /found a list of 1 item$/ },
  ];
  for (const { raw, want, error } of cases) {
    const result = decodeWithSchema(schema, raw, { source: "" });
    if (want) {
      assert.deepEqual(result.issues, [], JSON.stringify(raw));
      assert.deepEqual(result.value, want);
    } else {
      assert.equal(result.issues.length, 1, JSON.stringify(raw));
      const { path, message } = result.issues[0];
      assert.match(`${path}: ${message}`, error!);
    }
  }
});

Deno.test("suggestKey finds the key a typo meant, ignoring case", () => {
  const known = [
    "entryPoints",
    "providers",
    "api",
    "rule",
    "service",
    "address",
    "healthCheck",
    "loadBalancer",
  ];
  const cases: [string, string | undefined][] = [
    ["entrypoint", "entryPoints"],
    ["entrypoints", "entryPoints"],
    ["EntryPoints", "entryPoints"],
    ["rul", "rule"],
    ["Rule", "rule"],
    ["adress", "address"],
    ["servcie", "service"],
    ["provider", "providers"],
    ["health", "healthCheck"],
    ["loadbalancer", "loadBalancer"],
    ["xyz", undefined],
    ["completelydifferent", undefined],
    ["ap", "api"],
  ];
  for (const [key, expected] of cases) assert.equal(suggestKey(key, known), expected, key);
  assert.equal(suggestKey("anything", []), undefined);
});

Deno.test("formatPath and describeFound produce readable text", () => {
  assert.equal(formatPath([]), "");
  assert.equal(
    formatPath(["http", "services", "app", "loadBalancer", "servers", 0, "url"]),
    "http.services.app.loadBalancer.servers[0].url",
  );
  assert.equal(formatPath(["http", "routers", "a.b", "rule"]), 'http.routers."a.b".rule');
  assert.equal(formatPath(["list", 2, 3]), "list[2][3]");
  const found: [unknown, string][] = [
    [undefined, "nothing"],
    [null, "null"],
    ["", "an empty string"],
    ["x", 'string "x"'],
    [3, "number 3"],
    [10n, "number 10"],
    [false, "boolean false"],
    [[], "an empty list"],
    [[1, 2], "a list of 2 items"],
    [{}, "an empty table"],
    [{ a: 1 }, "a table"],
    [new Date(0), "a date"],
    ["y".repeat(100), `string "${"y".repeat(57)}..."`],
  ];
  for (const [value, text] of found) assert.equal(describeFound(value), text);
});

const server = obj({
  url: str({ required: true }),
  weight: int({ min: 0, default: 1 }),
});
const sample = obj({
  name: str({ required: true }),
  port: int({ min: 1, max: 65535 }),
  ratio: num(),
  enabled: bool({ default: true }),
  level: enumOf(["DEBUG", "INFO"], {
    ignoreCase: true,
    aliases: { TRACE: "DEBUG" },
    default: "INFO",
  }),
  servers: list(server, { default: [] }),
  tags: list(str(), { default: [] }),
  nested: obj({ timeout: duration({ default: "5s" }) }, { default: {} }),
  feature: obj({ depth: int({ default: 2 }) }, { allowBoolean: true }),
  names: record(int()),
  options: table(),
});

Deno.test("decode applies defaults, including inside a defaulted table", () => {
  const value = decodeOrThrow(sample, { name: "x" }, { source: "f" });
  assert.deepEqual(value, {
    name: "x",
    enabled: true,
    level: "INFO",
    servers: [],
    tags: [],
    nested: { timeout: 5_000 },
  });
});

Deno.test("decode reports each issue with its path and what was expected and found", () => {
  const cases: { name: string; raw: unknown; issues: [string, RegExp][] }[] = [
    { name: "not a table", raw: 3, issues: [["", /^expected a table, found number 3$/]] },
    { name: "missing required", raw: {}, issues: [["name", /^missing; expected a string$/]] },
    {
      name: "wrong type",
      raw: { name: 3 },
      issues: [["name", /^expected a string, found number 3$/]],
    },
    {
      name: "empty string",
      raw: { name: "" },
      issues: [["name", /^expected a non-empty string, found an empty string$/]],
    },
    {
      name: "integer bounds",
      raw: { name: "x", port: 70000 },
      issues: [["port", /^expected an integer from 1 to 65535, found number 70000$/]],
    },
    {
      name: "not an integer",
      raw: { name: "x", port: 1.5 },
      issues: [["port", /found number 1.5$/]],
    },
    {
      name: "number as string in TOML",
      raw: { name: "x", ratio: "1" },
      issues: [["ratio", /^expected a number, found string "1"$/]],
    },
    { name: "NaN", raw: { name: "x", ratio: NaN }, issues: [["ratio", /found number NaN$/]] },
    {
      name: "bool",
      raw: { name: "x", enabled: "yes" },
      issues: [["enabled", /^expected a boolean \(true or false\), found string "yes"$/]],
    },
    {
      name: "enum",
      raw: { name: "x", level: "LOUD" },
      issues: [["level", /^expected one of "DEBUG", "INFO", found string "LOUD"$/]],
    },
    {
      name: "list item",
      raw: { name: "x", servers: [{ url: "a" }, { weight: -1 }] },
      issues: [
        ["servers[1].url", /^missing; expected a string$/],
        ["servers[1].weight", /^expected an integer >= 0, found number -1$/],
      ],
    },
    {
      name: "list type",
      raw: { name: "x", tags: "a" },
      issues: [["tags", /^expected a list of strings, found string "a"$/]],
    },
    {
      name: "list item type",
      raw: { name: "x", tags: ["a", 2] },
      issues: [["tags[1]", /^expected a string, found number 2$/]],
    },
    {
      name: "record value",
      raw: { name: "x", names: { a: 1, b: "2" } },
      issues: [["names.b", /^expected an integer, found string "2"$/]],
    },
    {
      name: "table",
      raw: { name: "x", options: [] },
      issues: [["options", /^expected a table, found an empty list$/]],
    },
    {
      name: "unknown key with suggestion",
      raw: { name: "x", nested: { timout: 1 } },
      issues: [["nested.timout", /^unknown key; did you mean "timeout"\?$/]],
    },
    {
      name: "unknown key without suggestion lists the valid ones",
      raw: { name: "x", nested: { zzzzzz: 1 } },
      issues: [["nested.zzzzzz", /^unknown key; expected one of: timeout$/]],
    },
    {
      name: "case matters in TOML, with a hint",
      raw: { Name: "x" },
      issues: [["Name", /^unknown key; did you mean "name"\?$/], ["name", /^missing/]],
    },
    {
      name: "collects every issue",
      raw: { name: 1, port: 0, enabled: 1, tags: [1], extra: 1 },
      issues: [
        ["extra", /unknown key/],
        ["name", /expected a string/],
        ["port", /expected an integer/],
        ["enabled", /expected a boolean/],
        ["tags[0]", /expected a string/],
      ],
    },
  ];
  for (const { name, raw, issues } of cases) {
    const result = decodeWithSchema(sample, raw, { source: "file.toml" });
    assert.equal(result.issues.length, issues.length, `${name}: ${JSON.stringify(result.issues)}`);
    for (const [index, [path, message]] of issues.entries()) {
      assert.equal(result.issues[index].source, "file.toml", name);
      assert.equal(result.issues[index].path, path, name);
      assert.match(result.issues[index].message, message, name);
    }
  }
});

Deno.test("enum ignores case and maps aliases to the canonical value", () => {
  for (
    const [raw, want] of [["debug", "DEBUG"], ["Info", "INFO"], ["trace", "DEBUG"], [
      "INFO",
      "INFO",
    ]]
  ) {
    const value = decodeOrThrow<{ level: string }>(sample, { name: "x", level: raw }, {
      source: "",
    });
    assert.equal(value.level, want);
  }
});

Deno.test("allowBoolean: true is an empty table, false is absent", () => {
  const on = decodeOrThrow<{ feature?: { depth: number } }>(sample, { name: "x", feature: true }, {
    source: "",
  });
  assert.deepEqual(on.feature, { depth: 2 });
  const off = decodeOrThrow<{ feature?: unknown }>(sample, { name: "x", feature: false }, {
    source: "",
  });
  assert.equal("feature" in off, false);
  const issues = decodeWithSchema(sample, { name: "x", feature: "yes" }, { source: "" }).issues;
  assert.equal(issues[0].path, "feature");
});

Deno.test("exactlyOne and atMostOne groups", () => {
  const schema = obj({ a: str(), b: str(), c: str(), d: str() }, {
    exactlyOne: [["a", "b"]],
    atMostOne: [["c", "d"]],
  });
  const cases: [unknown, RegExp | undefined][] = [
    [{ a: "1" }, undefined],
    [{ b: "1", c: "1" }, undefined],
    [{}, /^expected exactly one of "a", "b", found none$/],
    [{ a: "1", b: "2" }, /^expected exactly one of "a", "b", found "a" and "b"$/],
    [{ a: "1", c: "1", d: "2" }, /^expected at most one of "c", "d", found "c" and "d"$/],
  ];
  for (const [raw, error] of cases) {
    const { issues } = decodeWithSchema(schema, raw, { source: "" });
    if (error === undefined) assert.deepEqual(issues, [], JSON.stringify(raw));
    else {
      assert.equal(issues.length, 1, JSON.stringify(raw));
      assert.match(issues[0].message, error);
    }
  }
});

const shape = union({
  circle: obj({ r: num({ required: true }) }),
  square: obj({ side: num({ required: true }) }),
  blob: table(),
}, { label: "shape" });

Deno.test("union takes exactly one variant key", () => {
  const cases: { raw: unknown; want?: unknown; issues?: [string, RegExp][] }[] = [
    { raw: { circle: { r: 1 } }, want: { circle: { r: 1 } } },
    { raw: { blob: { any: [1, { x: 2 }] } }, want: { blob: { any: [1, { x: 2 }] } } },
    {
      raw: {},
      issues: [["", /^expected exactly one shape \(circle, square, blob\), found none$/]],
    },
    {
      raw: { circle: { r: 1 }, square: { side: 1 } },
      issues: [["", /found "circle" and "square"$/]],
    },
    { raw: { circel: { r: 1 } }, issues: [["circel", /^unknown key; did you mean "circle"\?$/]] },
    {
      raw: { circle: { r: "1" } },
      issues: [["circle.r", /^expected a number, found string "1"$/]],
    },
    { raw: { blob: 1 }, issues: [["blob", /^expected a table, found number 1$/]] },
    { raw: "circle", issues: [["", /^expected a table with exactly one shape/]] },
  ];
  for (const { raw, want, issues } of cases) {
    const result = decodeWithSchema(shape, raw, { source: "" });
    if (issues === undefined) {
      assert.deepEqual(result.issues, []);
      assert.deepEqual(result.value, want);
    } else {
      assert.deepEqual(
        result.issues.map((i) => i.path),
        issues.map(([p]) => p),
        JSON.stringify(raw),
      );
      issues.forEach(([, message], index) => assert.match(result.issues[index].message, message));
    }
  }
});

Deno.test("KV switches: lowercase keys, string leaves, indexed tables, empty values", () => {
  const tree = {
    name: "x",
    port: "8080",
    ratio: "0.5",
    enabled: "false",
    level: "debug",
    servers: { "1": { url: "b", weight: "3" }, "0": { url: "a" }, "10": { url: "c" } },
    tags: { "0": "t" },
    nested: { timeout: "250ms" },
    feature: "",
    names: { Mixed: "7" },
    options: { prefixes: { "0": "/a", "1": "/b" }, inner: { "0": { k: "v" } } },
  };
  const value = decodeOrThrow(sample, tree, { source: "etcd", ...KV_DECODE_OPTIONS });
  assert.deepEqual(value, {
    name: "x",
    port: 8080,
    ratio: 0.5,
    enabled: false,
    level: "DEBUG",
    servers: [{ url: "a", weight: 1 }, { url: "b", weight: 3 }, { url: "c", weight: 1 }],
    tags: ["t"],
    nested: { timeout: 250 },
    feature: { depth: 2 },
    // Names are the user's, so their case is kept.
    names: { Mixed: 7 },
    options: { prefixes: ["/a", "/b"], inner: [{ k: "v" }] },
  });
});

Deno.test("KV switches: keys match without case, and case duplicates are refused", () => {
  const schema = obj({ passHostHeader: bool({ default: true }), loadBalancer: obj({}) });
  const ok = decodeOrThrow(schema, { passhostheader: "0", LOADBALANCER: "" }, {
    source: "kv",
    ...KV_DECODE_OPTIONS,
  });
  assert.deepEqual(ok, { passHostHeader: false, loadBalancer: {} });
  const { issues } = decodeWithSchema(schema, { passhostheader: "true", passHostHeader: "false" }, {
    source: "kv",
    ...KV_DECODE_OPTIONS,
  });
  assert.equal(issues.length, 1);
  assert.match(issues[0].message, /duplicate key/);
  const bad = decodeWithSchema(sample, {
    name: "x",
    port: "80a",
    enabled: "yes",
    servers: { a: {} },
  }, {
    source: "kv",
    ...KV_DECODE_OPTIONS,
  });
  assert.deepEqual(bad.issues.map((i) => i.path), ["port", "enabled", "servers"]);
  assert.match(bad.issues[0].message, /found string "80a"/);
});

Deno.test("without the KV switches, indexed tables and strings are not coerced", () => {
  const { issues } = decodeWithSchema(sample, {
    name: "x",
    tags: { "0": "a" },
    enabled: "true",
    feature: "",
  }, {
    source: "f",
  });
  assert.deepEqual(issues.map((i) => i.path), ["enabled", "tags", "feature"]);
});

Deno.test("check hooks run only on clean values, with paths below the node", () => {
  let calls = 0;
  const schema = obj({
    low: int({ required: true }),
    high: int({ required: true }),
  }, {
    check: (value, ctx) => {
      calls++;
      if (value.high < value.low) ctx.report("expected high >= low", "high");
    },
  });
  const wrapped = obj({ range: schema });
  assert.deepEqual(
    decodeWithSchema(wrapped, { range: { low: 1, high: 2 } }, { source: "" }).issues,
    [],
  );
  const bad = decodeWithSchema(wrapped, { range: { low: 3, high: 2 } }, { source: "s" }).issues;
  assert.deepEqual(bad, [{ source: "s", path: "range.high", message: "expected high >= low" }]);
  const before = calls;
  decodeWithSchema(wrapped, { range: { low: "x", high: 2 } }, { source: "" });
  assert.equal(calls, before, "check must not run on a value with issues");
});

Deno.test("decodeOrThrow throws a ConfigError whose message has one line per issue", () => {
  try {
    decodeOrThrow(sample, { nme: "x", port: "1" }, { source: "portico.toml" });
    assert.fail("expected a ConfigError");
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.issues.length, 3);
    assert.deepEqual(error.message.split("\n"), [
      'portico.toml: nme: unknown key; did you mean "name"?',
      "portico.toml: name: missing; expected a string",
      'portico.toml: port: expected an integer from 1 to 65535, found string "1"',
    ]);
  }
});

Deno.test("tables are copied as plain objects; __proto__ stays an ordinary key", () => {
  const raw = JSON.parse(
    '{"name":"x","options":{"__proto__":{"polluted":true}},"names":{"__proto__":1}}',
  );
  const value = decodeOrThrow<{ options: Record<string, unknown>; names: Record<string, number> }>(
    sample,
    raw,
    { source: "" },
  );
  assert.deepEqual(Object.keys(value.options), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(value.options), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getOwnPropertyDescriptor(value.names, "__proto__")?.value, 1);
});

Deno.test("a missing top-level tree takes the schema's default or is absent", () => {
  const withDefault: Schema = obj({ a: int({ default: 1 }) }, { default: {} });
  assert.deepEqual(decodeWithSchema(withDefault, undefined, { source: "" }).value, { a: 1 });
  const required: Schema = obj({}, { required: true });
  assert.equal(decodeWithSchema(required, undefined, { source: "" }).issues.length, 1);
});
