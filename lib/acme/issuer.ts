/**
 * One ACME order with npm `acme-client`: account, order, challenge,
 * finalize, download. Challenge answers are published through a
 * {@linkcode ChallengeSink} before the CA is told to validate.
 *
 * @module
 */

import type AcmeClient from "acme-client";
import https from "node:https";
import tls from "node:tls";
import type { CertificateResolverConfig } from "../config/types.ts";
import type { ChallengeSink } from "./challenges.ts";
import type { AccountRecord, CertificateRecord } from "./storage.ts";

type AcmeConfig = CertificateResolverConfig["acme"];

/**
 * acme-client (with axios) costs about 37 MB of memory at import, so it is
 * loaded on first use: instances without a certificate resolver never pay.
 */
let acmeModule: Promise<typeof AcmeClient> | undefined;
function loadAcme(): Promise<typeof AcmeClient> {
  acmeModule ??= import("acme-client").then((m) => m.default);
  return acmeModule;
}

/** An order failure, with the CA's Retry-After when it sent one. */
export class OrderError extends Error {
  constructor(message: string, readonly retryAfterMs?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "OrderError";
  }
}

/**
 * Why `tlsChallenge` alone cannot work here: RFC 8737 requires the
 * challenge certificate's acmeIdentifier extension to be critical, and the
 * rustls inside Deno 2.9 (used by both `Deno.listenTls` and `node:tls`)
 * refuses to load a certificate with an unknown critical extension
 * (UnsupportedCriticalExtension). Measured, not assumed: see
 * tests/acme_single_node_test.ts.
 */
export const TLS_ALPN_UNSUPPORTED =
  "tlsChallenge (TLS-ALPN-01) is not supported on this TLS stack: Deno's rustls refuses the challenge certificate's critical acmeIdentifier extension; add httpChallenge to this resolver";

let trustedCas = "";

/**
 * Makes acme-client trust `caCertificates` and `LEGO_CA_CERTIFICATES`
 * (paths separated by `,` or the OS path separator) besides the system roots.
 */
export async function configureCaTrust(
  configs: AcmeConfig[],
  env: (k: string) => string | undefined,
): Promise<void> {
  const paths = [
    ...configs.flatMap((c) => c.caCertificates),
    ...(env("LEGO_CA_CERTIFICATES") ?? "").split(/[,:]/).filter(Boolean),
  ];
  const pems: string[] = [];
  for (const p of new Set(paths)) {
    try {
      pems.push(p.includes("-----BEGIN ") ? p : await Deno.readTextFile(p));
    } catch (err) {
      throw new Error(
        `certificatesResolvers caCertificates / LEGO_CA_CERTIFICATES: cannot read "${p}": ${
          (err as Error).message
        }`,
      );
    }
  }
  const key = pems.join("\n");
  if (!pems.length || key === trustedCas) return;
  trustedCas = key;
  const acme = await loadAcme();
  acme.axios.defaults.httpsAgent = new https.Agent({
    ca: [...tls.rootCertificates, ...pems],
    keepAlive: true,
  });
}

/** A new account or certificate key of `keyType`. */
export async function createKey(keyType: AcmeConfig["keyType"]): Promise<string> {
  const acme = await loadAcme();
  switch (keyType) {
    case "EC384":
      return (await acme.crypto.createPrivateEcdsaKey("P-384")).toString();
    case "RSA2048":
      return (await acme.crypto.createPrivateRsaKey(2048)).toString();
    case "RSA4096":
      return (await acme.crypto.createPrivateRsaKey(4096)).toString();
    default:
      return (await acme.crypto.createPrivateEcdsaKey("P-256")).toString();
  }
}

/** How many times one request is retried after a `badNonce` error. */
export const BAD_NONCE_RETRIES = 20;

/** Inputs of {@linkcode orderCertificate}. */
export interface OrderInput {
  config: AcmeConfig;
  account: AccountRecord;
  main: string;
  sans: string[];
  challenges: ChallengeSink;
  /** Called once the account is registered (to persist its URL). */
  onAccount?: (account: AccountRecord) => Promise<void>;
}

/** Places one order and returns the certificate; throws {@linkcode OrderError}. */
export async function orderCertificate(input: OrderInput): Promise<CertificateRecord> {
  const { config, main, sans } = input;
  const acme = await loadAcme();
  const client = new acme.Client({
    directoryUrl: config.caServer,
    accountKey: input.account.keyPem,
    accountUrl: input.account.url,
    backoffAttempts: 5,
  });
  // acme-client retries a rejected nonce (badNonce) only 5 times per request.
  // A CA may reject many (Pebble rejects 5 % by default, tests use 50 %): at
  // 50 % one order of ~10 requests then fails 15 % of the time. Each retry
  // is one cheap round trip, so allow more (0.5^21 per request).
  const http = (client as unknown as { http?: { maxBadNonceRetries?: number } }).http;
  if (http && typeof http.maxBadNonceRetries === "number") {
    http.maxBadNonceRetries = BAD_NONCE_RETRIES;
  }
  const names = [main, ...sans.filter((s) => s !== main)];
  const certKey = await createKey(config.keyType);
  const [, csr] = await acme.crypto.createCsr({ commonName: main, altNames: names }, certKey);
  if (!config.httpChallenge) {
    throw new OrderError(
      config.tlsChallenge
        ? TLS_ALPN_UNSUPPORTED
        : "resolver has neither httpChallenge nor tlsChallenge",
    );
  }
  const priority = ["http-01"];
  const published: (() => Promise<void>)[] = [];
  try {
    const certPem = await client.auto({
      csr,
      email: config.email,
      termsOfServiceAgreed: true,
      // acme-client's self-check resolves the name through system DNS on
      // port 80/443, which is wrong behind NAT and in tests; the CA checks anyway.
      skipChallengeVerification: true,
      challengePriority: priority,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (challenge.type === "http-01") {
          await input.challenges.putHttp(challenge.token, keyAuthorization);
          published.push(() => input.challenges.removeHttp(challenge.token));
        } else if ((challenge.type as string) === "tls-alpn-01") {
          const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
          const domain = authz.identifier.value;
          await input.challenges.putAlpn(domain, { cert: cert.toString(), key: key.toString() });
          published.push(() => input.challenges.removeAlpn(domain));
        }
      },
      challengeRemoveFn: () => Promise.resolve(),
    });
    if (!input.account.url) {
      await input.onAccount?.({ ...input.account, url: client.getAccountUrl() });
    }
    return { main, sans: names.slice(1), certPem, keyPem: certKey };
  } catch (err) {
    throw toOrderError(err, names);
  } finally {
    for (const remove of published) await remove().catch(() => {});
  }
}

/** The CA's problem, prefixed with the names ordered and suffixed with the ACME error type. */
function toOrderError(err: unknown, names: string[]): OrderError {
  const e = err as {
    message?: string;
    response?: {
      status?: number;
      headers?: Record<string, string>;
      data?: { detail?: string; type?: string };
    };
  };
  const retryAfter = e.response?.headers?.["retry-after"];
  const retryMs = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined;
  const detail = e.response?.data?.detail ?? e.message ?? String(err);
  const type = e.response?.data?.type?.replace("urn:ietf:params:acme:error:", "");
  return new OrderError(
    `order for ${names.join(", ")}: ${detail}${type && !detail.includes(type) ? ` (${type})` : ""}`,
    retryMs,
    { cause: err },
  );
}
