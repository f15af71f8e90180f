/**
 * Extracts Traefik's documentation as test data for Portico (issue 21).
 *
 * `deno run -A scripts/traefik_docs_corpus.ts [--git-dir DIR] [--record-outcomes]`
 *
 * Reads a git mirror of traefik/traefik at HEAD (default
 * /work/.mirror/traefik+traefik/repo, as the `fetch` tool leaves it) and writes:
 *
 * - `tests/data/traefik_docs_blocks.json`: every TOML code block of
 *   `docs/content/**\/*.md`, plus the two reference files
 *   `docs/content/reference/{static,dynamic}-configuration/file.toml` split per
 *   top-level table. Each block has its page, index, line, TOML text, kind
 *   (static, dynamic or mixed, from its top-level keys) and scope ("in" or
 *   why it is left out).
 * - `tests/data/traefik_reference_keys.json`: every leaf key path of the two
 *   reference files with Traefik's example value and, where that value is the
 *   generator's filler (`"foobar"`, `42` where 42 is not valid), the valid
 *   value Portico is probed with. The `accepted` list and the recorded
 *   `outcomes` are kept from the existing file; `--record-outcomes` runs every
 *   key through the checks again and rewrites both (and prints what changed,
 *   for review: an accepted key must be one that really works).
 *
 * Only configuration data is taken (the TOML of the blocks without its
 * comments, key paths and values); no prose.
 *
 * @module
 */

import { parse } from "smol-toml";
import { locateKey } from "../lib/cli/check.ts";
import { NAME_PARENTS } from "../tests/fixtures/traefik_key_paths.ts";
// Types only: the walk (and the middleware code behind it) loads only for --record-outcomes.
import type { ReferenceKey } from "../tests/fixtures/traefik_reference_walk.ts";

const DEFAULT_GIT_DIR = "/work/.mirror/traefik+traefik/repo";
const UPSTREAM = "https://github.com/traefik/traefik";
const BLOCKS_FILE = new URL("../tests/data/traefik_docs_blocks.json", import.meta.url);
const KEYS_FILE = new URL("../tests/data/traefik_reference_keys.json", import.meta.url);
const REFERENCE_FILES = {
  static: "docs/content/reference/static-configuration/file.toml",
  dynamic: "docs/content/reference/dynamic-configuration/file.toml",
} as const;

type Tree = Record<string, unknown>;

/** Why a block is not part of the measured corpus; "in" when it is. */
export type Scope =
  | "in"
  | "orchestrator provider"
  | "Yaegi plugin"
  | "v2-only keys"
  | "docs placeholder"
  | "docs error: not TOML";

/** One TOML block of the docs. */
export interface DocBlock {
  /** `page#index`, stable while the page does not change. */
  id: string;
  /** Path under docs/content. */
  page: string;
  /** 0-based index of the TOML block on its page. */
  index: number;
  /** 1-based line of the block's first TOML line on its page. */
  line: number;
  kind: "static" | "dynamic" | "mixed";
  scope: Scope;
  toml: string;
}

function git(gitDir: string, args: string[]): string {
  const out = new Deno.Command("git", { args: [`--git-dir=${gitDir}`, ...args] }).outputSync();
  if (!out.success) {
    throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

function isTable(v: unknown): v is Tree {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Every (path, value) leaf of a parsed tree; list indices as `[i]`. */
function leaves(tree: unknown, path: string[] = []): { path: string[]; value: unknown }[] {
  if (isTable(tree)) {
    const entries = Object.entries(tree);
    if (entries.length === 0) return [{ path, value: tree }];
    return entries.flatMap(([k, v]) => leaves(v, [...path, k]));
  }
  if (Array.isArray(tree) && tree.some(isTable)) {
    return tree.flatMap((v, i) => leaves(v, [...path.slice(0, -1), `${path.at(-1)}[${i}]`]));
  }
  return [{ path, value: tree }];
}

// ---------------------------------------------------------------- blocks

/** Markdown fences ```toml …```, at any indent (admonitions and tabs indent them). */
function tomlFences(markdown: string): { line: number; text: string }[] {
  const lines = markdown.split("\n");
  const out: { line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```toml\b/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && lines[j].trim() !== "```"; j++) {
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j].trimStart());
    }
    out.push({ line: i + 2, text: body.join("\n") });
    i = j;
  }
  return out;
}

/**
 * Drops the comments of a TOML text (the docs' prose), keeping a bare `# ...`
 * where the docs mark an elision: it tells a reader the snippet is partial.
 * Tracks strings so a `#` inside one stays. Lines stay where they were.
 */
export function stripComments(text: string): string {
  let multi: '"""' | "'''" | undefined;
  return text.split("\n").map((line) => {
    let i = 0;
    let quote: '"' | "'" | undefined;
    while (i < line.length) {
      if (multi) {
        const end = line.indexOf(multi, i);
        if (end < 0) return line;
        i = end + 3;
        multi = undefined;
        continue;
      }
      const c = line[i];
      if (quote) {
        if (c === "\\" && quote === '"') i++;
        else if (c === quote) quote = undefined;
      } else if (line.startsWith('"""', i) || line.startsWith("'''", i)) {
        multi = line.slice(i, i + 3) as '"""' | "'''";
        i += 3;
        continue;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === "#") {
        const code = line.slice(0, i).trimEnd();
        const elision = /^#+\s*\.\.\./.test(line.slice(i));
        return elision ? `${code}${code ? " " : line.slice(0, i)}# ...` : code;
      }
      i++;
    }
    return line;
  }).join("\n");
}

/** A reference file cut at each change of top-level table, with the line each part starts on. */
function splitPerTopLevelTable(text: string): { line: number; text: string }[] {
  const parts: { line: number; lines: string[]; top: string }[] = [];
  text.split("\n").forEach((raw, i) => {
    const header = /^\s*\[\[?\s*([A-Za-z0-9_-]+)/.exec(raw);
    if (header && header[1] !== parts.at(-1)?.top) {
      parts.push({ line: i + 1, lines: [], top: header[1] });
    }
    parts.at(-1)?.lines.push(raw);
  });
  return parts.map((p) => ({ line: p.line, text: p.lines.join("\n").trimEnd() }));
}

const DYNAMIC_TOP = ["http", "tcp", "udp", "tls"];

function kindOf(tree: Tree): DocBlock["kind"] {
  const keys = Object.keys(tree).map((k) => k.toLowerCase());
  const dynamic = keys.filter((k) => DYNAMIC_TOP.includes(k)).length;
  return dynamic === 0 ? "static" : dynamic === keys.length ? "dynamic" : "mixed";
}

const ORCHESTRATOR_PROVIDERS = /^(docker|swarm|kubernetes\w*|knative|nomad|consulcatalog|ecs)$/i;
const ORCHESTRATOR_PAGES =
  /(providers\/(docker|swarm|kubernetes\/|hashicorp\/(nomad|consul-catalog)|others\/ecs))|routing-configuration\/(kubernetes\/|other-providers\/(docker|swarm|nomad|consul-catalog|ecs))|^(expose|setup)\/(docker|kubernetes|swarm)/;

function isOrchestrator(page: string, tree: Tree): boolean {
  for (const { path } of leaves(tree)) {
    const [top, second] = path.map((p) => p.replace(/\[\d+\]$/, ""));
    if (/^providers$/i.test(top) && second && ORCHESTRATOR_PROVIDERS.test(second)) return true;
    if (/^experimental$/i.test(top) && second && ORCHESTRATOR_PROVIDERS.test(second)) return true;
    // Provider fragments shown without [providers] (the migration page).
    if (/^(consulCatalog|nomad)$/i.test(top)) return true;
  }
  // A bare option (`constraints = …`) with no section: its page says whose it is.
  const known = Object.keys(tree).some((k) =>
    /^(http|tcp|udp|tls|entryPoints|providers|api|ping|log|accessLog|metrics|tracing|certificatesResolvers|experimental|global|serversTransport|tcpServersTransport|hostResolver|spiffe|ocsp|core|consul|etcd|redis|zooKeeper|pilot)$/i
      .test(k)
  );
  return !known && ORCHESTRATOR_PAGES.test(page);
}

function isYaegi(tree: Tree): boolean {
  return leaves(tree).some(({ path }) => {
    const p = path.join(".").toLowerCase();
    return /^experimental\.(plugins|localplugins|abortonpluginfailure)\b/.test(p) ||
      /^providers\.plugin\b/.test(p) || /^http\.middlewares\.[^.]+\.plugin\b/.test(p);
  });
}

/** Keys Traefik v3 removed (docs/content/migrate/v2-to-v3-details.md lists them). */
function isV2Only(tree: Tree): boolean {
  return leaves(tree).some(({ path, value }) => {
    const p = path.join(".").replace(/\[\d+\]/g, "").toLowerCase();
    return /^providers\.[^.]+\.(endpoint\.)?tls\.caoptional$/.test(p) ||
      /^(providers\.)?(consul|consulcatalog|nomad)\.namespace$/.test(p) ||
      /^providers\.(rancher|marathon)\b/.test(p) || /^metrics\.influxdb\b/.test(p) ||
      /^pilot\b/.test(p) || p === "experimental.http3" ||
      (/(^|\.)(rulesyntax|defaultrulesyntax)$/.test(p) && value === "v2");
  });
}

/**
 * Keys where "foobar" is a valid value (a header name, a namespace): there the
 * docs' usual filler is a real example, not a placeholder.
 */
const FREE_TEXT_KEYS = /^(connection|namespaces)$/i;

function isPlaceholder(tree: Tree): boolean {
  return leaves(tree).some(({ path, value }) => {
    const key = path.at(-1)?.replace(/\[\d+\]$/, "") ?? "";
    const values = Array.isArray(value) ? value : [value];
    return values.some((v) =>
      typeof v === "string" &&
      (/^<.+>$/.test(v) || /xxx|\bxx\b/i.test(v) || /\{\{.*\}\}/.test(v) ||
        (v === "foobar" && !FREE_TEXT_KEYS.test(key)))
    );
  });
}

function scopeOf(page: string, text: string, tree: Tree | undefined): Scope {
  if (tree === undefined) {
    if (/\{\{|foobar/.test(text)) return "docs placeholder";
    return ORCHESTRATOR_PAGES.test(page) ? "orchestrator provider" : "docs error: not TOML";
  }
  if (isOrchestrator(page, tree)) return "orchestrator provider";
  if (isYaegi(tree)) return "Yaegi plugin";
  if (isV2Only(tree)) return "v2-only keys";
  if (isPlaceholder(tree)) return "docs placeholder";
  return "in";
}

function tryParse(text: string): Tree | undefined {
  try {
    return parse(text) as Tree;
  } catch {
    return undefined;
  }
}

function extractBlocks(gitDir: string): DocBlock[] {
  const pages = git(gitDir, ["ls-tree", "-r", "--name-only", "HEAD", "docs/content"])
    .split("\n").filter((f) => f.endsWith(".md")).sort();
  const blocks: DocBlock[] = [];
  const add = (page: string, index: number, line: number, raw: string) => {
    const text = stripComments(raw);
    const tree = tryParse(text);
    blocks.push({
      id: `${page}#${index}`,
      page,
      index,
      line,
      kind: tree ? kindOf(tree) : "static",
      scope: scopeOf(page, text, tree),
      toml: text,
    });
  };
  for (const file of pages) {
    const page = file.replace(/^docs\/content\//, "");
    tomlFences(git(gitDir, ["show", `HEAD:${file}`])).forEach((b, i) =>
      add(page, i, b.line, b.text)
    );
  }
  for (const file of Object.values(REFERENCE_FILES)) {
    const page = file.replace(/^docs\/content\//, "");
    splitPerTopLevelTable(git(gitDir, ["show", `HEAD:${file}`]))
      .forEach((b, i) => add(page, i, b.line, b.text));
  }
  return blocks;
}

// ---------------------------------------------------------------- reference keys

/**
 * Valid values for keys whose example is the generator's filler, by key
 * pattern (`*` for a name, `[]` for a list index). A value from Traefik's docs
 * for that option where they give one; otherwise a plain valid value. The
 * point is that a refusal then says something about the key, not the filler.
 */
const PROBES: Record<string, unknown> = {
  "serversTransport.rootCAs": ["/etc/traefik/ca.pem"],
  "serversTransport.spiffe.ids": ["spiffe://example.org/backend"],
  "serversTransport.spiffe.trustDomain": "spiffe://example.org",
  "tcpServersTransport.tls.rootCAs": ["/etc/traefik/ca.pem"],
  "tcpServersTransport.tls.spiffe.ids": ["spiffe://example.org/backend"],
  "tcpServersTransport.tls.spiffe.trustDomain": "spiffe://example.org",
  "entryPoints.*.address": ":8081",
  "entryPoints.*.proxyProtocol.trustedIPs": ["127.0.0.1/32", "192.168.1.7"],
  "entryPoints.*.forwardedHeaders.trustedIPs": ["127.0.0.1/32", "192.168.1.7"],
  "entryPoints.*.forwardedHeaders.connection": ["X-Custom-Hop"],
  "entryPoints.*.http.middlewares": ["auth@file"],
  "entryPoints.*.http.maxHeaderBytes": 65536,
  "entryPoints.*.http.underscoreHeadersStrategy": "delete",
  "entryPoints.*.http.redirections.entryPoint.to": "websecure",
  "entryPoints.*.http.redirections.entryPoint.scheme": "https",
  "entryPoints.*.http.tls.options": "default",
  "entryPoints.*.http.tls.certResolver": "myresolver",
  "entryPoints.*.http.tls.domains[].main": "example.com",
  "entryPoints.*.http.tls.domains[].sans": ["www.example.com"],
  "entryPoints.*.http2.maxConcurrentStreams": 250,
  "entryPoints.*.http3.advertisedPort": 443,
  "entryPoints.*.observability.traceVerbosity": "detailed",
  "providers.file.directory": "/etc/traefik/dynamic",
  "providers.file.filename": "/etc/traefik/dynamic.toml",
  "providers.consul.rootKey": "traefik",
  "providers.consul.endpoints": ["127.0.0.1:8500"],
  "providers.consul.token": "consul-token",
  "providers.consul.namespaces": ["team-a"],
  "providers.etcd.rootKey": "traefik",
  "providers.etcd.endpoints": ["127.0.0.1:2379"],
  "providers.etcd.username": "traefik",
  "providers.etcd.password": "secret",
  "providers.zooKeeper.rootKey": "traefik",
  "providers.zooKeeper.endpoints": ["127.0.0.1:2181"],
  "providers.zooKeeper.username": "traefik",
  "providers.zooKeeper.password": "secret",
  "providers.redis.rootKey": "traefik",
  "providers.redis.endpoints": ["127.0.0.1:6379"],
  "providers.redis.username": "traefik",
  "providers.redis.password": "secret",
  "providers.redis.db": 1,
  "providers.redis.sentinel.masterName": "mymaster",
  "providers.redis.sentinel.username": "sentinel",
  "providers.redis.sentinel.password": "secret",
  "providers.http.endpoint": "http://127.0.0.1:9000/api",
  "providers.http.headers": { Authorization: "Bearer token" },
  "providers.http.maxResponseBodySize": 1048576,
  "api.basePath": "/traefik",
  "metrics.prometheus.buckets": [0.1, 0.3, 1.2, 5.0],
  "metrics.prometheus.entryPoint": "metrics",
  "metrics.prometheus.headerLabels": { useragent: "User-Agent" },
  "metrics.datadog.address": "127.0.0.1:8125",
  "metrics.datadog.prefix": "traefik",
  "metrics.statsD.address": "127.0.0.1:8125",
  "metrics.statsD.prefix": "traefik",
  "metrics.influxDB2.address": "http://127.0.0.1:8086",
  "metrics.influxDB2.token": "influx-token",
  "metrics.influxDB2.org": "my-org",
  "metrics.influxDB2.bucket": "my-bucket",
  "metrics.influxDB2.additionalLabels": { host: "example.com" },
  "metrics.otlp.explicitBoundaries": [0.1, 0.3, 1.2, 5.0],
  "metrics.otlp.serviceName": "traefik",
  "metrics.otlp.grpc.endpoint": "127.0.0.1:4317",
  "metrics.otlp.grpc.headers": { "X-Api-Key": "key" },
  "metrics.otlp.http.endpoint": "http://127.0.0.1:4318/v1/metrics",
  "metrics.otlp.http.headers": { "X-Api-Key": "key" },
  "metrics.otlp.resourceAttributes": { env: "prod" },
  "ping.entryPoint": "ping",
  "ping.terminatingStatusCode": 503,
  "log.level": "DEBUG",
  "log.format": "json",
  "log.filePath": "/var/log/traefik/traefik.log",
  "log.otlp.serviceName": "traefik",
  "log.otlp.resourceAttributes": { env: "prod" },
  "log.otlp.grpc.endpoint": "127.0.0.1:4317",
  "log.otlp.grpc.headers": { "X-Api-Key": "key" },
  "log.otlp.http.endpoint": "http://127.0.0.1:4318/v1/logs",
  "log.otlp.http.headers": { "X-Api-Key": "key" },
  "accessLog.filePath": "/var/log/traefik/access.log",
  "accessLog.format": "json",
  "accessLog.bufferingSize": 100,
  "accessLog.filters.statusCodes": ["200", "300-302"],
  "accessLog.filters.minDuration": "10ms",
  "accessLog.fields.defaultMode": "keep",
  "accessLog.fields.names": { ClientUsername: "drop" },
  "accessLog.fields.headers.defaultMode": "keep",
  "accessLog.fields.headers.names": { "User-Agent": "redact" },
  "accessLog.otlp.serviceName": "traefik",
  "accessLog.otlp.resourceAttributes": { env: "prod" },
  "accessLog.otlp.grpc.endpoint": "127.0.0.1:4317",
  "accessLog.otlp.grpc.headers": { "X-Api-Key": "key" },
  "accessLog.otlp.http.endpoint": "http://127.0.0.1:4318/v1/logs",
  "accessLog.otlp.http.headers": { "X-Api-Key": "key" },
  "tracing.serviceName": "traefik",
  "tracing.capturedRequestHeaders": ["X-Request-Id"],
  "tracing.capturedResponseHeaders": ["X-Upstream"],
  "tracing.safeQueryParams": ["page"],
  "tracing.sampleRate": 0.2,
  "tracing.resourceAttributes": { env: "prod" },
  "tracing.otlp.grpc.endpoint": "127.0.0.1:4317",
  "tracing.otlp.grpc.headers": { "X-Api-Key": "key" },
  "tracing.otlp.http.endpoint": "http://127.0.0.1:4318/v1/traces",
  "tracing.otlp.http.headers": { "X-Api-Key": "key" },
  "tracing.globalAttributes": { env: "prod" },
  "hostResolver.resolvConfig": "/etc/resolv.conf",
  "hostResolver.resolvDepth": 5,
  "certificatesResolvers.*.acme.email": "admin@example.com",
  "certificatesResolvers.*.acme.caServer": "https://acme-staging-v02.api.letsencrypt.org/directory",
  "certificatesResolvers.*.acme.preferredChain": "ISRG Root X1",
  "certificatesResolvers.*.acme.profile": "shortlived",
  "certificatesResolvers.*.acme.emailAddresses": ["ops@example.com"],
  "certificatesResolvers.*.acme.storage": "acme.json",
  "certificatesResolvers.*.acme.keyType": "RSA4096",
  "certificatesResolvers.*.acme.certificatesDuration": 2160,
  "certificatesResolvers.*.acme.caCertificates": ["/etc/traefik/ca.pem"],
  "certificatesResolvers.*.acme.caServerName": "acme.example.com",
  "certificatesResolvers.*.acme.eab.kid": "kid-1",
  "certificatesResolvers.*.acme.eab.hmacEncoded": "c2VjcmV0LWhtYWMta2V5",
  "certificatesResolvers.*.acme.dnsChallenge.provider": "cloudflare",
  "certificatesResolvers.*.acme.dnsChallenge.resolvers": ["1.1.1.1:53"],
  "certificatesResolvers.*.acme.httpChallenge.entryPoint": "web",
  "core.defaultRuleSyntax": "v3",
  "spiffe.workloadAPIAddr": "unix:///run/spire/agent.sock",
  "ocsp.responderOverrides": { "http://ocsp.example.com": "http://127.0.0.1:8888" },
  "http.routers.*.entryPoints": ["web"],
  "http.routers.*.middlewares": ["auth"],
  "http.routers.*.service": "app",
  "http.routers.*.rule": "Host(`example.com`)",
  "http.routers.*.ruleSyntax": "v3",
  "http.routers.*.priority": 10,
  "http.routers.*.tls.options": "default",
  "http.routers.*.tls.certResolver": "myresolver",
  "http.routers.*.tls.domains[].main": "example.com",
  "http.routers.*.tls.domains[].sans": ["www.example.com"],
  "http.routers.*.observability.traceVerbosity": "detailed",
  "http.services.*.failover.service": "main",
  "http.services.*.failover.fallback": "backup",
  "http.services.*.highestRandomWeight.services[].name": "app",
  "http.services.*.highestRandomWeight.services[].weight": 3,
  "http.services.*.loadBalancer.strategy": "wrr",
  "http.services.*.loadBalancer.serversTransport": "transport",
  "http.services.*.loadBalancer.sticky.cookie.name": "lb",
  "http.services.*.loadBalancer.sticky.cookie.sameSite": "lax",
  "http.services.*.loadBalancer.sticky.cookie.maxAge": 3600,
  "http.services.*.loadBalancer.sticky.cookie.path": "/",
  "http.services.*.loadBalancer.sticky.cookie.domain": "example.com",
  "http.services.*.loadBalancer.servers[].url": "http://127.0.0.1:8080",
  "http.services.*.loadBalancer.servers[].weight": 3,
  "http.services.*.loadBalancer.healthCheck.scheme": "http",
  "http.services.*.loadBalancer.healthCheck.mode": "http",
  "http.services.*.loadBalancer.healthCheck.path": "/health",
  "http.services.*.loadBalancer.healthCheck.method": "GET",
  "http.services.*.loadBalancer.healthCheck.status": 200,
  "http.services.*.loadBalancer.healthCheck.port": 8080,
  "http.services.*.loadBalancer.healthCheck.interval": "10s",
  "http.services.*.loadBalancer.healthCheck.unhealthyInterval": "5s",
  "http.services.*.loadBalancer.healthCheck.timeout": "3s",
  "http.services.*.loadBalancer.healthCheck.hostname": "example.com",
  "http.services.*.loadBalancer.healthCheck.headers": { "X-Health": "1" },
  "http.services.*.loadBalancer.passiveHealthCheck.failureWindow": "10s",
  "http.services.*.loadBalancer.passiveHealthCheck.maxFailedAttempts": 3,
  "http.services.*.loadBalancer.responseForwarding.flushInterval": "100ms",
  "http.services.*.mirroring.service": "app",
  "http.services.*.mirroring.maxBodySize": 1024,
  "http.services.*.mirroring.mirrors[].name": "mirror",
  "http.services.*.mirroring.mirrors[].percent": 10,
  "http.services.*.weighted.services[].name": "app",
  "http.services.*.weighted.services[].weight": 3,
  "http.services.*.weighted.sticky.cookie.name": "lb",
  "http.services.*.weighted.sticky.cookie.sameSite": "lax",
  "http.services.*.weighted.sticky.cookie.maxAge": 3600,
  "http.services.*.weighted.sticky.cookie.path": "/",
  "http.services.*.weighted.sticky.cookie.domain": "example.com",
  "http.middlewares.*.addPrefix.prefix": "/foo",
  "http.middlewares.*.basicAuth.users": ["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"],
  "http.middlewares.*.basicAuth.usersFile": "/etc/traefik/users",
  "http.middlewares.*.basicAuth.realm": "MyRealm",
  "http.middlewares.*.basicAuth.headerField": "X-WebAuth-User",
  "http.middlewares.*.buffering.maxRequestBodyBytes": 2000000,
  "http.middlewares.*.buffering.memRequestBodyBytes": 1048576,
  "http.middlewares.*.buffering.maxResponseBodyBytes": 2000000,
  "http.middlewares.*.buffering.memResponseBodyBytes": 1048576,
  "http.middlewares.*.buffering.retryExpression": "IsNetworkError() && Attempts() < 2",
  "http.middlewares.*.chain.middlewares": ["auth", "strip"],
  "http.middlewares.*.circuitBreaker.expression": "NetworkErrorRatio() > 0.5",
  "http.middlewares.*.circuitBreaker.checkPeriod": "100ms",
  "http.middlewares.*.circuitBreaker.fallbackDuration": "10s",
  "http.middlewares.*.circuitBreaker.recoveryDuration": "10s",
  "http.middlewares.*.circuitBreaker.responseCode": 503,
  "http.middlewares.*.compress.excludedContentTypes": ["text/event-stream"],
  "http.middlewares.*.compress.includedContentTypes": ["text/html"],
  "http.middlewares.*.compress.minResponseBodyBytes": 1200,
  "http.middlewares.*.compress.encodings": ["gzip", "br"],
  "http.middlewares.*.compress.defaultEncoding": "gzip",
  "http.middlewares.*.digestAuth.users": ["test:traefik:a2688e031edb4be6a3797f3882655c05"],
  "http.middlewares.*.digestAuth.usersFile": "/etc/traefik/users",
  "http.middlewares.*.digestAuth.realm": "MyRealm",
  "http.middlewares.*.digestAuth.headerField": "X-WebAuth-User",
  "http.middlewares.*.errors.status": ["500-599"],
  "http.middlewares.*.errors.service": "errors",
  "http.middlewares.*.errors.query": "/{status}.html",
  "http.middlewares.*.errors.errorRequestHeaders": ["X-Request-Id"],
  "http.middlewares.*.errors.statusRewrites": { "418": 404, "502-504": 500 },
  "http.middlewares.*.forwardAuth.address": "https://auth.example.com/auth",
  "http.middlewares.*.forwardAuth.authResponseHeaders": ["X-Auth-User"],
  "http.middlewares.*.forwardAuth.authResponseHeadersRegex": "^X-",
  "http.middlewares.*.forwardAuth.authRequestHeaders": ["Accept", "X-CustomHeader"],
  "http.middlewares.*.forwardAuth.addAuthCookiesToResponse": ["Session-Cookie"],
  "http.middlewares.*.forwardAuth.headerField": "X-WebAuth-User",
  "http.middlewares.*.forwardAuth.maxBodySize": 1024,
  "http.middlewares.*.forwardAuth.maxResponseBodySize": 1024,
  "http.middlewares.*.forwardAuth.tls.ca": "/etc/traefik/ca.pem",
  "http.middlewares.*.forwardAuth.tls.cert": "/etc/traefik/cert.pem",
  "http.middlewares.*.forwardAuth.tls.key": "/etc/traefik/key.pem",
  "http.middlewares.*.grpcWeb.allowOrigins": ["*"],
  "http.middlewares.*.headers.accessControlAllowHeaders": ["Content-Type"],
  "http.middlewares.*.headers.accessControlAllowMethods": ["GET", "OPTIONS", "PUT"],
  "http.middlewares.*.headers.accessControlAllowOriginList": ["https://example.com"],
  "http.middlewares.*.headers.accessControlAllowOriginListRegex": [
    "^https://([a-z]+)\\.example\\.com$",
  ],
  "http.middlewares.*.headers.accessControlExposeHeaders": ["X-Custom"],
  "http.middlewares.*.headers.accessControlMaxAge": 100,
  "http.middlewares.*.headers.allowedHosts": ["example.com"],
  "http.middlewares.*.headers.hostsProxyHeaders": ["X-Forwarded-Host"],
  "http.middlewares.*.headers.stsSeconds": 31536000,
  "http.middlewares.*.headers.customFrameOptionsValue": "SAMEORIGIN",
  "http.middlewares.*.headers.customBrowserXSSValue": "1; mode=block",
  "http.middlewares.*.headers.contentSecurityPolicy": "default-src 'self'",
  "http.middlewares.*.headers.contentSecurityPolicyReportOnly": "default-src 'self'",
  "http.middlewares.*.headers.publicKey": 'pin-sha256="base64+primary=="; max-age=5184000',
  "http.middlewares.*.headers.referrerPolicy": "same-origin",
  "http.middlewares.*.headers.permissionsPolicy": "camera=(), microphone=()",
  "http.middlewares.*.headers.featurePolicy": "vibrate 'none'",
  "http.middlewares.*.headers.sslHost": "example.com",
  "http.middlewares.*.headers.customRequestHeaders": { "X-Script-Name": "test" },
  "http.middlewares.*.headers.customResponseHeaders": { "X-Custom-Response-Header": "value" },
  "http.middlewares.*.headers.sslProxyHeaders": { "X-Forwarded-Proto": "https" },
  "http.middlewares.*.ipAllowList.sourceRange": ["127.0.0.1/32", "192.168.1.7"],
  "http.middlewares.*.ipAllowList.rejectStatusCode": 404,
  "http.middlewares.*.ipAllowList.ipStrategy.depth": 2,
  "http.middlewares.*.ipAllowList.ipStrategy.excludedIPs": ["127.0.0.1/32"],
  "http.middlewares.*.ipAllowList.ipStrategy.ipv6Subnet": 64,
  "http.middlewares.*.ipWhiteList.sourceRange": ["127.0.0.1/32", "192.168.1.7"],
  "http.middlewares.*.ipWhiteList.ipStrategy.depth": 2,
  "http.middlewares.*.ipWhiteList.ipStrategy.excludedIPs": ["127.0.0.1/32"],
  "http.middlewares.*.ipWhiteList.ipStrategy.ipv6Subnet": 64,
  "http.middlewares.*.inFlightReq.amount": 10,
  "http.middlewares.*.inFlightReq.sourceCriterion.requestHeaderName": "username",
  "http.middlewares.*.inFlightReq.sourceCriterion.ipStrategy.depth": 2,
  "http.middlewares.*.inFlightReq.sourceCriterion.ipStrategy.excludedIPs": ["127.0.0.1/32"],
  "http.middlewares.*.inFlightReq.sourceCriterion.ipStrategy.ipv6Subnet": 64,
  "http.middlewares.*.rateLimit.average": 100,
  "http.middlewares.*.rateLimit.period": "1s",
  "http.middlewares.*.rateLimit.burst": 50,
  "http.middlewares.*.rateLimit.sourceCriterion.requestHeaderName": "username",
  "http.middlewares.*.rateLimit.sourceCriterion.ipStrategy.depth": 2,
  "http.middlewares.*.rateLimit.sourceCriterion.ipStrategy.excludedIPs": ["127.0.0.1/32"],
  "http.middlewares.*.rateLimit.sourceCriterion.ipStrategy.ipv6Subnet": 64,
  "http.middlewares.*.rateLimit.redis.endpoints": ["127.0.0.1:6379"],
  "http.middlewares.*.rateLimit.redis.username": "traefik",
  "http.middlewares.*.rateLimit.redis.password": "secret",
  "http.middlewares.*.rateLimit.redis.db": 1,
  "http.middlewares.*.rateLimit.redis.poolSize": 10,
  "http.middlewares.*.rateLimit.redis.minIdleConns": 1,
  "http.middlewares.*.rateLimit.redis.maxActiveConns": 10,
  "http.middlewares.*.rateLimit.redis.readTimeout": "3s",
  "http.middlewares.*.rateLimit.redis.writeTimeout": "3s",
  "http.middlewares.*.rateLimit.redis.dialTimeout": "5s",
  "http.middlewares.*.rateLimit.redis.tls.ca": "/etc/traefik/ca.pem",
  "http.middlewares.*.rateLimit.redis.tls.cert": "/etc/traefik/cert.pem",
  "http.middlewares.*.rateLimit.redis.tls.key": "/etc/traefik/key.pem",
  "http.middlewares.*.redirectRegex.regex": "^http://localhost/(.*)",
  "http.middlewares.*.redirectRegex.replacement": "http://mydomain/${1}",
  "http.middlewares.*.redirectScheme.scheme": "https",
  "http.middlewares.*.redirectScheme.port": "443",
  "http.middlewares.*.replacePath.path": "/foo",
  "http.middlewares.*.replacePathRegex.regex": "^/foo/(.*)",
  "http.middlewares.*.replacePathRegex.replacement": "/bar/$1",
  "http.middlewares.*.retry.attempts": 4,
  "http.middlewares.*.retry.initialInterval": "100ms",
  "http.middlewares.*.stripPrefix.prefixes": ["/foobar", "/fiibar"],
  "http.middlewares.*.stripPrefixRegex.regex": ["/foo/[a-z0-9]+/[0-9]+/"],
  "http.serversTransports.*.serverName": "backend.example.com",
  "http.serversTransports.*.rootCAs": ["/etc/traefik/ca.pem"],
  "http.serversTransports.*.cipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
  "http.serversTransports.*.minVersion": "VersionTLS13",
  "http.serversTransports.*.maxVersion": "VersionTLS12",
  "http.serversTransports.*.maxIdleConnsPerHost": 7,
  "http.serversTransports.*.peerCertURI": "spiffe://example.org/backend",
  "http.serversTransports.*.certificates[].certFile": "/etc/traefik/client.pem",
  "http.serversTransports.*.certificates[].keyFile": "/etc/traefik/client-key.pem",
  "http.serversTransports.*.forwardingTimeouts.dialTimeout": "5s",
  "http.serversTransports.*.forwardingTimeouts.responseHeaderTimeout": "10s",
  "http.serversTransports.*.forwardingTimeouts.idleConnTimeout": "90s",
  "http.serversTransports.*.forwardingTimeouts.readIdleTimeout": "30s",
  "http.serversTransports.*.forwardingTimeouts.pingTimeout": "15s",
  "http.serversTransports.*.spiffe.ids": ["spiffe://example.org/backend"],
  "http.serversTransports.*.spiffe.trustDomain": "spiffe://example.org",
  "tcp.routers.*.entryPoints": ["tcp"],
  "tcp.routers.*.middlewares": ["allow"],
  "tcp.routers.*.service": "db",
  "tcp.routers.*.rule": "HostSNI(`*`)",
  "tcp.routers.*.ruleSyntax": "v3",
  "tcp.routers.*.priority": 10,
  "tcp.routers.*.tls.options": "default",
  "tcp.routers.*.tls.certResolver": "myresolver",
  "tcp.routers.*.tls.domains[].main": "example.com",
  "tcp.routers.*.tls.domains[].sans": ["www.example.com"],
  "tcp.services.*.loadBalancer.serversTransport": "transport",
  "tcp.services.*.loadBalancer.terminationDelay": 100,
  "tcp.services.*.loadBalancer.servers[].address": "127.0.0.1:5432",
  "tcp.services.*.loadBalancer.proxyProtocol.version": 2,
  "tcp.services.*.weighted.services[].name": "db",
  "tcp.services.*.weighted.services[].weight": 3,
  "tcp.middlewares.*.ipAllowList.sourceRange": ["127.0.0.1/32", "192.168.1.7"],
  "tcp.middlewares.*.ipWhiteList.sourceRange": ["127.0.0.1/32", "192.168.1.7"],
  "tcp.middlewares.*.inFlightConn.amount": 10,
  "tcp.serversTransports.*.dialKeepAlive": "15s",
  "tcp.serversTransports.*.dialTimeout": "30s",
  "tcp.serversTransports.*.terminationDelay": "100ms",
  "tcp.serversTransports.*.proxyProtocol.version": 2,
  "tcp.serversTransports.*.tls.serverName": "backend.example.com",
  "tcp.serversTransports.*.tls.rootCAs": ["/etc/traefik/ca.pem"],
  "tcp.serversTransports.*.tls.peerCertURI": "spiffe://example.org/backend",
  "tcp.serversTransports.*.tls.certificates[].certFile": "/etc/traefik/client.pem",
  "tcp.serversTransports.*.tls.certificates[].keyFile": "/etc/traefik/client-key.pem",
  "tcp.serversTransports.*.tls.spiffe.ids": ["spiffe://example.org/backend"],
  "tcp.serversTransports.*.tls.spiffe.trustDomain": "spiffe://example.org",
  "udp.routers.*.entryPoints": ["udp"],
  "udp.routers.*.service": "dns",
  "udp.services.*.loadBalancer.servers[].address": "127.0.0.1:53",
  "udp.services.*.weighted.services[].name": "dns",
  "udp.services.*.weighted.services[].weight": 3,
  "tls.certificates[].certFile": "/etc/traefik/cert.pem",
  "tls.certificates[].keyFile": "/etc/traefik/key.pem",
  "tls.certificates[].stores": ["default"],
  "tls.options.*.minVersion": "VersionTLS13",
  "tls.options.*.maxVersion": "VersionTLS12",
  "tls.options.*.cipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
  "tls.options.*.curvePreferences": ["CurveP521", "CurveP384"],
  "tls.options.*.alpnProtocols": ["http/1.1"],
  "tls.options.*.clientAuth.caFiles": ["/etc/traefik/ca.pem"],
  "tls.options.*.clientAuth.clientAuthType": "RequireAndVerifyClientCert",
  "tls.stores.*.defaultCertificate.certFile": "/etc/traefik/cert.pem",
  "tls.stores.*.defaultCertificate.keyFile": "/etc/traefik/key.pem",
  "tls.stores.*.defaultGeneratedCert.resolver": "myresolver",
  "tls.stores.*.defaultGeneratedCert.domain.main": "example.com",
  "tls.stores.*.defaultGeneratedCert.domain.sans": ["www.example.com"],
};

/** Key paths of a reference file, one per pattern (Router1 repeats Router0). */
function referenceKeys(text: string, file: "static" | "dynamic"): ReferenceKey[] {
  const out: ReferenceKey[] = [];
  const seen = new Set<string>();
  const emit = (path: string, pattern: string, value: unknown) => {
    if (seen.has(pattern)) return;
    seen.add(pattern);
    const probe = PROBES[pattern];
    // The line of the key itself, or of the table holding a map leaf.
    const key: ReferenceKey = { key: path, file, line: locateKey(text, path) ?? 0, value };
    if (probe !== undefined && JSON.stringify(probe) !== JSON.stringify(value)) key.probe = probe;
    out.push(key);
  };
  const walk = (v: unknown, path: string, pattern: string) => {
    const child = (k: string) => ({
      path: path ? `${path}.${k}` : k,
      pattern: pattern ? (NAME_PARENTS.has(pattern) ? `${pattern}.*` : `${pattern}.${k}`) : k,
    });
    if (isTable(v)) {
      const keys = Object.keys(v);
      const named = keys.filter((k) => /^name\d+$/.test(k));
      if (keys.length === 0) return emit(path, pattern, v);
      if (named.length > 0) {
        // A map of user-chosen names (headers, labels, …) is one option. The
        // generator writes the parent's later keys after the map's entries, so
        // in the TOML they land inside it; they are the parent's.
        emit(path, pattern, Object.fromEntries(named.map((k) => [k, v[k]])));
        const parentPath = path.replace(/\.[^.]+$/, "");
        const parentPattern = pattern.replace(/\.[^.]+$/, "");
        for (const k of keys.filter((k) => !named.includes(k))) {
          walk(v[k], `${parentPath}.${k}`, `${parentPattern}.${k}`);
        }
        return;
      }
      for (const k of keys) {
        const c = child(k);
        walk(v[k], c.path, c.pattern);
      }
    } else if (Array.isArray(v) && v.length > 0 && v.every(isTable)) {
      walk(v[0], `${path}[0]`, `${pattern}[]`);
    } else emit(path, pattern, v);
  };
  walk(parse(text), "", "");
  return out;
}

// ---------------------------------------------------------------- main

function headerOf(gitDir: string) {
  const [commit, date, subject] = git(gitDir, ["log", "-1", "--format=%H%n%cI%n%s", "HEAD"])
    .trim().split("\n");
  return { repository: UPSTREAM, commit, date, subject };
}

/** Stable JSON: two-space indent, short arrays and objects on one line. */
function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /\[\n\s+([^[\]{}]*?)\n\s+\]/g,
    (_m, inner: string) => `[${inner.split(/,\n\s+/).join(", ")}]`,
  ) + "\n";
}

if (import.meta.main) {
  const args = Deno.args;
  const at = args.indexOf("--git-dir");
  const gitDir = at >= 0 ? args[at + 1] : DEFAULT_GIT_DIR;
  const record = args.includes("--record-outcomes");
  const source = headerOf(gitDir);

  const blocks = extractBlocks(gitDir);
  await Deno.writeTextFile(
    BLOCKS_FILE,
    toJson({
      source: {
        ...source,
        files: "docs/content/**/*.md (```toml blocks); " +
          Object.values(REFERENCE_FILES).join(", ") + " (split per top-level table)",
      },
      blocks,
    }),
  );
  const counts = Object.groupBy(blocks, (b) => b.scope);
  console.log(
    `${blocks.length} blocks: ` +
      Object.entries(counts).map(([s, b]) => `${s} ${b!.length}`).join(", "),
  );

  const keys = (["static", "dynamic"] as const).flatMap((file) =>
    referenceKeys(git(gitDir, ["show", `HEAD:${REFERENCE_FILES[file]}`]), file)
  );
  let previous: { accepted?: string[]; outcomes?: Record<string, unknown> } = {};
  try {
    previous = JSON.parse(await Deno.readTextFile(KEYS_FILE));
  } catch { /* first run */ }
  let accepted = previous.accepted ?? [];
  let outcomes = previous.outcomes ?? {};
  if (record) {
    const { keyOutcome } = await import("../tests/fixtures/traefik_reference_walk.ts");
    outcomes = {};
    for (const k of keys) outcomes[k.key] = keyOutcome(k);
    const now = keys.filter((k) => (outcomes[k.key] as { outcome: string }).outcome === "accepted")
      .map((k) => k.key);
    const added = now.filter((k) => !accepted.includes(k));
    const removed = accepted.filter((k) => !now.includes(k));
    for (const k of added) console.log(`accepted now: ${k}`);
    for (const k of removed) console.log(`no longer accepted: ${k}`);
    accepted = now;
  }
  await Deno.writeTextFile(
    KEYS_FILE,
    toJson({
      source: { ...source, files: Object.values(REFERENCE_FILES) },
      notes: [
        "key: the first path of each pattern (Router1 repeats Router0); value: Traefik's example",
        "probe: the valid value checked instead, where Traefik's example is the generator's filler",
        "accepted: keys check accepts today; each must really work (issue 21); the test fails when this list is not exact",
        "outcomes: recorded by scripts/traefik_docs_corpus.ts --record-outcomes",
      ],
      keys,
      accepted,
      outcomes,
    }),
  );
  console.log(`${keys.length} reference keys, ${accepted.length} accepted`);
}
