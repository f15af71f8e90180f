/**
 * Fuzzing the configuration decoders: TOML text, static and dynamic trees,
 * and KV entries. Every invalid input must become a `ConfigError` whose
 * issues name where the problem is; no other exception may escape.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError } from "../lib/config/errors.ts";
import { parseToml } from "../lib/config/load.ts";
import { validateDynamic } from "../lib/config/dynamic.ts";
import { validateStatic } from "../lib/config/static.ts";
import { decodeKVEntries } from "../lib/providers/kv_codec.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 200);

/** Key names the schemas know, mixed with unknown ones, so the decoders get past the top level. */
const key = fc.oneof(
  fc.constantFrom(
    "http",
    "routers",
    "services",
    "middlewares",
    "serversTransports",
    "tls",
    "rule",
    "service",
    "entryPoints",
    "loadBalancer",
    "servers",
    "url",
    "weight",
    "priority",
    "basicAuth",
    "users",
    "headers",
    "stripPrefix",
    "prefixes",
    "ipAllowList",
    "sourceRange",
    "ipStrategy",
    "depth",
    "address",
    "transport",
    "respondingTimeouts",
    "readTimeout",
    "providers",
    "file",
    "etcd",
    "redis",
    "endpoints",
    "rootKey",
    "password",
    "forwardingTimeouts",
    "responseHeaderTimeout",
    "healthCheck",
    "interval",
    "path",
    "sticky",
    "cookie",
    "log",
    "level",
    "api",
    "ping",
    "cluster",
    "secret",
    "app",
    "web",
    "0",
    "1",
  ),
  fc.string({ maxLength: 6 }),
);
const leaf = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    "10s",
    "-1s",
    "http://127.0.0.1:1",
    "Host(`a`)",
    ":80",
    "x:y:z",
    "",
    "1e400",
    "NaN",
  ),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const tree = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small" },
    leaf,
    fc.array(tie("node"), { maxLength: 3 }),
    fc.dictionary(key, tie("node"), { maxKeys: 4 }),
  ),
})).node;
const rootTree = fc.dictionary(key, tree, { maxKeys: 4 });

function expectTypedError(fn: () => unknown, input: unknown): void {
  try {
    fn();
  } catch (error) {
    assert.ok(
      error instanceof ConfigError,
      `${(error as Error)?.name}: ${(error as Error)?.message} for ${JSON.stringify(input)}`,
    );
    assert.ok(error.issues.length > 0, "at least one issue");
    for (const issue of error.issues) {
      assert.ok(issue.message.length > 0, "each issue says what is wrong");
      assert.ok(issue.source.length > 0, "each issue names its source");
    }
  }
}

Deno.test("fuzz: validateDynamic turns every bad tree into a ConfigError naming a key", () => {
  fc.assert(
    fc.property(rootTree, (raw) => {
      try {
        validateDynamic(raw, "dynamic.toml");
      } catch (error) {
        expectTypedError(() => {
          throw error;
        }, raw);
        for (const issue of (error as ConfigError).issues) {
          assert.ok(
            issue.path.length > 0,
            `issue names a key: ${issue.message} for ${JSON.stringify(raw)}`,
          );
        }
      }
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz: validateStatic turns every bad tree into a ConfigError", () => {
  fc.assert(
    fc.property(
      rootTree,
      (raw) => expectTypedError(() => validateStatic(raw, "portico.toml"), raw),
    ),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz: parseToml on arbitrary text returns a table or a ConfigError with a position", () => {
  const tomlish = fc.array(
    fc.oneof(
      fc.constantFrom(
        "[http]\n",
        "[[x]]\n",
        "a = 1\n",
        'b = "x"\n',
        "c = [1, 2\n",
        "d = {e = 1}\n",
        "= 3\n",
        '"""\n',
        "#c\n",
        "\n",
      ),
      fc.string({ maxLength: 8 }),
    ),
    { maxLength: 12 },
  ).map((p) => p.join(""));
  fc.assert(
    fc.property(tomlish, (text) => {
      try {
        const v = parseToml(text, "x.toml");
        assert.equal(typeof v, "object");
      } catch (error) {
        assert.ok(error instanceof ConfigError, `${String(error)} for ${JSON.stringify(text)}`);
        assert.match(error.message, /line \d+, column \d+/);
      }
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz: decodeKVEntries turns every bad key set into a ConfigError naming a key", () => {
  const segment = fc.oneof(
    fc.constantFrom(
      "http",
      "routers",
      "services",
      "middlewares",
      "r",
      "s",
      "rule",
      "service",
      "loadbalancer",
      "servers",
      "0",
      "1",
      "url",
      "weight",
      "stripprefix",
      "prefixes",
      "entrypoints",
      "tls",
      "",
    ),
    fc.string({ maxLength: 5 }),
  );
  const entry = fc.tuple(
    fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => "traefik/" + s.join("/")),
    fc.string({ maxLength: 16 }),
  );
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 8 }), (entries) => {
      try {
        decodeKVEntries(entries, "traefik", "etcd");
      } catch (error) {
        expectTypedError(() => {
          throw error;
        }, entries);
        for (const issue of (error as ConfigError).issues) {
          assert.ok(
            issue.path.length > 0,
            `issue names a key: ${issue.message} for ${JSON.stringify(entries)}`,
          );
        }
      }
    }),
    { numRuns: RUNS },
  );
});
