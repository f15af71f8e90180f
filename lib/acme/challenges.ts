/**
 * The live ACME challenge answers: HTTP-01 tokens (answered at
 * `/.well-known/acme-challenge/TOKEN` by an internal router on every
 * entrypoint) and TLS-ALPN-01 certificates (installed in the TLS store for
 * the domain being validated).
 *
 * In a cluster the manager also writes them to the KV store and every node
 * mirrors them from its watch; a token not yet mirrored is looked up in
 * the store directly (`fallback`), so validation can land on any node.
 *
 * @module
 */

import type { Service } from "../services/types.ts";
import type { CertificateStore, KeyPair } from "../tls/store.ts";

/** Path prefix of HTTP-01 challenges. */
export const HTTP01_PREFIX = "/.well-known/acme-challenge/";
/** Name of the internal service answering HTTP-01. */
export const CHALLENGE_SERVICE = "acme-http@internal";

/** Where an order publishes its challenge answers. */
export interface ChallengeSink {
  putHttp(token: string, keyAuthorization: string): Promise<void>;
  removeHttp(token: string): Promise<void>;
  putAlpn(domain: string, pair: KeyPair): Promise<void>;
  removeAlpn(domain: string): Promise<void>;
}

/** This node's copy of the challenge answers. */
export class ChallengeAnswers implements ChallengeSink {
  readonly http = new Map<string, string>();
  /** Looks a token up elsewhere (the KV store) when this node has not seen it yet. */
  fallback?: (token: string) => Promise<string | undefined>;

  constructor(private readonly tls: CertificateStore) {}

  putHttp(token: string, keyAuthorization: string): Promise<void> {
    this.http.set(token, keyAuthorization);
    return Promise.resolve();
  }
  removeHttp(token: string): Promise<void> {
    this.http.delete(token);
    return Promise.resolve();
  }
  putAlpn(domain: string, pair: KeyPair): Promise<void> {
    this.tls.setChallengeCertificate(domain, pair);
    return Promise.resolve();
  }
  removeAlpn(domain: string): Promise<void> {
    this.tls.setChallengeCertificate(domain, undefined);
    return Promise.resolve();
  }

  /** The key authorization for `token`, if any node published it. */
  async lookup(token: string): Promise<string | undefined> {
    return this.http.get(token) ?? await this.fallback?.(token).catch(() => undefined);
  }

  /** The internal service behind the HTTP-01 router. */
  service(): Service {
    return {
      name: CHALLENGE_SERVICE,
      serve: async (request) => {
        const path = request.pathAndQuery.split("?")[0];
        const token = path.startsWith(HTTP01_PREFIX) ? path.slice(HTTP01_PREFIX.length) : "";
        const answer = token && /^[A-Za-z0-9_-]+$/.test(token)
          ? await this.lookup(token)
          : undefined;
        return answer === undefined
          ? new Response("404 page not found\n", { status: 404 })
          : new Response(answer, { headers: { "content-type": "application/octet-stream" } });
      },
      available: () => true,
      serverStatus: () => ({}),
      start() {},
      stop() {},
    };
  }
}
