/**
 * The answers middlewares make themselves, in Go's shapes.
 *
 * @module
 */

import { STATUS_TEXT } from "../../http_status.ts";

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
