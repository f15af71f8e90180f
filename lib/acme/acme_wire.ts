/**
 * Strict decoding of the CA's JSON (RFC 8555 orders, authorizations and
 * challenges, RFC 7807 problems). The order flow acts on status fields and
 * URLs, so a malformed response is an {@linkcode AcmeResponseError} naming
 * the object and field, never a `TypeError` deep in the flow.
 *
 * @module
 */

import type { ProblemDocument } from "./retry_policy.ts";

/** The CA sent something that is not a valid ACME object. */
export class AcmeResponseError extends Error {
  constructor(readonly where: string, readonly field: string, detail: string) {
    super(`ACME response (${where}): field "${field}" ${detail}`);
    this.name = "AcmeResponseError";
  }
}

export type OrderStatus = "pending" | "ready" | "processing" | "valid" | "invalid";
export type AuthzStatus =
  | "pending"
  | "valid"
  | "invalid"
  | "deactivated"
  | "expired"
  | "revoked";
export type ChallengeStatus = "pending" | "processing" | "valid" | "invalid";

export interface AcmeOrder {
  url: string;
  status: OrderStatus;
  identifiers: string[];
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: ProblemDocument;
}

export interface AcmeChallenge {
  type: string;
  url: string;
  status: ChallengeStatus;
  token?: string;
  error?: ProblemDocument;
}

export interface AcmeAuthorization {
  url: string;
  /** The name without `*.`; see `wildcard` (RFC 8555 §7.1.4). */
  identifier: string;
  status: AuthzStatus;
  challenges: AcmeChallenge[];
  /** True when the order asked for `*.identifier`. */
  wildcard?: boolean;
}

type Obj = Record<string, unknown>;

function object(where: string, field: string, v: unknown): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new AcmeResponseError(where, field, `must be an object, got ${describe(v)}`);
  }
  return v as Obj;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? v.slice(0, 60) + "…" : v);
  return typeof v === "object" ? "an object" : String(v);
}

function string(where: string, o: Obj, field: string): string {
  const v = o[field];
  if (typeof v !== "string" || v === "") {
    throw new AcmeResponseError(where, field, `must be a non-empty string, got ${describe(v)}`);
  }
  return v;
}

function url(where: string, o: Obj, field: string): string {
  const v = string(where, o, field);
  if (!/^https?:\/\//.test(v)) {
    throw new AcmeResponseError(where, field, `must be an http(s) URL, got ${describe(v)}`);
  }
  return v;
}

function oneOf<T extends string>(where: string, o: Obj, field: string, values: readonly T[]): T {
  const v = o[field];
  if (typeof v !== "string" || !values.includes(v as T)) {
    throw new AcmeResponseError(
      where,
      field,
      `must be one of ${values.join(", ")}, got ${describe(v)}`,
    );
  }
  return v as T;
}

/** A problem document, or undefined when `v` is not one (problems are best-effort). */
export function decodeProblem(v: unknown): ProblemDocument | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Obj;
  const p: ProblemDocument = {};
  if (typeof o.type === "string") p.type = o.type;
  if (typeof o.detail === "string") p.detail = o.detail.slice(0, 2000);
  if (typeof o.status === "number") p.status = o.status;
  if (Array.isArray(o.subproblems)) {
    p.subproblems = o.subproblems.slice(0, 20).map((s) => {
      const so = (typeof s === "object" && s !== null ? s : {}) as Obj;
      const id = typeof so.identifier === "object" && so.identifier !== null
        ? (so.identifier as Obj).value
        : undefined;
      return {
        ...(typeof so.type === "string" ? { type: so.type } : {}),
        ...(typeof so.detail === "string" ? { detail: so.detail.slice(0, 500) } : {}),
        ...(typeof id === "string" ? { identifier: id } : {}),
      };
    });
  }
  return p.type || p.detail ? p : undefined;
}

/** Decodes an order object; `orderUrl` is its URL (Location header or the journal). */
export function decodeOrder(orderUrl: string, v: unknown): AcmeOrder {
  const where = `order ${orderUrl}`;
  const o = object(where, "(body)", v);
  const status = oneOf(
    where,
    o,
    "status",
    [
      "pending",
      "ready",
      "processing",
      "valid",
      "invalid",
    ] as const,
  );
  if (!Array.isArray(o.identifiers)) {
    throw new AcmeResponseError(
      where,
      "identifiers",
      `must be an array, got ${describe(o.identifiers)}`,
    );
  }
  const identifiers = o.identifiers.map((id, i) => {
    const value = object(where, `identifiers[${i}]`, id).value;
    if (typeof value !== "string" || !value) {
      throw new AcmeResponseError(
        where,
        `identifiers[${i}].value`,
        `must be a name, got ${describe(value)}`,
      );
    }
    return value;
  });
  if (!Array.isArray(o.authorizations) || o.authorizations.some((a) => typeof a !== "string")) {
    throw new AcmeResponseError(
      where,
      "authorizations",
      `must be an array of URLs, got ${describe(o.authorizations)}`,
    );
  }
  return {
    url: orderUrl,
    status,
    identifiers,
    authorizations: o.authorizations as string[],
    finalize: url(where, o, "finalize"),
    ...(status === "valid" ? { certificate: url(where, o, "certificate") } : {}),
    ...(decodeProblem(o.error) ? { error: decodeProblem(o.error) } : {}),
  };
}

/** Decodes an authorization object fetched from `authzUrl`. */
export function decodeAuthorization(authzUrl: string, v: unknown): AcmeAuthorization {
  const where = `authorization ${authzUrl}`;
  const o = object(where, "(body)", v);
  const identifier = string(where, object(where, "identifier", o.identifier), "value");
  const status = oneOf(
    where,
    o,
    "status",
    [
      "pending",
      "valid",
      "invalid",
      "deactivated",
      "expired",
      "revoked",
    ] as const,
  );
  if (!Array.isArray(o.challenges)) {
    throw new AcmeResponseError(
      where,
      "challenges",
      `must be an array, got ${describe(o.challenges)}`,
    );
  }
  const challenges = o.challenges.map((c, i) => decodeChallenge(`${where} challenges[${i}]`, c));
  return {
    url: authzUrl,
    identifier,
    status,
    challenges,
    ...(o.wildcard === true ? { wildcard: true } : {}),
  };
}

/** Decodes a challenge object. */
export function decodeChallenge(where: string, v: unknown): AcmeChallenge {
  const o = object(where, "(body)", v);
  const type = string(where, o, "type");
  const token = o.token === undefined ? undefined : string(where, o, "token");
  if (token !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(token)) {
    throw new AcmeResponseError(where, "token", "must be base64url characters");
  }
  return {
    type,
    url: url(where, o, "url"),
    status: oneOf(where, o, "status", ["pending", "processing", "valid", "invalid"] as const),
    ...(token !== undefined ? { token } : {}),
    ...(decodeProblem(o.error) ? { error: decodeProblem(o.error) } : {}),
  };
}
