import assert from "node:assert/strict";
import { parseDuration, readOptions } from "../lib/middlewares/options.ts";
import { MiddlewareConfigError } from "../lib/middlewares/types.ts";

Deno.test("readOptions: KV-style lowercase keys and string values read like TOML ones", () => {
  const toml = readOptions("m@file", {
    maxAge: 10,
    allow: true,
    list: ["a", "b"],
    period: "1m30s",
    ip: { depth: 2 },
  });
  const kv = readOptions("m@kv", {
    maxage: "10",
    allow: "TRUE",
    list: { "1": "b", "0": "a" },
    period: "90",
    ip: { Depth: "2" },
  });
  for (const o of [toml, kv]) {
    assert.equal(o.int("maxAge"), 10);
    assert.equal(o.bool("allow"), true);
    assert.deepEqual(o.stringList("list"), ["a", "b"]);
    assert.equal(o.duration("period"), 90_000);
    assert.equal(o.object("ip")!.int("depth"), 2);
    assert.equal(o.string("absent", { default: "d" }), "d");
  }
  assert.deepEqual(readOptions("m", { l: "a, b,,c" }).stringList("l"), ["a", "b", "c"]);
});

Deno.test("readOptions: errors name the middleware, the option and what is valid", () => {
  const cases: [() => unknown, RegExp][] = [
    [
      () => readOptions("m@file", {}).string("prefix", { required: true }),
      /middleware "m@file": option prefix: is required/,
    ],
    [
      () => readOptions("m@file", { n: "ten" }).int("n"),
      /option n: expected an integer, found "ten"/,
    ],
    [
      () => readOptions("m@file", { n: 1.5 }).int("n"),
      /option n: expected an integer, found number 1.5/,
    ],
    [
      () => readOptions("m@file", { b: "yes" }).bool("b"),
      /option b: expected true or false, found "yes"/,
    ],
    [
      () => readOptions("m@file", { d: "10 parsecs" }).duration("d"),
      /option d: expected a duration/,
    ],
    [
      () => readOptions("m@file", { l: [{}] }).stringList("l"),
      /option l\[0\]: expected a string, found a table/,
    ],
    [
      () => readOptions("m@file", { ip: { depth: "x" } }).object("ip")!.int("depth"),
      /option ip\.depth: expected an integer/,
    ],
    [
      () => readOptions("m@file", { prefixs: [] }).unknownKeysCheck(["prefixes"]),
      /unknown option prefixs \(did you mean "prefixes"\?\); valid options: prefixes/,
    ],
    [
      () => readOptions("m@file", { zzz: 1 }).unknownKeysCheck(["prefixes"]),
      /unknown option zzz; valid options: prefixes/,
    ],
  ];
  for (const [fn, want] of cases) {
    assert.throws(
      fn,
      (e: unknown) => e instanceof MiddlewareConfigError && want.test(e.message),
      String(want),
    );
  }
});

Deno.test("parseDuration: Go durations and bare seconds", () => {
  const cases: [unknown, number | undefined][] = [
    ["10s", 10_000],
    ["100ms", 100],
    ["1m30s", 90_000],
    ["1.5h", 5_400_000],
    ["250us", 0.25],
    [3, 3000],
    ["42", 42_000],
    ["-1s", -1000],
    ["", undefined],
    ["s", undefined],
    ["1x", undefined],
    [true, undefined],
  ];
  for (const [input, want] of cases) assert.equal(parseDuration(input), want, String(input));
});
