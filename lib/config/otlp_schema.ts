/**
 * Schemas of the OpenTelemetry parts of the static configuration: `tracing`
 * and `metrics.otlp`, with Traefik v3.7's keys and defaults.
 *
 * @module
 */

import { clientTlsSchema } from "./client_tls_schema.ts";
import { bool, duration, list, num, obj, record, type Schema, str, stringList } from "./schema.ts";


function checkHttpEndpoint(text: string): string | undefined {
  try {
    const url = new URL(text);
    if (url.protocol === "http:" || url.protocol === "https:") return undefined;
  } catch { /* reported below */ }
  return `expected a URL like "https://collector:4318" or "http://127.0.0.1:4318/v1/traces", found "${text}"`;
}

function checkGrpcEndpoint(text: string): string | undefined {
  const at = text.lastIndexOf(":");
  const port = Number(text.slice(at + 1));
  if (at > 0 && Number.isInteger(port) && port > 0 && port < 65536) return undefined;
  return `expected "host:port" like "collector:4317", found "${text}"`;
}

/** `otlp.http` and `otlp.grpc` as Traefik has them for traces and metrics. */
function otlpTransportSchemas(): Record<string, Schema> {
  return {
    http: obj({
      endpoint: str({ default: "https://localhost:4318", validate: checkHttpEndpoint }),
      headers: record(str({ allowEmpty: true }), { default: {} }),
      tls: clientTlsSchema,
    }, { allowBoolean: true }),
    grpc: obj({
      endpoint: str({ default: "localhost:4317", validate: checkGrpcEndpoint }),
      insecure: bool({ default: false }),
      headers: record(str({ allowEmpty: true }), { default: {} }),
      tls: clientTlsSchema,
    }, { allowBoolean: true }),
  };
}

/** `[tracing]`. */
export const tracingSchema: Schema = obj({
  serviceName: str({ default: "traefik" }),
  // Traefik takes any rate and samples everything from 1.0 up.
  sampleRate: num({ min: 0, default: 1 }),
  resourceAttributes: record(str({ allowEmpty: true }), { default: {} }),
  globalAttributes: record(str({ allowEmpty: true }), { default: {} }),
  capturedRequestHeaders: stringList(),
  capturedResponseHeaders: stringList(),
  safeQueryParams: stringList(),
  addInternals: bool({ default: false }),
  otlp: obj(otlpTransportSchemas(), {
    allowBoolean: true,
    atMostOne: [["http", "grpc"]],
  }),
}, { allowBoolean: true });

/** `[metrics.otlp]`. */
export const otlpMetricsSchema: Schema = obj({
  ...otlpTransportSchemas(),
  addEntryPointsLabels: bool({ default: true }),
  addRoutersLabels: bool({ default: false }),
  addServicesLabels: bool({ default: true }),
  explicitBoundaries: list(num({ min: 0 }), {
    default: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10],
    minItems: 1,
    check: (bounds: number[], ctx) => {
      for (let i = 1; i < bounds.length; i++) {
        if (bounds[i] <= bounds[i - 1]) {
          ctx.report(
            `expected boundaries in increasing order, found ${bounds[i]} after ${bounds[i - 1]}`,
            i,
          );
        }
      }
    },
  }),
  pushInterval: duration({ default: "10s", min: 1 }),
  serviceName: str({ default: "traefik" }),
  resourceAttributes: record(str({ allowEmpty: true }), { default: {} }),
}, { allowBoolean: true, atMostOne: [["http", "grpc"]] });
