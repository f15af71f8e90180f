/**
 * The few DNS wire-format pieces a dynamic update needs (RFC 1035 §4,
 * RFC 2136): names, resource records, an UPDATE message, and reading a
 * reply's header and TSIG record.
 *
 * Why not npm `dns-packet` (checked on Deno 2.9.6, version 5.6.1): it
 * encodes and decodes fine on Deno, but it cannot express an UPDATE. Its
 * class table has no `NONE` (254), which RFC 2136 §2.5.4 needs to delete
 * one value of an RRset (a wildcard and its apex share one TXT name, so
 * cleanup must remove only its own value), it has no TSIG record type, and
 * the opcode is not an encodable field. The UPDATE path is small enough to
 * own outright.
 *
 * @module
 */

/** Record types used here. */
export const RR_TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, TSIG: 250 } as const;
/** Record classes used here. */
export const RR_CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;
/** The UPDATE opcode (RFC 2136 §1). */
export const OPCODE_UPDATE = 5;

const RCODES: Record<number, string> = {
  0: "NOERROR",
  1: "FORMERR",
  2: "SERVFAIL",
  3: "NXDOMAIN",
  4: "NOTIMP",
  5: "REFUSED",
  6: "YXDOMAIN",
  7: "YXRRSET",
  8: "NXRRSET",
  9: "NOTAUTH",
  10: "NOTZONE",
  16: "BADSIG",
  17: "BADKEY",
  18: "BADTIME",
  19: "BADMODE",
  20: "BADNAME",
  21: "BADALG",
  22: "BADTRUNC",
};

/** The mnemonic of a DNS RCODE or TSIG error (RFC 6895 §2.3), e.g. 9 → "NOTAUTH". */
export function rcodeName(code: number): string {
  return RCODES[code] ?? `RCODE${code}`;
}

/** A DNS message that could not be read. */
export class DnsWireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DnsWireError";
  }
}

/** One resource record to encode. */
export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Uint8Array;
}

/** Appends bytes; big-endian integers as the wire wants them. */
export class WireWriter {
  #buf = new Uint8Array(512);
  #len = 0;

  #room(n: number) {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
  u8(v: number): this {
    this.#room(1);
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    return this.u8(v >> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16(Math.floor(v / 0x10000) & 0xffff).u16(v & 0xffff);
  }
  /** A 48-bit unsigned integer (TSIG's time signed). */
  u48(v: number): this {
    return this.u16(Math.floor(v / 0x1_0000_0000) & 0xffff).u32(v % 0x1_0000_0000);
  }
  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }
  /** A name, uncompressed; `lowercase` gives the canonical form TSIG digests use. */
  name(name: string, lowercase = false): this {
    return this.bytes(encodeName(lowercase ? name.toLowerCase() : name));
  }
  rr(r: ResourceRecord): this {
    return this.name(r.name).u16(r.type).u16(r.class).u32(r.ttl).u16(r.rdata.length).bytes(r.rdata);
  }
  get length(): number {
    return this.#len;
  }
  done(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

const encoder = new TextEncoder();

/** A domain name in wire form (labels, then the root's zero byte); throws on an invalid name. */
export function encodeName(name: string): Uint8Array {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  const labels = trimmed === "" ? [] : trimmed.split(".");
  const parts: number[] = [];
  for (const label of labels) {
    const b = encoder.encode(label);
    if (b.length === 0 || b.length > 63) {
      throw new DnsWireError(`"${name}" is not a valid DNS name (label "${label}")`);
    }
    parts.push(b.length, ...b);
  }
  parts.push(0);
  if (parts.length > 255) throw new DnsWireError(`"${name}" is longer than 255 bytes`);
  return new Uint8Array(parts);
}

/** TXT RDATA for one value: character-strings of at most 255 bytes each (RFC 1035 §3.3.14). */
export function txtRdata(value: string): Uint8Array {
  const b = encoder.encode(value);
  const w = new WireWriter();
  if (b.length === 0) w.u8(0);
  for (let i = 0; i < b.length; i += 255) {
    const chunk = b.subarray(i, i + 255);
    w.u8(chunk.length).bytes(chunk);
  }
  return w.done();
}

/**
 * An UPDATE message (RFC 2136 §2): the zone section names the zone, no
 * prerequisites, `updates` as the update section. TSIG is added by the caller.
 */
export function encodeUpdate(id: number, zone: string, updates: ResourceRecord[]): Uint8Array {
  const w = new WireWriter()
    .u16(id)
    .u16(OPCODE_UPDATE << 11)
    .u16(1) // ZOCOUNT
    .u16(0) // PRCOUNT
    .u16(updates.length) // UPCOUNT
    .u16(0); // ADCOUNT
  w.name(zone).u16(RR_TYPE.SOA).u16(RR_CLASS.IN);
  for (const u of updates) w.rr(u);
  return w.done();
}

/** The header of a message. */
export interface DnsHeader {
  id: number;
  flags: number;
  /** The 4-bit RCODE of the header. */
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

/** Reads the 12-byte header. */
export function decodeHeader(msg: Uint8Array): DnsHeader {
  if (msg.length < 12) throw new DnsWireError(`a DNS message of ${msg.length} bytes has no header`);
  const u16 = (o: number) => (msg[o] << 8) | msg[o + 1];
  const flags = u16(2);
  return {
    id: u16(0),
    flags,
    rcode: flags & 0xf,
    qdcount: u16(4),
    ancount: u16(6),
    nscount: u16(8),
    arcount: u16(10),
  };
}

/** Reads a (possibly compressed) name at `offset`; returns it and the offset after it. */
export function readName(msg: Uint8Array, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  for (let hops = 0; hops < 64; hops++) {
    if (pos >= msg.length) throw new DnsWireError("a name runs past the end of the message");
    const len = msg[pos];
    if (len === 0) {
      return {
        name: labels.length ? `${labels.join(".")}.` : ".",
        next: next < 0 ? pos + 1 : next,
      };
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= msg.length) throw new DnsWireError("a compression pointer is cut off");
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | msg[pos + 1];
      continue;
    }
    if (len > 63) throw new DnsWireError(`label length ${len} is invalid`);
    labels.push(new TextDecoder().decode(msg.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  throw new DnsWireError("a name has too many compression pointers");
}

/** The TSIG record of a message (RFC 8945 §4.2), where it starts, and its fields. */
export interface TsigRecord {
  /** Offset of the record's first byte (the message without it ends here). */
  start: number;
  keyName: string;
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Uint8Array;
  originalId: number;
  error: number;
  other: Uint8Array;
}

/** The TSIG record, when the last additional record is one; throws on a malformed message. */
export function findTsig(msg: Uint8Array): TsigRecord | undefined {
  const h = decodeHeader(msg);
  if (h.arcount === 0) return undefined;
  let pos = 12;
  for (let i = 0; i < h.qdcount; i++) pos = readName(msg, pos).next + 4;
  const total = h.ancount + h.nscount + h.arcount;
  for (let i = 0; i < total; i++) {
    const start = pos;
    const { name, next } = readName(msg, pos);
    if (next + 10 > msg.length) throw new DnsWireError("a record is cut off");
    const type = (msg[next] << 8) | msg[next + 1];
    const rdlength = (msg[next + 8] << 8) | msg[next + 9];
    const rdata = next + 10;
    pos = rdata + rdlength;
    if (pos > msg.length) throw new DnsWireError("a record's data runs past the message");
    if (i === total - 1 && type === RR_TYPE.TSIG) {
      const alg = readName(msg, rdata);
      let o = alg.next;
      const u16 = () => {
        const v = (msg[o] << 8) | msg[o + 1];
        o += 2;
        return v;
      };
      const hi = u16();
      const lo = u16() * 0x10000 + u16();
      const timeSigned = hi * 0x1_0000_0000 + lo;
      const fudge = u16();
      const macSize = u16();
      const mac = msg.slice(o, o + macSize);
      o += macSize;
      const originalId = u16();
      const error = u16();
      const otherLen = u16();
      const other = msg.slice(o, o + otherLen);
      if (o + otherLen > pos) throw new DnsWireError("the TSIG record is cut off");
      return {
        start,
        keyName: name,
        algorithm: alg.name,
        timeSigned,
        fudge,
        mac,
        originalId,
        error,
        other,
      };
    }
  }
  return undefined;
}
