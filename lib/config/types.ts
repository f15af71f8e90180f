/**
 * Configuration types, with Traefik v3's option names. These are the shapes
 * after validation: defaults applied, durations in milliseconds, every field
 * checked. Raw TOML or KV trees become these only through the validators in
 * `static.ts` and `dynamic.ts`.
 *
 * @module
 */

/** The entrypoint Traefik creates for its API, dashboard and ping; user routers skip it by default. */
export const INTERNAL_ENTRYPOINT = "traefik";

// ---------------------------------------------------------------- static

export interface StaticConfig {
  entryPoints: Record<string, EntryPointConfig>;
  providers: ProvidersConfig;
  api?: ApiConfig;
  ping?: PingConfig;
  log: LogConfig;
  accessLog?: AccessLogConfig;
  metrics?: MetricsConfig;
  tracing?: TracingConfig;
  certificatesResolvers: Record<string, CertificateResolverConfig>;
  cluster?: ClusterConfig;
  lifeCycle: LifeCycleConfig;
  /** Portico extension: how this instance uses the machine's cores. */
  server: ServerConfig;
  /** The file this config came from, for error messages; undefined when built in code. */
  sourceFile?: string;
}

export interface ServerConfig {
  /**
   * Data-plane listeners: the main isolate plus `workers - 1` Deno Workers,
   * each listening on every plain entrypoint with SO_REUSEPORT. "auto" is
   * one per core. Default 1 (no workers).
   */
  workers: number | "auto";
}

export interface EntryPointConfig {
  /** As written, e.g. ":80" or "127.0.0.1:8000". */
  address: string;
  /** Parsed from `address`; hostname "" means every interface. */
  hostname: string;
  port: number;
  http: {
    redirections?: { entryPoint: { to: string; scheme: string; permanent: boolean; priority: number } };
    middlewares: string[];
    tls?: { certResolver?: string; options?: string; domains: TLSDomain[] };
    maxHeaderBytes?: number;
  };
  transport: {
    respondingTimeouts: { readTimeout: number; writeTimeout: number; idleTimeout: number };
    lifeCycle: { requestAcceptGraceTimeout: number; graceTimeOut: number };
    maxConnections?: number;
  };
  forwardedHeaders: { trustedIPs: string[]; insecure: boolean };
  /** Accept a PROXY protocol header (v1 or v2) from these peers, or from any with `insecure`. */
  proxyProtocol?: { trustedIPs: string[]; insecure: boolean };
}

export interface ProvidersConfig {
  file?: { filename?: string; directory?: string; watch: boolean };
  etcd?: KVProviderConfig;
  redis?: KVProviderConfig & { db: number };
  consul?: KVProviderConfig & { token?: string };
  /** How long to wait after a provider's change before applying it (Traefik's debounce), in ms. Default 2s. */
  providersThrottleDuration?: number;
}

export interface KVProviderConfig {
  endpoints: string[];
  rootKey: string;
  username?: string;
  password?: string;
  tls?: { ca?: string; cert?: string; key?: string; insecureSkipVerify: boolean };
}

export interface ApiConfig {
  insecure: boolean;
  dashboard: boolean;
  debug: boolean;
}

export interface PingConfig {
  entryPoint: string;
}

export interface LogConfig {
  level: "DEBUG" | "INFO" | "WARN" | "ERROR";
  format: "common" | "json";
  filePath?: string;
}

export interface AccessLogConfig {
  filePath?: string;
  format: "common" | "json";
}

export interface MetricsConfig {
  prometheus?: {
    buckets: number[];
    entryPoint: string;
    addEntryPointsLabels: boolean;
    addRoutersLabels: boolean;
    addServicesLabels: boolean;
  };
  otlp?: OtlpMetricsConfig;
}

/** Where OTLP data goes: `otlp.http` or `otlp.grpc` (Traefik's keys). */
export interface OtlpTransportConfig {
  http?: { endpoint: string; headers: Record<string, string>; tls?: OtlpTlsConfig };
  grpc?: { endpoint: string; insecure: boolean; headers: Record<string, string>; tls?: OtlpTlsConfig };
}

export interface OtlpTlsConfig {
  ca?: string;
  cert?: string;
  key?: string;
  insecureSkipVerify: boolean;
}

export interface TracingConfig {
  serviceName: string;
  /** 0 to 1; 1 and above sample every trace Portico starts. */
  sampleRate: number;
  resourceAttributes: Record<string, string>;
  /** Deprecated in Traefik; merged under `resourceAttributes`. */
  globalAttributes: Record<string, string>;
  capturedRequestHeaders: string[];
  capturedResponseHeaders: string[];
  safeQueryParams: string[];
  addInternals: boolean;
  /** Absent: OTLP/HTTP to the default endpoint, as in Traefik. */
  otlp?: OtlpTransportConfig;
}

export interface OtlpMetricsConfig extends OtlpTransportConfig {
  addEntryPointsLabels: boolean;
  addRoutersLabels: boolean;
  addServicesLabels: boolean;
  explicitBoundaries: number[];
  /** Milliseconds. */
  pushInterval: number;
  serviceName: string;
  resourceAttributes: Record<string, string>;
}

export interface CertificateResolverConfig {
  acme: {
    email?: string;
    caServer: string;
    storage: string;
    keyType: "EC256" | "EC384" | "RSA2048" | "RSA4096";
    caCertificates: string[];
    /** Milliseconds the manager waits for every cluster member to serve a challenge; default 30 000. */
    clusterReadyTimeout?: number;
    httpChallenge?: { entryPoint: string };
    tlsChallenge?: Record<string, never>;
    dnsChallenge?: DnsChallengeConfig;
    /** External Account Binding (ZeroSSL, Google Trust Services): the CA's key id and its base64url HMAC key. */
    eab?: { kid: string; hmacEncoded: string };
  };
}

/** `certificatesResolvers.NAME.acme.dnsChallenge` (lib/acme/dns/). */
export interface DnsChallengeConfig {
  /** lego's provider name: `rfc2136`, `cloudflare`, `route53`, `httpreq`, `exec`. */
  provider: string;
  /** Recursive resolvers for the propagation check and zone lookups (`ip` or `ip:port`). */
  resolvers: string[];
  /** The deprecated keys below are already folded in here. */
  propagation: {
    /** Milliseconds to wait before the first check. */
    delayBeforeChecks: number;
    disableChecks: boolean;
    requireAllRNS: boolean;
    disableANSChecks: boolean;
  };
  /** Portico extension: a `NAME=value` file read before the environment (traefik#5472). */
  credentialsFile?: string;
  /** Deprecated (milliseconds): set propagation.delayBeforeChecks. Kept for the warning. */
  delayBeforeCheck?: number;
  /** Deprecated: set propagation.disableChecks. Kept for the warning. */
  disablePropagationCheck?: boolean;
}

export interface ClusterConfig {
  nodeId: string;
  address: string;
  peers: string[];
  secret?: string;
  secretFile?: string;
  dataDir: string;
  heartbeatInterval: number;
  electionTimeout: number;
  encryptionKey?: string;
  /** Previous encryption keys (base64): they open old values, which the manager re-seals. */
  previousEncryptionKeys?: string[];
}

export interface LifeCycleConfig {
  graceTimeOut: number;
  requestAcceptGraceTimeout: number;
}

// ---------------------------------------------------------------- dynamic

/** One provider's dynamic configuration. Names are bare (no `@provider`). */
export interface DynamicConfig {
  http: {
    routers: Record<string, RouterConfig>;
    services: Record<string, ServiceConfig>;
    middlewares: Record<string, MiddlewareConfig>;
    serversTransports: Record<string, ServersTransportConfig>;
  };
  tls: {
    certificates: TLSCertificateConfig[];
    options: Record<string, TLSOptionsConfig>;
    stores: Record<string, {
      defaultCertificate?: { certFile: string; keyFile: string };
      /** The default certificate obtained from an ACME resolver for `domain`. */
      defaultGeneratedCert?: { resolver: string; domain: { main: string; sans: string[] } };
    }>;
  };
  /** Always present once validated; optional so that literal configs may leave it out. */
  tcp?: TcpConfig;
}

/** Traefik's `tcp` section: routers on the ClientHello and client address, backends by address. */
export interface TcpConfig {
  routers: Record<string, TcpRouterConfig>;
  services: Record<string, TcpServiceConfig>;
  middlewares: Record<string, TcpMiddlewareConfig>;
  serversTransports: Record<string, TcpServersTransportConfig>;
}

export interface TcpRouterConfig {
  rule: string;
  service: string;
  /** Empty means every entrypoint. */
  entryPoints: string[];
  middlewares: string[];
  /** 0 means "use the rule's length". */
  priority: number;
  ruleSyntax?: "v3";
  /** Present: the router takes TLS connections (terminated here, or passed through). */
  tls?: { passthrough: boolean; certResolver?: string; options?: string; domains: TLSDomain[] };
}

export interface TcpProxyProtocolConfig {
  version: 1 | 2;
}

export type TcpServiceConfig =
  | {
    loadBalancer: {
      servers: { address: string; tls: boolean; weight: number }[];
      serversTransport?: string;
      proxyProtocol?: TcpProxyProtocolConfig;
      /** Deprecated (ms; below 0: wait forever); the servers transport's terminationDelay wins. */
      terminationDelay?: number;
    };
  }
  | { weighted: { services: { name: string; weight: number }[] } };

export type TcpMiddlewareConfig =
  | { ipAllowList: { sourceRange: string[] } }
  | { ipWhiteList: { sourceRange: string[] } }
  | { inFlightConn: { amount: number } };

export interface TcpServersTransportConfig {
  dialTimeout: number;
  dialKeepAlive: number;
  /** How long a half-closed connection may stay open for the other direction; below 0 means forever. */
  terminationDelay: number;
  proxyProtocol?: TcpProxyProtocolConfig;
  tls?: {
    serverName?: string;
    insecureSkipVerify: boolean;
    rootCAs: string[];
    certificates: { certFile: string; keyFile: string }[];
  };
}

export interface RouterConfig {
  rule: string;
  service: string;
  /** Empty means every entrypoint. */
  entryPoints: string[];
  middlewares: string[];
  /** 0 means "use the rule's length". */
  priority: number;
  tls?: { certResolver?: string; options?: string; domains: TLSDomain[] };
}

export interface TLSDomain {
  main: string;
  sans: string[];
}

export type ServiceConfig =
  | { loadBalancer: LoadBalancerConfig }
  | { weighted: WeightedConfig }
  | { mirroring: MirroringConfig }
  | { failover: FailoverConfig };

export interface LoadBalancerConfig {
  servers: { url: string; weight: number }[];
  passHostHeader: boolean;
  healthCheck?: HealthCheckConfig;
  sticky?: { cookie: StickyCookieConfig };
  responseForwarding?: { flushInterval: number };
  serversTransport?: string;
  /** A policy name from `services/balancing/`: "wrr" (the default), "p2c", "hrw" or "leasttime". */
  strategy: "wrr" | "p2c" | "hrw" | "leasttime";
}

export interface ServersTransportConfig {
  /** SNI and the name the upstream certificate is verified against, instead of the URL's host. */
  serverName?: string;
  /** Client certificate files presented to the upstream (at most one). */
  certificates: { certFile: string; keyFile: string }[];
  insecureSkipVerify: boolean;
  rootCAs: string[];
  /** Idle keep-alive connections kept per upstream host: 0 means Go's default (2), below 0 none. */
  maxIdleConnsPerHost: number;
  forwardingTimeouts: { dialTimeout: number; responseHeaderTimeout: number; idleConnTimeout: number };
}

export interface HealthCheckConfig {
  path: string;
  interval: number;
  timeout: number;
  scheme?: string;
  hostname?: string;
  port?: number;
  /** Expected status; 0 means any 2xx or 3xx. */
  status: number;
  headers: Record<string, string>;
}

export interface StickyCookieConfig {
  name?: string;
  /** The cookie's Domain attribute, without a leading dot. */
  domain?: string;
  secure: boolean;
  httpOnly: boolean;
  sameSite?: string;
  maxAge?: number;
  path?: string;
}

export interface WeightedConfig {
  services: { name: string; weight: number }[];
  sticky?: { cookie: StickyCookieConfig };
}

export interface MirroringConfig {
  service: string;
  mirrors: { name: string; percent: number }[];
  maxBodySize: number;
  /** false: mirrors get the headers only and the main service the body as it streams in. */
  mirrorBody: boolean;
}

export interface FailoverConfig {
  service: string;
  fallback: string;
  /** Statuses (Traefik's "500-599" blocks) that send the request on to the fallback; -1 body limit means none. */
  errors?: { status: string[]; maxRequestBodyBytes: number };
}

/**
 * One middleware: exactly one key, the Traefik type name in camelCase
 * (`stripPrefix`, `headers`, …), mapped to its options. Each middleware's
 * factory validates its own options.
 */
export type MiddlewareConfig = Record<string, Record<string, unknown>>;

export interface TLSCertificateConfig {
  certFile: string;
  keyFile: string;
  stores: string[];
}

export interface TLSOptionsConfig {
  minVersion?: string;
  maxVersion?: string;
  cipherSuites: string[];
  sniStrict: boolean;
  alpnProtocols: string[];
  /** Without `clientAuthType`, `caFiles` mean RequireAndVerifyClientCert (Traefik's rule). */
  clientAuth?: { caFiles: string[]; clientAuthType?: string };
}
