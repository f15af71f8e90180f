/**
 * The official OpenTelemetry OTLP exporters (protobuf over HTTP, or gRPC),
 * configured from Traefik's `otlp.http` / `otlp.grpc` keys. Loaded with a
 * dynamic import, so an instance without tracing or OTLP metrics never
 * loads them.
 *
 * @module
 */

import type { OtlpTlsConfig, OtlpTransportConfig } from "../config/types.ts";

/** The part of an OTLP exporter Portico drives. */
export interface OtlpExporter<T> {
  export(items: T, done: (result: { code: number; error?: Error }) => void): void;
  shutdown(): Promise<void>;
}

/** `ExportResultCode.SUCCESS` of @opentelemetry/core. */
export const EXPORT_SUCCESS = 0;

/** How long shutdown waits for the last exports. */
export const STOP_BUDGET_MS = 2000;


/** How long one export may take before it counts as failed. */
const EXPORT_TIMEOUT_MS = 5000;

type Signal = "traces" | "metrics";

function readTls(tls: OtlpTlsConfig | undefined, key: string) {
  if (!tls) return undefined;
  const read = (field: "ca" | "cert" | "key") => {
    const path = tls[field];
    if (path === undefined) return undefined;
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      throw new Error(`${key}.tls.${field}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  return {
    ca: read("ca"),
    cert: read("cert"),
    key: read("key"),
    insecureSkipVerify: tls.insecureSkipVerify,
  };
}

/** The OTLP/HTTP URL for a signal: Traefik keeps a path given in the endpoint, else the standard one. */
export function httpSignalUrl(endpoint: string, signal: Signal): string {
  const url = new URL(endpoint);
  if (url.pathname === "" || url.pathname === "/") {
    if (!endpoint.replace(/^[a-z]+:\/\/[^/]*/i, "").startsWith("/")) url.pathname = `/v1/${signal}`;
  }
  return url.toString();
}

/**
 * Creates the exporter for `signal` from the transport keys under `key`
 * (`tracing.otlp`, `metrics.otlp`); OTLP/HTTP to Traefik's default
 * endpoint when neither is set.
 */
export async function createOtlpExporter<T>(
  signal: Signal,
  transport: OtlpTransportConfig | undefined,
  key: string,
): Promise<OtlpExporter<T>> {
  if (transport?.grpc) {
    const grpc = transport.grpc;
    const tls = readTls(grpc.tls, `${key}.grpc`);
    const grpcJs = await import("@grpc/grpc-js");
    const metadata = new grpcJs.Metadata();
    for (const [name, value] of Object.entries(grpc.headers)) metadata.set(name, value);
    const credentials = grpc.insecure
      ? grpcJs.credentials.createInsecure()
      : grpcJs.credentials.createSsl(
        tls?.ca ? new TextEncoder().encode(tls.ca) as unknown as Buffer : null,
        tls?.key ? new TextEncoder().encode(tls.key) as unknown as Buffer : null,
        tls?.cert ? new TextEncoder().encode(tls.cert) as unknown as Buffer : null,
        tls?.insecureSkipVerify
          ? { checkServerIdentity: () => undefined, rejectUnauthorized: false }
          : undefined,
      );
    const options = {
      url: `${grpc.insecure ? "http" : "https"}://${grpc.endpoint}`,
      credentials,
      metadata,
      timeoutMillis: EXPORT_TIMEOUT_MS,
    };
    if (signal === "traces") {
      const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-grpc");
      return new OTLPTraceExporter(options) as unknown as OtlpExporter<T>;
    }
    const { OTLPMetricExporter } = await import("@opentelemetry/exporter-metrics-otlp-grpc");
    return new OTLPMetricExporter(options) as unknown as OtlpExporter<T>;
  }
  const http = transport?.http ?? { endpoint: "https://localhost:4318", headers: {} };
  const tls = readTls(http.tls, `${key}.http`);
  const options = {
    url: httpSignalUrl(http.endpoint, signal),
    headers: { ...http.headers },
    timeoutMillis: EXPORT_TIMEOUT_MS,
    httpAgentOptions: {
      keepAlive: true,
      ...(tls?.ca ? { ca: tls.ca } : {}),
      ...(tls?.cert ? { cert: tls.cert, key: tls.key } : {}),
      ...(tls?.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
    },
  };
  if (signal === "traces") {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
    return new OTLPTraceExporter(options) as unknown as OtlpExporter<T>;
  }
  const { OTLPMetricExporter } = await import("@opentelemetry/exporter-metrics-otlp-proto");
  return new OTLPMetricExporter(options) as unknown as OtlpExporter<T>;
}

/** An OpenTelemetry `Resource` with `service.name` and the configured attributes. */
export async function createResource(
  serviceName: string,
  attributes: Record<string, string>,
): Promise<unknown> {
  const { resourceFromAttributes } = await import("@opentelemetry/resources");
  return resourceFromAttributes({ "service.name": serviceName, ...attributes });
}
