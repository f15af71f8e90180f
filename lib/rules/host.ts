/**
 * @module
 * Host canonicalisation and Traefik's `Host` matching (case-insensitive, port ignored,
 * one trailing dot tolerated on either side, `*.` wildcards of exactly one label, `*`
 * matching any host).
 */

/**
 * The host a rule sees: port stripped, brackets removed from an IPv6 literal, trimmed
 * and lowercased (Traefik's request decorator `parseHost` + `CanonicalDomain`).
 *
 * @example
 * ```ts
 * canonicalHost("EXAMPLE.com:8080"); // "example.com"
 * canonicalHost("[::1]:443");        // "::1"
 * ```
 */
export function canonicalHost(authority: string): string {
  let h = authority;
  if (h.includes(":")) {
    if (h[0] === "[") {
      const close = h.indexOf("]");
      const after = close < 0 ? "" : h.slice(close + 1);
      if (close > 0 && (after === "" || (after[0] === ":" && !after.includes(":", 1)))) {
        h = h.slice(1, close);
      }
    } else {
      const colon = h.indexOf(":");
      // Several colons without brackets: Go's SplitHostPort fails and the value is kept.
      if (h.indexOf(":", colon + 1) < 0) h = h.slice(0, colon);
    }
  }
  return h.trim().toLowerCase();
}

/** Traefik's `DomainMatchHostExpression` for an already-lowercased expression. */
function domainMatches(domain: string, expr: string): boolean {
  if (expr.charCodeAt(0) === 42 /* * */) {
    if (expr === "*") return true;
    const dot = domain.indexOf(".");
    const masked = dot < 0 ? "*" : "*" + domain.slice(dot);
    return masked === expr;
  }
  return domain === expr;
}

/**
 * Builds the predicate for ``Host(`expr`)``; `expr` must be ASCII. The request host must
 * already be canonical (see {@link canonicalHost}).
 */
export function hostMatcher(expr: string): (reqHost: string) => boolean {
  const host = expr.toLowerCase();
  const hostNoDot = host.endsWith(".") ? host.slice(0, -1) : undefined;
  return (reqHost: string) => {
    if (reqHost === "") return false;
    if (domainMatches(reqHost, host)) return true;
    if (hostNoDot !== undefined && domainMatches(reqHost, hostNoDot)) return true;
    return reqHost.endsWith(".") && domainMatches(reqHost.slice(0, -1), host);
  };
}

/**
 * The key the router should index hosts by: the canonical host minus one trailing dot.
 * {@link exactHosts} returns keys in this form.
 */
export function hostIndexKey(canonical: string): string {
  return canonical.endsWith(".") ? canonical.slice(0, -1) : canonical;
}
