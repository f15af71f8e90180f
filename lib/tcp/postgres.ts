/**
 * Postgres STARTTLS: a Postgres client that wants TLS first sends an
 * 8-byte SSLRequest in clear and waits for one byte, `S`, before its
 * ClientHello. Traefik answers it itself so that TLS TCP routers (by SNI)
 * can take Postgres connections, and replays the exchange towards a
 * passthrough backend.
 *
 * @module
 */

/** Length 8, then the SSLRequest code 80877103 (1234 << 16 | 5679), big-endian. */
export const POSTGRES_SSL_REQUEST = new Uint8Array([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
/** "Yes, TLS": the server's one-byte answer. */
export const POSTGRES_YES = new Uint8Array([0x53]);

/** True when `buf[start, end)` is the SSLRequest or the start of it. */
export function startsLikeSslRequest(buf: Uint8Array, start: number, end: number): boolean {
  const n = Math.min(end - start, POSTGRES_SSL_REQUEST.length);
  if (n <= 0) return false;
  for (let i = 0; i < n; i++) if (buf[start + i] !== POSTGRES_SSL_REQUEST[i]) return false;
  return true;
}
