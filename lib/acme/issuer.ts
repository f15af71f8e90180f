/**
 * One ACME order, step by step over npm `acme-client`'s signed requests:
 * account, new order (or the journalled one, resumed with POST-as-GET),
 * challenges published, the readiness gate, validation, finalize,
 * download. Every step the caller must persist or wait for is a hook
 * ({@linkcode OrderHooks}), so the manager can journal the order before any
 * challenge is published and hold validation until the cluster is ready.
 *
 * `client.auto()` is not used: it creates the order internally (no order URL
 * to journal before challenges go out), cannot resume an order, and turns
 * the CA's problem documents into bare strings, which the retry policy
 * needs to classify.
 *
 * @module
 */

import type AcmeClient from "acme-client";
import { createHash } from "node:crypto";
import https from "node:https";
import tls from "node:tls";
import type { CertificateResolverConfig } from "../config/types.ts";
import {
  type AcmeAuthorization,
  type AcmeChallenge,
  type AcmeOrder,
  AcmeResponseError,
  decodeAuthorization,
  decodeOrder,
  decodeProblem,
} from "./acme_wire.ts";
import {
  classifyProblem,
  type FailureKind,
  parseRetryAfter,
  type ProblemDocument,
} from "./retry_policy.ts";
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

/** What the retry policy and the journal need to know about a failed attempt. */
export interface OrderErrorDetails {
  kind: FailureKind;
  /** Authorizations that went invalid in this attempt. */
  failedAuthorizations?: number;
  retryAfterMs?: number;
  problem?: ProblemDocument;
  /**
   * The order can never complete (invalid, expired, unknown to the CA): the
   * journal entry is dropped. False: the order may still be live at the CA,
   * so the next attempt resumes it instead of opening a new one.
   */
  orderDead?: boolean;
}

/** An order failure, classified. */
export class OrderError extends Error {
  readonly kind: FailureKind;
  readonly failedAuthorizations: number;
  readonly retryAfterMs?: number;
  readonly problem?: ProblemDocument;
  readonly orderDead: boolean;
  constructor(message: string, details: OrderErrorDetails, options?: ErrorOptions) {
    super(message, options);
    this.name = "OrderError";
    this.kind = details.kind;
    this.failedAuthorizations = details.failedAuthorizations ?? 0;
    this.retryAfterMs = details.retryAfterMs;
    this.problem = details.problem;
    this.orderDead = details.orderDead ?? false;
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

/** One challenge answer to publish: an HTTP-01 token, or a DNS-01 TXT value. */
export interface PublishedChallenge {
  /** Which challenge; absent means `http-01`. */
  type?: "http-01" | "dns-01";
  /** The identifier it validates (`*.example.com` for a wildcard). */
  domain: string;
  token: string;
  keyAuthorization: string;
  /** dns-01: the TXT value, base64url(SHA-256(keyAuthorization)) (RFC 8555 §8.4). */
  txtValue?: string;
}

/**
 * The challenge types a resolver answers, in the order they are preferred
 * (lego's: HTTP-01 before DNS-01; a wildcard's authorization only offers
 * DNS-01, so a resolver with both uses DNS-01 for wildcards only).
 */
export function challengePreference(config: AcmeConfig): ("http-01" | "dns-01")[] {
  return [
    ...(config.httpChallenge ? ["http-01" as const] : []),
    ...(config.dnsChallenge ? ["dns-01" as const] : []),
  ];
}

/** Where an order in flight is made durable and gated. Each hook throwing aborts the attempt. */
export interface OrderHooks {
  /** Checked right before a new order is opened: false stops (a deposed manager opens none). */
  mayCreate?(): boolean;
  /** Right before the new-order request: persist the intent (journal state `creating`). */
  creating?(keyPem: string): Promise<void>;
  /** The CA created the order: persist it (the journal) before anything else happens. */
  created(order: { url: string; keyPem: string }): Promise<void>;
  /** Publish these answers (journal first, then the tokens) before the CA is told to validate. */
  publish(challenges: PublishedChallenge[]): Promise<void>;
  /** Resolves once the answers can be served where the CA may look (bounded wait). */
  ready(challenges: PublishedChallenge[]): Promise<void>;
  /** The order moved on (journal state). */
  progress(state: "validating" | "finalizing"): Promise<void>;
}

/** A journalled order to continue instead of opening a new one. */
export interface ResumeOrder {
  /** Undefined when the journal only recorded the intent: the order is looked up at the CA. */
  url?: string;
  /** The certificate key the order's CSR is (or will be) made from. */
  keyPem: string;
}

/** Inputs of {@linkcode orderCertificate}. */
export interface OrderInput {
  config: AcmeConfig;
  account: AccountRecord;
  main: string;
  sans: string[];
  hooks: OrderHooks;
  resume?: ResumeOrder;
  /** Called once the account is registered (to persist its URL). */
  onAccount?: (account: AccountRecord) => Promise<void>;
  /** Told when a journalled order was found and how it stood. */
  onResumed?: (status: string) => void;
  now?: () => Date;
  /** Poll interval for authorization and order status; default 250 ms. */
  pollMs?: number;
  /** Longest wait for the CA to settle one authorization or the order; default 60 s. */
  settleTimeoutMs?: number;
}

interface SignedHttp {
  signedRequest(
    url: string,
    payload: unknown,
    opts: { kid?: string | null },
  ): Promise<{ status: number; headers: Record<string, string>; data: unknown }>;
  getResourceUrl(resource: string): Promise<string>;
  maxBadNonceRetries?: number;
}

/** Places (or resumes) one order and returns the certificate; throws {@linkcode OrderError}. */
export async function orderCertificate(input: OrderInput): Promise<CertificateRecord> {
  const names = [input.main, ...input.sans.filter((s) => s !== input.main)];
  try {
    return await runOrder(input, names);
  } catch (err) {
    throw toOrderError(err, names);
  }
}

async function runOrder(input: OrderInput, names: string[]): Promise<CertificateRecord> {
  const { config, main } = input;
  const now = input.now ?? (() => new Date());
  const pollMs = input.pollMs ?? 250;
  const settleMs = input.settleTimeoutMs ?? 60_000;
  const preferred = challengePreference(config);
  if (preferred.length === 0) {
    throw new OrderError(
      config.tlsChallenge
        ? TLS_ALPN_UNSUPPORTED
        : "resolver has neither httpChallenge, dnsChallenge nor tlsChallenge",
      { kind: "rejected" },
    );
  }
  const acme = await loadAcme();
  const client = new acme.Client({
    directoryUrl: config.caServer,
    accountKey: input.account.keyPem,
    accountUrl: input.account.url,
    backoffAttempts: 5,
    // Only used when the account is created; the CA binds it to the external account.
    ...(config.eab ? { externalAccountBinding: { kid: config.eab.kid, hmacKey: config.eab.hmacEncoded } } : {}),
  });
  const http = (client as unknown as { api: { http: SignedHttp } }).api.http;
  // acme-client retries a rejected nonce (badNonce) only 5 times per request.
  // A CA may reject many (Pebble rejects 5 % by default, tests use 50 %): at
  // 50 % one order of ~10 requests then fails 15 % of the time. Each retry
  // is one cheap round trip, so allow more (0.5^21 per request).
  if (typeof http.maxBadNonceRetries === "number") http.maxBadNonceRetries = BAD_NONCE_RETRIES;

  if (!input.account.url) {
    await client.createAccount({
      termsOfServiceAgreed: true,
      ...(config.email ? { contact: [`mailto:${config.email}`] } : {}),
    });
    await input.onAccount?.({ ...input.account, url: client.getAccountUrl() });
  }
  const kid = client.getAccountUrl();
  const post = async (url: string, payload: unknown, ok: number[], what: string) => {
    const resp = await http.signedRequest(url, payload, { kid });
    if (!ok.includes(resp.status)) throw problemError(what, resp, now());
    return resp;
  };

  let order: AcmeOrder | undefined;
  let keyPem: string;
  if (input.resume?.url) {
    keyPem = input.resume.keyPem;
    const resp = await http.signedRequest(input.resume.url, null, { kid });
    if (resp.status === 404) {
      throw new OrderError(`journalled order ${input.resume.url} is unknown to the CA`, {
        kind: "network",
        orderDead: true,
      });
    }
    if (resp.status !== 200) throw problemError("resuming the journalled order", resp, now());
    order = decodeOrder(input.resume.url, resp.data);
    input.onResumed?.(order.status);
    if (!sameNames(order.identifiers, names)) {
      throw new OrderError(
        `journalled order ${order.url} is for ${order.identifiers.join(", ")}, not ${
          names.join(", ")
        }`,
        { kind: "network", orderDead: true },
      );
    }
  } else if (input.resume) {
    // The previous manager died between asking for the order and journalling
    // its URL: the order may exist. Find it rather than open a second one.
    keyPem = input.resume.keyPem;
    order = await findOpenOrder(post, kid, names);
    if (order) {
      input.onResumed?.(`${order.status} (found in the account's order list)`);
      await input.hooks.created({ url: order.url, keyPem });
    }
  } else keyPem = await createKey(config.keyType);
  if (!order) {
    if (input.hooks.mayCreate && !input.hooks.mayCreate()) {
      throw new OrderError("no longer the manager; no order opened", { kind: "network" });
    }
    await input.hooks.creating?.(keyPem);
    const resp = await post(
      await http.getResourceUrl("newOrder"),
      { identifiers: names.map((value) => ({ type: "dns", value })) },
      [201],
      "new order",
    );
    const location = resp.headers.location;
    if (!location) throw new AcmeResponseError("new order", "Location", "header is missing");
    order = decodeOrder(location, resp.data);
    await input.hooks.created({ url: order.url, keyPem });
  }
  if (order.status === "invalid") throw await deadOrder(order, post);

  if (order.status === "pending") {
    const authzs: AcmeAuthorization[] = [];
    for (const u of order.authorizations) {
      authzs.push(decodeAuthorization(u, (await post(u, null, [200], "authorization")).data));
    }
    const open = authzs.filter((a) => a.status === "pending");
    const failed = authzs.filter((a) => a.status !== "pending" && a.status !== "valid");
    if (failed.length) throw await deadOrder(order, post);
    const toPublish: PublishedChallenge[] = [];
    const toComplete: AcmeChallenge[] = [];
    const watched: { authz: AcmeAuthorization; challenge: AcmeChallenge }[] = [];
    for (const authz of open) {
      const domain = authz.wildcard ? `*.${authz.identifier}` : authz.identifier;
      const type = preferred.find((t) => authz.challenges.some((c) => c.type === t && c.token));
      const challenge = authz.challenges.find((c) => c.type === type);
      if (!type || !challenge?.token) {
        throw new OrderError(
          `no ${preferred.join(" or ")} challenge offered for ${domain}${
            authz.wildcard && !config.dnsChallenge ? " (a wildcard needs dnsChallenge)" : ""
          }`,
          { kind: "rejected", orderDead: true },
        );
      }
      // The key authorization is the token and the account key's thumbprint
      // (RFC 8555 §8.1); dns-01 publishes its SHA-256 instead.
      const keyAuthorization = await client.getChallengeKeyAuthorization(
        { type: "http-01", token: challenge.token } as unknown as Parameters<
          typeof client.getChallengeKeyAuthorization
        >[0],
      );
      // A resumed order's challenge may already be processing: the CA is
      // validating it now, so it is republished (the token may have been
      // cleaned) but not triggered again.
      toPublish.push({
        type,
        domain,
        token: challenge.token,
        keyAuthorization,
        ...(type === "dns-01" ? { txtValue: dnsTxtValue(keyAuthorization) } : {}),
      });
      if (challenge.status === "pending") toComplete.push(challenge);
      watched.push({ authz, challenge });
    }
    if (toPublish.length) {
      await input.hooks.publish(toPublish);
      if (toComplete.length) await input.hooks.ready(toPublish);
      await input.hooks.progress("validating");
      for (const c of toComplete) await post(c.url, {}, [200], `challenge for ${main}`);
    }
    let invalid = 0;
    let firstProblem: ProblemDocument | undefined;
    for (const { authz } of watched) {
      const settled = await settle(
        `authorization for ${authz.identifier}`,
        settleMs,
        pollMs,
        async () =>
          decodeAuthorization(
            authz.url,
            (await post(authz.url, null, [200], "authorization")).data,
          ),
        (a) => a.status !== "pending",
      );
      if (settled.status !== "valid") {
        invalid++;
        firstProblem ??= settled.challenges.find((c) => c.error)?.error ??
          { type: "unauthorized", detail: `authorization ${settled.status}` };
      }
    }
    if (invalid) {
      throw new OrderError(
        `${firstProblem?.detail ?? "validation failed"}`,
        {
          kind: classifyProblem(firstProblem?.type),
          problem: firstProblem,
          failedAuthorizations: invalid,
          orderDead: true,
        },
      );
    }
    order = decodeOrder(order.url, (await post(order.url, null, [200], "order")).data);
  }
  if (order.status === "ready") {
    await input.hooks.progress("finalizing");
    const [, csr] = await acme.crypto.createCsr({ commonName: main, altNames: names }, keyPem);
    const der = acme.crypto.getPemBodyAsB64u(csr);
    const resp = await post(order.finalize, { csr: der }, [200], "finalize");
    order = decodeOrder(order.url, resp.data);
  }
  if (order.status === "processing" || order.status === "ready") {
    const orderUrl = order.url;
    order = await settle(
      `order ${order.url}`,
      settleMs,
      pollMs,
      async () => decodeOrder(orderUrl, (await post(orderUrl, null, [200], "order")).data),
      (o) => o.status === "valid" || o.status === "invalid",
    );
  }
  if (order.status !== "valid" || !order.certificate) throw await deadOrder(order, post);
  const cert = await post(order.certificate, null, [200], "certificate download");
  const certPem = typeof cert.data === "string"
    ? cert.data
    : new TextDecoder().decode(cert.data as Uint8Array);
  if (!certPem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new AcmeResponseError("certificate download", "(body)", "is not a PEM certificate chain");
  }
  return { main, sans: names.slice(1), certPem, keyPem };
}

/** The TXT value of a dns-01 challenge: base64url(SHA-256(key authorization)), unpadded. */
export function dnsTxtValue(keyAuthorization: string): string {
  return createHash("sha256").update(keyAuthorization).digest("base64url");
}

function sameNames(a: string[], b: string[]): boolean {
  return [...a].sort().join(",") === [...b].sort().join(",");
}

/**
 * An order of this account for exactly `names` that can still complete,
 * from the account's `orders` list (RFC 8555 7.1.2.1; Pebble has it, Let's
 * Encrypt does not, but it returns the existing pending order for the same
 * names from new-order anyway). Undefined when there is none or no list.
 */
async function findOpenOrder(
  post: (url: string, p: unknown, ok: number[], what: string) => Promise<{ data: unknown }>,
  accountUrl: string,
  names: string[],
): Promise<AcmeOrder | undefined> {
  const account = (await post(accountUrl, null, [200], "account")).data as { orders?: unknown };
  if (typeof account?.orders !== "string") return undefined;
  const list = (await post(account.orders, null, [200], "account orders")).data as {
    orders?: unknown;
  };
  if (!Array.isArray(list?.orders)) return undefined;
  // Newest last in Pebble's list; look from the end, and only at a few.
  for (const u of list.orders.slice(-20).reverse()) {
    if (typeof u !== "string") continue;
    const o = decodeOrder(u, (await post(u, null, [200], "order")).data);
    if (o.status !== "invalid" && sameNames(o.identifiers, names)) return o;
  }
  return undefined;
}

/** Polls `get` until `done`, at most `timeoutMs`. */
async function settle<T>(
  what: string,
  timeoutMs: number,
  pollMs: number,
  get: () => Promise<T>,
  done: (v: T) => boolean,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (done(v)) return v;
    if (performance.now() > deadline) {
      throw new OrderError(`${what}: the CA did not settle within ${timeoutMs} ms`, {
        kind: "network",
      });
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The failure of an order the CA marked invalid, with the first authorization problem found. */
async function deadOrder(
  order: AcmeOrder,
  post: (url: string, p: unknown, ok: number[], what: string) => Promise<{ data: unknown }>,
): Promise<OrderError> {
  let problem = order.error;
  let invalid = 0;
  for (const u of order.authorizations) {
    try {
      const a = decodeAuthorization(u, (await post(u, null, [200], "authorization")).data);
      if (a.status === "invalid") {
        invalid++;
        problem ??= a.challenges.find((c) => c.error)?.error;
      }
    } catch { /* the order's own error is enough */ }
  }
  return new OrderError(problem?.detail ?? `order ${order.url} is ${order.status}`, {
    kind: classifyProblem(problem?.type),
    problem,
    failedAuthorizations: invalid,
    orderDead: true,
  });
}

/** An error for an unexpected HTTP status, carrying the CA's problem document and Retry-After. */
function problemError(
  what: string,
  resp: { status: number; headers: Record<string, string>; data: unknown },
  now: Date,
): OrderError {
  const problem = decodeProblem(resp.data) ?? { status: resp.status };
  const retryAfterMs = parseRetryAfter(resp.headers?.["retry-after"], now);
  return new OrderError(`${what}: ${problem.detail ?? `HTTP ${resp.status}`}`, {
    kind: classifyProblem(problem.type, resp.status),
    problem: { ...problem, status: problem.status ?? resp.status },
    retryAfterMs,
  });
}

/** Prefixes the names ordered and the ACME error type; anything unclassified is a network error. */
function toOrderError(err: unknown, names: string[]): OrderError {
  const prefix = `order for ${names.join(", ")}: `;
  if (err instanceof OrderError) {
    const type = err.problem?.type?.replace("urn:ietf:params:acme:error:", "");
    const message = `${prefix}${err.message}${
      type && !err.message.includes(type) ? ` (${type})` : ""
    }`;
    return new OrderError(message, err, { cause: err });
  }
  const message = (err as Error)?.message ?? String(err);
  // Malformed CA responses (AcmeResponseError), socket errors, timeouts, hook failures (a fenced-out journal write)…
  return new OrderError(prefix + message, { kind: "network" }, { cause: err });
}
