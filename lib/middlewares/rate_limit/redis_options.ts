/**
 * Reads `rateLimit.redis` in Traefik v3.4's vocabulary (`endpoints`,
 * `username`, `password`, `db`, `tls`, `poolSize`, `minIdleConns`,
 * `maxActiveConns`, `readTimeout`, `writeTimeout`, `dialTimeout`) plus
 * Portico's `failureMode`. Everything is checked here, at build, so a
 * limiter that builds can connect; nothing here touches the network.
 *
 * @example
 * ```toml
 * [http.middlewares.api-limit.rateLimit.redis]
 * endpoints = ["10.0.0.5:6379"]
 * password = "s3cret"
 * readTimeout = "200ms"
 * failureMode = "local"
 * ```
 *
 * @module
 */

import { loadPem } from "../../kv/tls.ts";
import type { OptionReader } from "../options.ts";

/** How a request is answered while Redis cannot be asked. */
export type FailureMode = "error" | "local";

/** One Redis server to connect to. */
export interface RedisEndpoint {
  host: string;
  port: number;
  /** `rediss://` in the endpoint: TLS even without a `tls` table. */
  tls: boolean;
}

/** Checked `rateLimit.redis` options; durations in milliseconds, 0 = no limit. */
export interface RedisLimiterOptions {
  /** One server, or (several) a Redis Cluster's seed nodes. */
  endpoints: RedisEndpoint[];
  username?: string;
  password?: string;
  db: number;
  /** PEM text, already read from files. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Connections opened to Redis; each one pipelines many requests. */
  connections: number;
  /** Longest wait for Redis's answer once a command is written (0 = none). */
  readTimeoutMs: number;
  /** Longest wait for a command to be written (0 = none). */
  writeTimeoutMs: number;
  /** Longest wait for a connection, AUTH and SELECT included. */
  dialTimeoutMs: number;
  failureMode: FailureMode;
}

const KEYS = [
  "endpoints",
  "username",
  "password",
  "db",
  "tls",
  "poolSize",
  "minIdleConns",
  "maxActiveConns",
  "readTimeout",
  "writeTimeout",
  "dialTimeout",
  "failureMode",
];

/** Traefik's defaults (`dynamic.Redis.SetDefaults`). */
const DEFAULT_READ_TIMEOUT_MS = 3000;
const DEFAULT_WRITE_TIMEOUT_MS = 3000;
const DEFAULT_DIAL_TIMEOUT_MS = 5000;

/**
 * Reads and checks the `redis` table.
 *
 * @throws {MiddlewareConfigError} naming the option, e.g. `option redis.db: must be 0 or more`.
 */
export function readRedisOptions(o: OptionReader): RedisLimiterOptions {
  o.unknownKeysCheck(KEYS);
  const list = o.stringList("endpoints", { default: ["localhost:6379"] });
  if (list.length === 0) o.fail("endpoints", 'must list a Redis server such as "10.0.0.5:6379"');
  const endpoints = list.map((e, i) => parseEndpoint(o, `endpoints[${i}]`, e));
  const username = o.string("username", { default: "" }) || undefined;
  const password = o.string("password", { default: "" }) || undefined;
  if (username && !password) {
    o.fail("password", "is required when username is set (Redis ACL users authenticate with both)");
  }
  const db = o.int("db", { default: 0 });
  if (db < 0) o.fail("db", `must be 0 or more, found ${db}`);
  // Like Traefik's go-redis universal client, several endpoints are a Redis Cluster's seed list.
  if (endpoints.length > 1 && db !== 0) {
    o.fail(
      "db",
      `must be 0 with several endpoints: they are a Redis Cluster, which has only db 0; found ${db}`,
    );
  }

  const counts: Record<string, number> = {};
  for (const key of ["poolSize", "minIdleConns", "maxActiveConns"]) {
    const n = o.int(key, { default: 0 });
    if (n < 0) o.fail(key, `must be 0 or more, found ${n}`);
    counts[key] = n;
  }
  if (counts.maxActiveConns > 0 && counts.minIdleConns > counts.maxActiveConns) {
    o.fail(
      "minIdleConns",
      `must not exceed maxActiveConns (${counts.maxActiveConns}), found ${counts.minIdleConns}`,
    );
  }
  // Each connection pipelines: one is enough for a 2-core instance; more only
  // spread the reply parsing. poolSize 0 is Traefik's "library default".
  let connections = Math.max(counts.poolSize || 1, counts.minIdleConns);
  if (counts.maxActiveConns > 0) connections = Math.min(connections, counts.maxActiveConns);
  if (connections > 64) {
    o.fail("poolSize", `at most 64 connections per middleware, found ${connections}`);
  }

  const readTimeoutMs = o.duration("readTimeout", { default: DEFAULT_READ_TIMEOUT_MS });
  const writeTimeoutMs = o.duration("writeTimeout", { default: DEFAULT_WRITE_TIMEOUT_MS });
  // Traefik keeps the client's 5 s when dialTimeout is 0.
  const dialTimeoutMs = o.duration("dialTimeout", { default: DEFAULT_DIAL_TIMEOUT_MS }) ||
    DEFAULT_DIAL_TIMEOUT_MS;

  const mode = o.string("failureMode", { default: "error" });
  if (mode !== "error" && mode !== "local") {
    o.fail(
      "failureMode",
      `expected "error" (answer 500, as Traefik does) or "local" (limit on this node alone), found ${
        JSON.stringify(mode)
      }`,
    );
  }

  return {
    endpoints,
    username,
    password,
    db,
    tls: readTls(o.object("tls")),
    connections,
    readTimeoutMs,
    writeTimeoutMs,
    dialTimeoutMs,
    failureMode: mode as FailureMode,
  };
}

function parseEndpoint(o: OptionReader, key: string, text: string): RedisEndpoint {
  const bad = () =>
    o.fail(
      key,
      `expected host:port, redis://host:port or rediss://host:port, found ${JSON.stringify(text)}`,
    );
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `redis://${text}`);
  } catch {
    return bad();
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") return bad();
  if (
    url.hostname === "" || url.username || url.password ||
    (url.pathname !== "" && url.pathname !== "/")
  ) {
    // Credentials and db have their own options, so a URL never carries them.
    return bad();
  }
  const port = url.port ? Number(url.port) : 6379;
  return { host: url.hostname.replace(/^\[|\]$/g, ""), port, tls: url.protocol === "rediss:" };
}

function readTls(o: OptionReader | undefined): RedisLimiterOptions["tls"] {
  if (!o) return undefined;
  o.unknownKeysCheck(["ca", "cert", "key", "insecureSkipVerify"]);
  if (o.bool("insecureSkipVerify", { default: false })) {
    o.fail(
      "insecureSkipVerify",
      "is not supported: Deno's TLS client always verifies; give the server's CA in ca instead",
    );
  }
  const pem = (field: "ca" | "cert" | "key") => {
    const value = o.string(field, { default: "" });
    if (value === "") return undefined;
    try {
      return loadPem("rateLimit.redis", `tls.${field}`, value);
    } catch (err) {
      return o.fail(field, (err as Error).message.replace(/^rateLimit\.redis: tls\.\w+ /, ""));
    }
  };
  const tls = { ca: pem("ca"), cert: pem("cert"), key: pem("key") };
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    o.fail(
      tls.cert ? "key" : "cert",
      "cert and key go together: set both for a client certificate, or neither",
    );
  }
  return tls;
}

/** Why a connection that never became ready was given up on. */
export function connectTimeoutMessage(dialTimeoutMs: number): string {
  return `no answer within dialTimeout (${dialTimeoutMs} ms) while connecting`;
}
