/**
 * TSIG (RFC 8945): signs a DNS message with a shared secret and checks the
 * server's signed reply. BIND's `allow-update { key "k."; }` accepts an
 * update only when its TSIG verifies, and answers a wrong secret with
 * NOTAUTH + BADSIG, an unknown key with NOTAUTH + BADKEY.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { constantTimeEqual } from "../../constant_time.ts";
import { decodeHeader, findTsig, RR_CLASS, RR_TYPE, WireWriter } from "./wire.ts";

/** TSIG algorithm names (RFC 8945 §6) and the hash behind each. */
const ALGORITHMS: Record<string, string> = {
  "hmac-md5.sig-alg.reg.int.": "md5",
  "hmac-sha1.": "sha1",
  "hmac-sha224.": "sha224",
  "hmac-sha256.": "sha256",
  "hmac-sha384.": "sha384",
  "hmac-sha512.": "sha512",
};

/** The algorithm names accepted, as a user writes them. */
export const TSIG_ALGORITHMS = Object.keys(ALGORITHMS).map((a) =>
  a.startsWith("hmac-md5") ? "hmac-md5" : a.slice(0, -1)
);

/**
 * The canonical TSIG algorithm name for what a user wrote (`hmac-sha256`,
 * `HMAC-SHA256.`, `hmac-md5`), or undefined when it is not supported.
 */
export function canonicalAlgorithm(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  const dotted = t.endsWith(".") ? t : `${t}.`;
  if (dotted === "hmac-md5.") return "hmac-md5.sig-alg.reg.int.";
  return ALGORITHMS[dotted] ? dotted : undefined;
}

/** A TSIG key as the server knows it. */
export interface TsigKey {
  /** Key name, absolute (`k.`). */
  name: string;
  /** Canonical algorithm name (see {@linkcode canonicalAlgorithm}). */
  algorithm: string;
  secret: Uint8Array;
}

/** Default fudge: seconds of clock difference the server tolerates (RFC 8945 §10). */
export const DEFAULT_FUDGE = 300;

function hmac(algorithm: string, secret: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac(ALGORITHMS[algorithm], secret).update(data).digest());
}

/** The TSIG variables that are digested after the message (RFC 8945 §4.3.3). */
function variables(
  keyName: string,
  algorithm: string,
  timeSigned: number,
  fudge: number,
  error: number,
  other: Uint8Array,
): Uint8Array {
  return new WireWriter()
    .name(absolute(keyName), true)
    .u16(RR_CLASS.ANY)
    .u32(0)
    .name(absolute(algorithm), true)
    .u48(timeSigned)
    .u16(fudge)
    .u16(error)
    .u16(other.length)
    .bytes(other)
    .done();
}

function absolute(name: string): string {
  return name.endsWith(".") ? name : `${name}.`;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * `message` with a TSIG record appended (ARCOUNT raised by one), and the
 * request MAC, which the reply's MAC covers.
 */
export function signMessage(
  message: Uint8Array,
  key: TsigKey,
  timeSigned: number,
  fudge = DEFAULT_FUDGE,
): { message: Uint8Array; mac: Uint8Array } {
  const none = new Uint8Array(0);
  const mac = hmac(
    key.algorithm,
    key.secret,
    concat(message, variables(key.name, key.algorithm, timeSigned, fudge, 0, none)),
  );
  const id = decodeHeader(message).id;
  const rdata = new WireWriter()
    .name(key.algorithm, true)
    .u48(timeSigned)
    .u16(fudge)
    .u16(mac.length)
    .bytes(mac)
    .u16(id)
    .u16(0)
    .u16(0)
    .done();
  const signed = new WireWriter()
    .bytes(message)
    .rr({ name: absolute(key.name), type: RR_TYPE.TSIG, class: RR_CLASS.ANY, ttl: 0, rdata })
    .done();
  const arcount = decodeHeader(message).arcount + 1;
  signed[10] = arcount >> 8;
  signed[11] = arcount & 0xff;
  return { message: signed, mac };
}

/** What a reply's TSIG says. */
export type ReplyCheck =
  | { ok: true }
  /** The server reported a TSIG error (BADSIG, BADKEY, BADTIME…): its code. */
  | { ok: false; tsigError: number; reason: string }
  /** The reply is unsigned or its MAC does not verify. */
  | { ok: false; tsigError?: undefined; reason: string };

/**
 * Checks the TSIG of `reply` to a request signed with `requestMac`
 * (RFC 8945 §5.3): its MAC covers the request MAC, the reply without the
 * TSIG record (original ID, ARCOUNT one lower) and the TSIG variables.
 */
export function verifyReply(
  reply: Uint8Array,
  key: TsigKey,
  requestMac: Uint8Array,
  nowSeconds: number,
): ReplyCheck {
  const tsig = findTsig(reply);
  if (!tsig) return { ok: false, reason: "the reply carries no TSIG record" };
  if (tsig.error !== 0) return { ok: false, tsigError: tsig.error, reason: "TSIG error" };
  if (tsig.algorithm.toLowerCase() !== key.algorithm) {
    return {
      ok: false,
      reason: `the reply is signed with ${tsig.algorithm}, not ${key.algorithm}`,
    };
  }
  const stripped = reply.slice(0, tsig.start);
  const arcount = decodeHeader(reply).arcount - 1;
  stripped[10] = arcount >> 8;
  stripped[11] = arcount & 0xff;
  stripped[0] = tsig.originalId >> 8;
  stripped[1] = tsig.originalId & 0xff;
  const prefix = new WireWriter().u16(requestMac.length).bytes(requestMac).done();
  const expected = hmac(
    key.algorithm,
    key.secret,
    concat(
      prefix,
      stripped,
      variables(tsig.keyName, tsig.algorithm, tsig.timeSigned, tsig.fudge, tsig.error, tsig.other),
    ),
  );
  if (!constantTimeEqual(expected, tsig.mac)) {
    return { ok: false, reason: "the reply's TSIG MAC does not verify" };
  }
  if (Math.abs(nowSeconds - tsig.timeSigned) > tsig.fudge) {
    return { ok: false, reason: "the reply's TSIG time is outside its fudge" };
  }
  return { ok: true };
}
