/**
 * Config generation for the benchmark: the nginx backend, and Portico,
 * nginx, HAProxy and Caddy as proxies in front of it. Pure functions from
 * ports and file paths to config text, so the smoke test can validate every
 * config with the proxy's own checker without running any load.
 *
 * Every peer gets one plain-HTTP listener and one HTTPS listener; Portico
 * gets the HTTPS entrypoint only once `PORTICO_TLS_SUPPORTED` is true.
 *
 * @module
 */

/** The proxies the harness can put in front of the backend. */
export const PROXIES = ["portico", "nginx", "haproxy", "caddy"] as const;
export type ProxyName = typeof PROXIES[number];

/**
 * Portico's templates add a `websecure` entrypoint and the bench certificate
 * (also as the default certificate), so scenarios 3 and 4 include Portico.
 */
export const PORTICO_TLS_SUPPORTED = true;

/** The Host every plain scenario sends; routers in scenario 5 use `r<i>.bench.local`. */
export const BENCH_HOST = "bench.local";

/** Body sizes the backend serves: 12 bytes on `/`, 100 KB on `/big`. */
export const SMALL_BODY = "hello world\n";
export const BIG_BODY_BYTES = 100 * 1024;

export interface BenchPorts {
  backend: number;
  /** The proxy's plain HTTP listener. */
  http: number;
  /** The proxy's HTTPS listener. */
  https: number;
}

export interface BenchFiles {
  /** Scratch directory: pid files, logs, temp paths. */
  dir: string;
  /** Directory the backend serves `/big` from (holds a file named `big`). */
  wwwDir: string;
  certFile: string;
  keyFile: string;
  /** Certificate followed by key, the form HAProxy's `crt` wants. */
  pemFile: string;
}

export interface NginxOptions {
  /** nginx started as root switches workers to `nobody` unless told otherwise. */
  runAsRoot: boolean;
}

/** Lines shared by both nginx configs: foreground, one worker, files in the scratch dir. */
function nginxPreamble(files: BenchFiles, name: string, options: NginxOptions): string {
  return [
    "daemon off;",
    "master_process on;",
    "worker_processes 1;",
    "worker_rlimit_nofile 65536;",
    ...(options.runAsRoot ? ["user root;"] : []),
    `pid ${files.dir}/${name}.pid;`,
    `error_log ${files.dir}/${name}_error.log warn;`,
    "events { worker_connections 16384; }",
  ].join("\n");
}

function nginxTempPaths(files: BenchFiles, name: string): string {
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `  ${kind}_temp_path ${files.dir}/${name}_${kind}_temp;`)
    .join("\n");
}

/**
 * The fixed backend: nginx, one worker, 12 bytes on every path except
 * `/big` (100 KB). Keep-alive is effectively unlimited so proxies keep their
 * pooled connections for the whole run.
 */
export function backendNginxConf(
  ports: BenchPorts,
  files: BenchFiles,
  options: NginxOptions,
): string {
  return `${nginxPreamble(files, "backend", options)}
http {
  access_log off;
${nginxTempPaths(files, "backend")}
  default_type text/plain;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${ports.backend} backlog=4096;
    location = /big { root ${files.wwwDir}; }
    location / { return 200 "${SMALL_BODY.replace("\n", "\\n")}"; }
  }
}
`;
}

/**
 * Scenario 1b: the path wrk sends, whose prefix the route strips, and the
 * header each side adds. Portico's route gets headers (request and response)
 * + stripPrefix + rateLimit (an average so high it never limits, so the
 * token bucket still runs); nginx's equivalent does proxy_set_header,
 * add_header, a prefix-replacing proxy_pass and limit_req.
 */
export const SCENARIO_1B = {
  path: "/api/",
  prefix: "/api",
  requestHeader: "X-Bench-Req",
  responseHeader: "X-Bench-Resp",
  /** Requests per second the rate limit allows: far above any run here. */
  average: 100_000_000,
  burst: 1_000_000,
} as const;

/** Which routing a proxy config carries: scenario 1's bare route or scenario 1b's middlewares. */
export type RoutePreset = "plain" | "1b";

/** nginx as the proxy: one worker, upstream keep-alive, HTTP and HTTPS listeners. */
export function nginxProxyConf(
  ports: BenchPorts,
  files: BenchFiles,
  options: NginxOptions & { preset?: RoutePreset },
): string {
  const b = SCENARIO_1B;
  const name = options.preset === "1b" ? "nginx_1b" : "nginx_proxy";
  // A location that sets any proxy_set_header inherits none from http{}: repeat them.
  const location = options.preset === "1b"
    ? `    location ${b.prefix}/ {
      limit_req zone=bench burst=${b.burst} nodelay;
      proxy_pass http://backend/;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header ${b.requestHeader} "1";
      add_header ${b.responseHeader} "1";
    }`
    : `    location / { proxy_pass http://backend; }`;
  const zone = options.preset === "1b"
    ? `  limit_req_zone $binary_remote_addr zone=bench:1m rate=${b.average}r/s;\n`
    : "";
  return `${nginxPreamble(files, name, options)}
http {
  access_log off;
${zone}${nginxTempPaths(files, name)}
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream backend {
    server 127.0.0.1:${ports.backend};
    keepalive 256;
    keepalive_requests 10000000;
  }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  # Enough buffers that a 100 KB body never spills to a temp file.
  proxy_buffers 32 8k;
  # Full handshakes only in scenario 4, as for every peer.
  ssl_session_tickets off;
  ssl_session_cache off;
  server {
    listen 127.0.0.1:${ports.http} backlog=4096;
${location}
  }
  server {
    listen 127.0.0.1:${ports.https} ssl backlog=4096;
    ssl_certificate ${files.certFile};
    ssl_certificate_key ${files.keyFile};
${location}
  }
}
`;
}

/** HAProxy: one thread, keep-alive and connection reuse to the backend, no TLS resumption. */
export function haproxyConf(ports: BenchPorts, files: BenchFiles): string {
  return `global
  nbthread 1
  maxconn 8000
  tune.ssl.cachesize 0
  ssl-default-bind-options no-tls-tickets

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive
  http-reuse always

frontend web
  bind 127.0.0.1:${ports.http}
  bind 127.0.0.1:${ports.https} ssl crt ${files.pemFile}
  default_backend app

backend app
  option forwardfor
  server s1 127.0.0.1:${ports.backend}
`;
}

/**
 * Caddy as JSON rather than a Caddyfile: only JSON can switch off session
 * tickets, which scenario 4 needs so every connection is a full handshake.
 */
export function caddyConfig(ports: BenchPorts, files: BenchFiles): string {
  const routes = [{
    handle: [{ handler: "reverse_proxy", upstreams: [{ dial: `127.0.0.1:${ports.backend}` }] }],
  }];
  const config = {
    admin: { disabled: true },
    logging: { logs: { default: { level: "ERROR" } } },
    storage: { module: "file_system", root: `${files.dir}/caddy_storage` },
    apps: {
      http: {
        servers: {
          web: {
            listen: [`127.0.0.1:${ports.http}`],
            routes,
            automatic_https: { disable: true },
          },
          websecure: {
            listen: [`127.0.0.1:${ports.https}`],
            routes,
            tls_connection_policies: [{}],
            automatic_https: { disable: true },
          },
        },
      },
      tls: {
        certificates: { load_files: [{ certificate: files.certFile, key: files.keyFile }] },
        session_tickets: { disabled: true },
      },
    },
  };
  return JSON.stringify(config, null, 2) + "\n";
}

export interface PorticoStaticOptions {
  /** Path of the dynamic file the file provider reads. */
  dynamicFile: string;
  /** Watch the dynamic file (only the rebuild measurement needs it). */
  watch?: boolean;
  /**
   * `[server] workers = N` (issue 15: N data-plane workers with reusePort).
   * Left out when undefined, so builds without the option still start.
   */
  workers?: number | "auto";
}

/** Portico's static config: the `web` entrypoint, plus `websecure` once TLS is supported. */
export function porticoStatic(ports: BenchPorts, options: PorticoStaticOptions): string {
  const tls = PORTICO_TLS_SUPPORTED
    ? `
[entryPoints.websecure]
address = "127.0.0.1:${ports.https}"

[entryPoints.websecure.http.tls]
`
    : "";
  return `[entryPoints.web]
address = "127.0.0.1:${ports.http}"
${tls}
[providers.file]
filename = "${options.dynamicFile}"
watch = ${options.watch ? "true" : "false"}

[log]
level = "ERROR"
${
    options.workers === undefined
      ? ""
      : `\n[server]\nworkers = ${
        typeof options.workers === "number" ? options.workers : `"${options.workers}"`
      }\n`
  }`;
}

export interface PorticoDynamicOptions {
  backendPort: number;
  /** Number of Host routers: 1 means one router on `bench.local`; more means `r<i>.bench.local`. */
  routers: number;
  /** Middlewares on the (first) router, alternating headers and stripPrefix. */
  middlewares: number;
  /** Adds the certificate for the HTTPS entrypoint (when Portico supports TLS). */
  files?: Pick<BenchFiles, "certFile" | "keyFile">;
  /** "1b": the (first) router gets scenario 1b's headers + stripPrefix + rateLimit instead. */
  preset?: RoutePreset;
}

/** The Host that router `i` of `count` answers. */
export function routerHost(i: number, count: number): string {
  return count === 1 ? BENCH_HOST : `r${i}.${BENCH_HOST}`;
}

/** The Host scenario 5 sends: a router in the middle of the set. */
export function targetHost(count: number): string {
  return routerHost(Math.floor(count / 2), count);
}

/**
 * The request path for a chain of `count` middlewares: each stripPrefix
 * middleware removes one segment, so every one of them does real work.
 */
export function middlewarePath(count: number): string {
  let path = "";
  for (let i = 0; i < count; i++) if (i % 2 === 1) path += `/s${i}`;
  return path + "/";
}

/** Portico's dynamic config: N Host routers to one service, M middlewares on each. */
export function porticoDynamic(options: PorticoDynamicOptions): string {
  const lines: string[] = [];
  const names: string[] = [];
  for (let i = 0; i < options.middlewares; i++) names.push(`m${i}`);
  if (options.preset === "1b") names.push("b1b-headers", "b1b-strip", "b1b-ratelimit");
  const chain = names.length ? `middlewares = [${names.map((n) => `"${n}"`).join(", ")}]\n` : "";
  for (let i = 0; i < options.routers; i++) {
    lines.push(
      `[http.routers.r${i}]\nrule = "Host(\`${
        routerHost(i, options.routers)
      }\`)"\nservice = "app"\n${chain}`,
    );
  }
  for (let i = 0; i < options.middlewares; i++) {
    if (i % 2 === 0) {
      lines.push(`[http.middlewares.m${i}.headers.customRequestHeaders]\nX-Bench-${i} = "v${i}"\n`);
    } else {
      lines.push(`[http.middlewares.m${i}.stripPrefix]\nprefixes = ["/s${i}"]\n`);
    }
  }
  if (options.preset === "1b") {
    const b = SCENARIO_1B;
    lines.push(
      `[http.middlewares.b1b-headers.headers.customRequestHeaders]\n${b.requestHeader} = "1"\n`,
      `[http.middlewares.b1b-headers.headers.customResponseHeaders]\n${b.responseHeader} = "1"\n`,
      `[http.middlewares.b1b-strip.stripPrefix]\nprefixes = ["${b.prefix}"]\n`,
      `[http.middlewares.b1b-ratelimit.rateLimit]\naverage = ${b.average}\nburst = ${b.burst}\n`,
    );
  }
  lines.push(
    `[http.services.app.loadBalancer]\n[[http.services.app.loadBalancer.servers]]\nurl = "http://127.0.0.1:${options.backendPort}"\n`,
  );
  if (PORTICO_TLS_SUPPORTED && options.files) {
    // wrk and the probe connect to 127.0.0.1 without SNI, so the bench
    // certificate must also be the default one (as Traefik would need).
    lines.push(
      `[[tls.certificates]]\ncertFile = "${options.files.certFile}"\nkeyFile = "${options.files.keyFile}"\n`,
      `[tls.stores.default.defaultCertificate]\ncertFile = "${options.files.certFile}"\nkeyFile = "${options.files.keyFile}"\n`,
    );
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------- TCP (issue 19)

/** The proxies the TCP scenario runs: Caddy's Debian build has no TCP proxy (layer4 is a plugin). */
export const TCP_PROXIES = ["portico", "nginx", "haproxy"] as const;
export type TcpProxyName = typeof TCP_PROXIES[number];

/** Debian's nginx stream module (package libnginx-mod-stream), loaded with `load_module`. */
export const NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

/**
 * nginx `stream` in front of the echo backend (`ports.backend`) on
 * `ports.http`: one worker, default buffers, no http block.
 */
export function nginxStreamConf(
  ports: BenchPorts,
  files: BenchFiles,
  options: NginxOptions,
): string {
  return `load_module ${NGINX_STREAM_MODULE};
${nginxPreamble(files, "nginx_stream", options)}
stream {
  server {
    listen 127.0.0.1:${ports.http} backlog=4096;
    proxy_pass 127.0.0.1:${ports.backend};
    proxy_connect_timeout 5s;
    proxy_timeout 60s;
  }
}
`;
}

/** HAProxy `mode tcp`, one thread, in front of the echo backend (no splicing: its default). */
export function haproxyTcpConf(ports: BenchPorts): string {
  return `global
  nbthread 1
  # HAProxy raises its fd limit to about 2 × maxconn: 8000 fits the 20,000 of this machine.
  maxconn 8000

defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s

frontend tcp_in
  bind 127.0.0.1:${ports.http}
  default_backend echo

backend echo
  server s1 127.0.0.1:${ports.backend}
`;
}

/** Portico's static config for the TCP scenario: one entrypoint, `tcp`, on `ports.http`. */
export function porticoTcpStatic(ports: BenchPorts, options: { dynamicFile: string }): string {
  return `[entryPoints.tcp]
address = "127.0.0.1:${ports.http}"

[providers.file]
filename = "${options.dynamicFile}"
watch = false

[log]
level = "ERROR"
`;
}

/**
 * Portico's dynamic config for the TCP scenario: the entrypoint's only
 * router is `HostSNI(\`*\`)` to the echo backend, so Portico routes at accept.
 */
export function porticoTcpDynamic(options: { backendPort: number }): string {
  return `[tcp.routers.echo]
rule = "HostSNI(\`*\`)"
service = "echo"
entryPoints = ["tcp"]

[tcp.services.echo.loadBalancer]
[[tcp.services.echo.loadBalancer.servers]]
address = "127.0.0.1:${options.backendPort}"
`;
}
