/**
 * TLS settings shared by the networked KV backends.
 *
 * @module
 */

import { KVError } from "./types.ts";

/**
 * Client TLS for a KV store. Each field is either PEM text or a path to a PEM
 * file (Traefik's `[providers.etcd.tls]` takes paths).
 */
export interface KVTLSOptions {
  /** CA bundle to trust instead of the system roots. */
  ca?: string;
  /** Client certificate, for mutual TLS. */
  cert?: string;
  /** Client private key, for mutual TLS. */
  key?: string;
}

/** Returns PEM text: `value` itself when it is PEM, else the contents of the file it names. */
export function loadPem(backend: string, field: string, value: string): string {
  if (value.includes("-----BEGIN ")) return value;
  try {
    return Deno.readTextFileSync(value);
  } catch (error) {
    throw new KVError(
      `${backend}: ${field} must be PEM text or a readable PEM file, cannot read ${
        JSON.stringify(value)
      }: ${(error as Error).message}`,
      undefined,
      { cause: error },
    );
  }
}
