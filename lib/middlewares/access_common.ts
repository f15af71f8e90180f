/**
 * Small helpers shared by the access and traffic middlewares.
 *
 * @module
 */

import { STATUS_TEXT } from "../services/types.ts";

/** True for a status code a response can carry. */
export function validStatus(status: number): boolean {
  return Number.isInteger(status) && status >= 100 && status <= 599;
}

/** A plain-text response like Go's `http.Error(rw, http.StatusText(code), code)`. */
export function plainResponse(status: number, headers?: Record<string, string>): Response {
  return new Response(
    status === 204 || status === 304 || status < 200 ? null : (STATUS_TEXT[status] ?? "Error"),
    {
      status,
      headers: {
        "content-type": "text/plain; charset=utf-8",
        "x-content-type-options": "nosniff",
        ...headers,
      },
    },
  );
}

/** Compares two byte strings in time that depends only on their lengths. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i % (a.length || 1)] ?? 0) ^ (b[i % (b.length || 1)] ?? 0);
  return diff === 0;
}

const encoder = new TextEncoder();

/** Constant-time string equality over the UTF-8 bytes. */
export function safeEqualString(a: string, b: string): boolean {
  return timingSafeEqual(encoder.encode(a), encoder.encode(b));
}
