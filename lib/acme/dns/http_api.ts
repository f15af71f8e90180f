/**
 * The HTTP plumbing the API providers share: a bounded request, and the
 * body read as text for error messages (cut short, secrets redacted).
 *
 * @module
 */

import { DnsProviderError, redact } from "./types.ts";

/** `fetch`, passed in so tests can count or alter calls. */
export type Fetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** One request with a timeout; a transport failure becomes a {@linkcode DnsProviderError}. */
export async function request(
  provider: string,
  what: string,
  fetchFn: Fetch,
  url: string | URL,
  init: RequestInit,
  timeoutMs: number,
  secrets: string[],
): Promise<{ status: number; text: string; headers: Headers }> {
  try {
    const res = await fetchFn(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, text: await res.text(), headers: res.headers };
  } catch (err) {
    const e = err as Error;
    const reason = e?.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : e?.message;
    throw new DnsProviderError(provider, redact(`${what}: ${reason}`, secrets));
  }
}

/** At most `max` characters of a body, on one line, for an error message. */
export function excerpt(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** The parents of `fqdn` that may be its zone, longest first, down to two labels. */
export function zoneCandidates(fqdn: string): string[] {
  const labels = fqdn.replace(/\.$/, "").split(".");
  const out: string[] = [];
  for (let i = 1; i <= labels.length - 2; i++) out.push(labels.slice(i).join("."));
  return out;
}
