/**
 * The ClientHello peeker against real ClientHellos: each is captured off a
 * plain TCP listener that a real TLS client (Deno's rustls through
 * Deno.startTls and Deno.connectTls, Deno's node:tls, openssl s_client,
 * curl) opens a handshake to. Those bytes are then re-framed across
 * records, fed byte by byte, cut, mutated at every length field, given
 * hand-built SNI and ALPN bodies, and fuzzed with fast-check.
 */

import assert from "node:assert/strict";
import { connect as nodeTlsConnect } from "node:tls";
import fc from "fast-check";
import {
  type ClientHelloResult,
  MAX_CLIENT_HELLO,
  parseClientHello,
} from "../lib/engine/client_hello.ts";

// ---------------------------------------------------------------------------
// Capturing real ClientHellos

interface Capture {
  /** Everything the client sent before it waited for the server. */
  bytes: Uint8Array;
  result: ClientHelloResult;
}

/**
 * Listens on 127.0.0.1, lets `client` connect and start TLS, and reads what
 * arrives until the parser stops saying "incomplete"; then waits a little
 * for anything more, so `bytes` is all the client sent on its own, not just
 * what the parser asked for.
 */
async function capture(client: (port: number) => Promise<unknown>): Promise<Capture> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const clientDone = client(listener.addr.port).catch(() => {});
  let conn: Deno.Conn | undefined;
  // A client that never connects, or never sends, fails the test instead
  // of hanging it: closing the listener or the connection ends the wait.
  const deadline = setTimeout(() => {
    closeQuietly(listener);
    if (conn) closeQuietly(conn);
  }, 10_000);
  try {
    conn = await listener.accept();
    closeQuietly(listener);
    const buf = new Uint8Array(MAX_CLIENT_HELLO + 4096);
    let n = 0;
    let result = parseClientHello(buf, 0);
    while (result.kind === "incomplete") {
      const got = await conn.read(buf.subarray(n));
      if (got === null) break;
      n += got;
      result = parseClientHello(buf, n);
    }
    const extra = conn.read(buf.subarray(n)).catch(() => null);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = new Promise<"idle">((resolve) => timer = setTimeout(() => resolve("idle"), 150));
    const more = await Promise.race([extra, idle]);
    clearTimeout(timer);
    if (typeof more === "number") n += more;
    closeQuietly(conn);
    await extra;
    return { bytes: buf.slice(0, n), result };
  } finally {
    clearTimeout(deadline);
    closeQuietly(listener);
    if (conn) closeQuietly(conn);
    await clientDone;
  }
}

function closeQuietly(c: { close(): void }) {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}

const denoStartTls = (hostname: string, alpnProtocols?: string[]) => async (port: number) => {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const tls = await Deno.startTls(tcp, { hostname, alpnProtocols });
    try {
      await tls.handshake();
    } finally {
      tls.close();
    }
  } catch {
    // No TLS server answers: the handshake is meant to fail.
  }
};

function run(cmd: string, args: string[]): Promise<unknown> {
  return new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" }).output();
}

function has(cmd: string): boolean {
  try {
    return new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}
const HAS_OPENSSL = has("openssl");
const HAS_CURL = has("curl");

function expectHello(c: Capture, serverName: string, alpn: string[]) {
  const r = c.result;
  assert.equal(r.kind, "hello", JSON.stringify(r));
  if (r.kind !== "hello") return;
  assert.deepEqual(r.info, { serverName, alpn });
  assert.equal(r.length, c.bytes.length, "length is every byte the client sent");
  assert.equal(recordsLength(c.bytes), r.length, "length ends on the records' boundary");
}

/** The length of the handshake records at the start of b, walked here independently of the parser. */
function recordsLength(b: Uint8Array): number {
  let p = 0;
  while (p + 5 <= b.length && b[p] === 0x16) p += 5 + u16(b, p + 3);
  return p;
}

/** The record payloads of the handshake records in b, headers dropped. */
function fragments(b: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let p = 0; p + 5 <= b.length; p += 5 + u16(b, p + 3)) {
    out.push(...b.subarray(p + 5, p + 5 + u16(b, p + 3)));
  }
  return Uint8Array.from(out);
}

let cached: Promise<Uint8Array> | undefined;
/** One real hello (rustls, with SNI and ALPN), captured once and shared by the later tests. */
function realHello(): Promise<Uint8Array> {
  cached ??= capture(denoStartTls("app.example.com", ["h2", "http/1.1"])).then((c) => c.bytes);
  return cached;
}

Deno.test("real hello: Deno.startTls sends SNI and ALPN", async () => {
  const alpn = ["h2", "http/1.1"];
  expectHello(await capture(denoStartTls("app.example.com", alpn)), "app.example.com", alpn);
});

Deno.test("real hello: Deno.connectTls to an IP sends no SNI, and no ALPN unless asked", async () => {
  const c = await capture(async (port) => {
    const tls = await Deno.connectTls({ hostname: "127.0.0.1", port });
    try {
      await tls.handshake();
    } finally {
      tls.close();
    }
  });
  expectHello(c, "", []);
});

Deno.test("real hello: node:tls connect with servername and ALPNProtocols", async () => {
  const c = await capture((port) =>
    new Promise<void>((resolve) => {
      const socket = nodeTlsConnect({
        host: "127.0.0.1",
        port,
        servername: "node.example.org",
        ALPNProtocols: ["h2", "http/1.1"],
        rejectUnauthorized: false,
      });
      socket.on("error", () => resolve());
      socket.on("close", () => resolve());
    })
  );
  expectHello(c, "node.example.org", ["h2", "http/1.1"]);
});

Deno.test({
  name: "real hello: openssl s_client, TLS 1.3 and TLS 1.2, with and without SNI",
  ignore: !HAS_OPENSSL,
  fn: async () => {
    const sClient = (port: number, ...args: string[]) =>
      run("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, ...args]);
    expectHello(
      await capture((port) => sClient(port, "-servername", "x.test", "-alpn", "h2,http/1.1")),
      "x.test",
      ["h2", "http/1.1"],
    );
    expectHello(
      await capture((port) =>
        sClient(port, "-tls1_2", "-servername", "Legacy.X.Test", "-alpn", "http/1.1")
      ),
      "legacy.x.test",
      ["http/1.1"],
    );
    expectHello(await capture((port) => sClient(port, "-noservername")), "", []);
  },
});

Deno.test({
  name: "real hello: curl https with --resolve",
  ignore: !HAS_CURL,
  fn: async () => {
    const version = new TextDecoder().decode(
      new Deno.Command("curl", { args: ["-V"] }).outputSync().stdout,
    );
    const alpn = version.includes("HTTP2") ? ["h2", "http/1.1"] : ["http/1.1"];
    const c = await capture((port) =>
      run("curl", [
        "-sk",
        "--max-time",
        "5",
        "--resolve",
        `curl.test:${port}:127.0.0.1`,
        `https://curl.test:${port}/`,
      ])
    );
    expectHello(c, "curl.test", alpn);
  },
});

// ---------------------------------------------------------------------------
// Taking a captured hello apart and putting it back together, independently
// of the parser under test

const u16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const be16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const be24 = (n: number) => [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const latin1 = (b: Uint8Array) => Array.from(b, (c) => String.fromCharCode(c)).join("");
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const concat = (...parts: ArrayLike<number>[]) =>
  Uint8Array.from(parts.flatMap((p) => Array.from(p)));

interface Extension {
  type: number;
  /** Offset of the extension's type field in the record bytes. */
  at: number;
  data: Uint8Array;
}

/** Offsets of the length fields in a one-record hello, and its extensions. */
interface Layout {
  sessionId: number;
  suites: number;
  compressions: number;
  extensions: number;
  exts: Extension[];
}

function layout(rec: Uint8Array): Layout {
  assert.equal(rec[0], 0x16);
  assert.equal(5 + u16(rec, 3), rec.length, "one record");
  let p = 5 + 4 + 2 + 32;
  const sessionId = p;
  p += 1 + rec[p];
  const suites = p;
  p += 2 + u16(rec, p);
  const compressions = p;
  p += 1 + rec[p];
  const extensions = p;
  const stop = p + 2 + u16(rec, p);
  assert.equal(stop, rec.length);
  p += 2;
  const exts: Extension[] = [];
  while (p < stop) {
    exts.push({ type: u16(rec, p), at: p, data: rec.slice(p + 4, p + 4 + u16(rec, p + 2)) });
    p += 4 + u16(rec, p + 2);
  }
  return { sessionId, suites, compressions, extensions, exts };
}

/** The handshake message of a one-record hello with its extensions replaced; `null`: none at all. */
function withExtensions(
  rec: Uint8Array,
  exts: { type: number; data: ArrayLike<number> }[] | null,
): Uint8Array {
  const fixed = rec.subarray(9, layout(rec).extensions);
  const block = exts === null
    ? []
    : exts.flatMap((e) => [...be16(e.type), ...be16(e.data.length), ...Array.from(e.data)]);
  const body = exts === null ? Array.from(fixed) : [...fixed, ...be16(block.length), ...block];
  return concat([1], be24(body.length), body);
}

/** A handshake message framed into records of the given sizes (the last size repeats). */
function frame(message: Uint8Array, ...sizes: number[]): Uint8Array {
  const out: number[] = [];
  for (let p = 0, i = 0; p < message.length; i++) {
    const n = Math.min(sizes[Math.min(i, sizes.length - 1)], message.length - p);
    out.push(0x16, 0x03, 0x01, ...be16(n), ...message.subarray(p, p + n));
    p += n;
  }
  return Uint8Array.from(out);
}

const messageOf = (rec: Uint8Array) => rec.slice(5);

function sni(...entries: [number, Uint8Array][]): NewExtension {
  const list = entries.flatMap(([type, name]) => [type, ...be16(name.length), ...name]);
  return { type: 0, data: [...be16(list.length), ...list] };
}

function alpnExt(...names: Uint8Array[]): NewExtension {
  const list = names.flatMap((n) => [n.length, ...n]);
  return { type: 16, data: [...be16(list.length), ...list] };
}

type NewExtension = { type: number; data: ArrayLike<number> };

/**
 * The real hello, one record, with its server_name and ALPN extensions
 * replaced: undefined keeps the captured one, null drops it.
 */
function rebuilt(
  rec: Uint8Array,
  change: { sni?: NewExtension | null; alpn?: NewExtension | null },
): Uint8Array {
  const exts = layout(rec).exts;
  const pick = (type: number, to: NewExtension | null | undefined) =>
    to === undefined ? exts.filter((e) => e.type === type) : to === null ? [] : [to];
  const others = exts.filter((e) => e.type !== 0 && e.type !== 16);
  return frame(
    withExtensions(rec, [...pick(0, change.sni), ...pick(16, change.alpn), ...others]),
    16384,
  );
}

function expectError(r: ClientHelloResult, what: string, reason?: RegExp) {
  assert.equal(r.kind, "error", `${what}: ${JSON.stringify(r)}`);
  if (reason && r.kind === "error") assert.match(r.reason, reason, what);
}

const whole = (b: Uint8Array) => parseClientHello(b, b.length);

// ---------------------------------------------------------------------------
// Record layer

Deno.test("records: a hello split over two records, fed byte by byte, is incomplete until its last byte", async () => {
  const rec = await realHello();
  const message = messageOf(rec);
  const want = whole(rec);
  assert.equal(want.kind, "hello");
  // Every cut, including inside the 4-byte handshake header.
  for (let cut = 1; cut < message.length; cut++) {
    const two = frame(message, cut, message.length);
    assert.equal(recordsLength(two), two.length);
    for (let k = 0; k < two.length; k++) {
      assert.equal(parseClientHello(two, k).kind, "incomplete", `cut ${cut}, prefix ${k}`);
    }
    const r = whole(two);
    assert.equal(r.kind, "hello", `cut ${cut}: ${JSON.stringify(r)}`);
    if (r.kind === "hello" && want.kind === "hello") {
      assert.deepEqual(r.info, want.info);
      assert.equal(r.length, two.length);
    }
  }
});

Deno.test("records: one byte per record still reassembles", async () => {
  const rec = await realHello();
  const ones = frame(messageOf(rec), 1);
  assert.equal(ones.length, 6 * (rec.length - 5));
  for (let k = 0; k < ones.length; k++) assert.equal(parseClientHello(ones, k).kind, "incomplete");
  const r = whole(ones);
  assert.equal(r.kind, "hello");
  if (r.kind === "hello") {
    assert.deepEqual(r.info, { serverName: "app.example.com", alpn: ["h2", "http/1.1"] });
  }
});

Deno.test("records: a hello over 16 KiB needs two records, and reassembles", async () => {
  const rec = await realHello();
  const exts = layout(rec).exts;
  // padding (RFC 7685), first: pre_shared_key, if any, must stay last.
  const big = withExtensions(rec, [{ type: 21, data: new Uint8Array(20000) }, ...exts]);
  assert.ok(big.length > 16384);
  const records = frame(big, 16384);
  const r = whole(records);
  assert.equal(r.kind, "hello", JSON.stringify(r));
  if (r.kind === "hello") {
    assert.deepEqual(r.info, { serverName: "app.example.com", alpn: ["h2", "http/1.1"] });
    assert.equal(r.length, records.length);
  }
  assert.equal(parseClientHello(records, records.length - 1).kind, "incomplete");
  // The same message in one record breaks RFC 8446's 2^14 plaintext limit.
  const one = concat([0x16, 3, 1], be16(big.length), big);
  expectError(parseClientHello(one, 5), "one oversized record", /2\^14/);
});

Deno.test("records: the size cap is enforced as soon as the lengths show it", async () => {
  // A handshake header that declares 70000 bytes: refused after 9 bytes.
  const huge = concat([0x16, 3, 1, 0x40, 0x00, 1], be24(70000), new Uint8Array(100));
  expectError(parseClientHello(huge, 9), "declared 70000", /exceed/);
  assert.equal(parseClientHello(huge, 8).kind, "incomplete", "the length is not known yet");
  // Just under the cap passes the record layer (its body is then judged).
  const rec = await realHello();
  const fits = MAX_CLIENT_HELLO - 5 * 4 - 4 - (rec.length - 9);
  const atCap = frame(
    withExtensions(rec, [{ type: 21, data: new Uint8Array(fits - 4 - 2) }, ...layout(rec).exts]),
    16384,
  );
  assert.ok(atCap.length <= MAX_CLIENT_HELLO, `${atCap.length}`);
  assert.equal(whole(atCap).kind, "hello");
  const over = frame(
    withExtensions(rec, [{ type: 21, data: new Uint8Array(fits) }, ...layout(rec).exts]),
    16384,
  );
  assert.ok(over.length > MAX_CLIENT_HELLO);
  expectError(parseClientHello(over, 9), "over the cap, at the header", /exceed/);
  // Tiny records: the cap counts their headers too.
  const message = messageOf(rec);
  const tiny = frame(message, 1);
  assert.ok(tiny.length < MAX_CLIENT_HELLO);
  const manyTiny = frame(
    withExtensions(rec, [{ type: 21, data: new Uint8Array(12000) }, ...layout(rec).exts]),
    1,
  );
  assert.ok(manyTiny.length > MAX_CLIENT_HELLO);
  const r = whole(manyTiny);
  expectError(r, "tiny records past the cap", /exceed/);
});

Deno.test("records: what is not TLS, and what breaks the record layer", async () => {
  const rec = await realHello();
  assert.equal(parseClientHello(new Uint8Array(0), 0).kind, "incomplete");
  assert.equal(parseClientHello(rec, 0).kind, "incomplete");
  assert.equal(whole(ascii("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")).kind, "not-tls");
  assert.equal(parseClientHello(ascii("G"), 1).kind, "not-tls", "judged on the first byte");
  assert.equal(whole(ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")).kind, "not-tls");
  // An SSLv2-compatible hello opens with 0x80 (Go refuses those too).
  assert.equal(whole(Uint8Array.of(0x80, 0x2e, 0x01, 0x03, 0x01)).kind, "not-tls");
  // An alert or application data first: not a client opening TLS.
  assert.equal(whole(Uint8Array.of(0x15, 3, 3, 0, 2, 2, 40)).kind, "not-tls");
  assert.equal(whole(Uint8Array.of(0x17, 3, 3, 0, 1, 0)).kind, "not-tls");

  // Handshake type other than client_hello: "not-tls", judged on that byte.
  for (const type of [0, 2, 11, 20, 255]) {
    const b = rec.slice();
    b[5] = type;
    assert.equal(parseClientHello(b, 6).kind, "not-tls", `type ${type}, 6 bytes`);
    assert.equal(whole(b).kind, "not-tls", `type ${type}`);
  }
  const split = frame(messageOf(rec), 1);
  split[5] = 2;
  assert.equal(whole(split).kind, "not-tls", "type in a one-byte first record");

  // Record version: 0x03 0x0X only, refused as soon as the byte is there.
  for (const [at, v] of [[1, 0x02], [1, 0x04], [1, 0x16], [2, 0x10], [2, 0xff]]) {
    const b = rec.slice();
    b[at] = v;
    expectError(parseClientHello(b, at + 1), `version byte ${at} = ${v}`, /version/);
    expectError(whole(b), `version byte ${at} = ${v}`, /version/);
  }
  for (const v of [0, 1, 2, 3, 4]) {
    const b = rec.slice();
    b[2] = v;
    assert.equal(whole(b).kind, "hello", `version 3.${v}`);
  }
  const second = frame(messageOf(rec), 100);
  second[100 + 5 + 1] = 0x04;
  expectError(whole(second), "version of the second record", /version/);

  // Record lengths.
  const empty = concat([0x16, 3, 1, 0, 0], rec);
  expectError(whole(empty), "empty first record", /empty/);
  const emptyMid = concat(frame(messageOf(rec), 50).subarray(0, 55), [0x16, 3, 1, 0, 0]);
  expectError(whole(emptyMid), "empty second record", /empty/);
  const long = rec.slice();
  long.set(be16(16385), 3);
  expectError(parseClientHello(long, 5), "record over 2^14", /2\^14/);
  const plusOne = concat(rec, [0]);
  plusOne.set(be16(u16(rec, 3) + 1), 3);
  expectError(
    parseClientHello(plusOne, 5 + 4),
    "record longer than the hello",
    /past the ClientHello/,
  );

  // Another record type cutting into the message.
  for (const type of [0x14, 0x15, 0x17, 0x00]) {
    const two = frame(messageOf(rec), 100);
    two[105] = type;
    expectError(parseClientHello(two, 106), `record type ${type} mid-hello`, /interrupts/);
  }
});

Deno.test("records: the handshake length against the records", async () => {
  const rec = await realHello();
  const hsLength = (b: Uint8Array) => (b[6] << 16) | (b[7] << 8) | b[8];
  // Shorter than the record: the record carries another message's bytes.
  const less = rec.slice();
  less.set(be24(hsLength(rec) - 1), 6);
  expectError(parseClientHello(less, 9), "handshake length - 1", /past the ClientHello/);
  // Longer: a valid prefix (another record would bring the rest)...
  const more = rec.slice();
  more.set(be24(hsLength(rec) + 1), 6);
  assert.equal(whole(more).kind, "incomplete");
  // ...and when it comes, the body no longer adds up.
  expectError(
    whole(concat(more, [0x16, 3, 1, 0, 1, 0])),
    "one byte past the extensions",
    /extensions length/,
  );
  // A body too short for the fixed fields.
  expectError(
    whole(frame(concat([1], be24(30), new Uint8Array(30)), 100)),
    "30-byte body",
    /shorter/,
  );
});

// ---------------------------------------------------------------------------
// The ClientHello body

Deno.test("body: a hello without extensions (SSLv3 / TLS 1.0 style) is valid", async () => {
  const rec = await realHello();
  const bare = frame(withExtensions(rec, null), 16384);
  const r = whole(bare);
  assert.equal(r.kind, "hello", JSON.stringify(r));
  if (r.kind === "hello") {
    assert.deepEqual(r.info, { serverName: "", alpn: [] });
    assert.equal(r.length, bare.length);
  }
  const emptyBlock = frame(withExtensions(rec, []), 16384);
  assert.deepEqual(whole(emptyBlock), {
    kind: "hello",
    info: { serverName: "", alpn: [] },
    length: emptyBlock.length,
  });
  // A single byte where the extensions length would be.
  const stray = frame(concat(withExtensions(rec, null), [0]), 16384);
  stray.set(be24(stray.length - 9), 6);
  expectError(whole(stray), "one stray byte", /stray/);
});

Deno.test("body: every length field of a real hello, overrun or off by one, is an error", async () => {
  const rec = await realHello();
  const l = layout(rec);
  const set8 = (at: number, v: number) => {
    const b = rec.slice();
    b[at] = v;
    return b;
  };
  const set16 = (at: number, v: number) => {
    const b = rec.slice();
    b.set(be16(v & 0xffff), at);
    return b;
  };
  const cases: [string, Uint8Array, RegExp?][] = [
    ["session_id 33", set8(l.sessionId, 33), /session_id/],
    ["session_id 255", set8(l.sessionId, 255), /session_id/],
    ["cipher_suites 0", set16(l.suites, 0), /cipher_suites/],
    ["cipher_suites odd", set16(l.suites, u16(rec, l.suites) + 1), /cipher_suites/],
    ["cipher_suites overrun", set16(l.suites, 0xfffe), /overrun/],
    ["compression_methods 0", set8(l.compressions, 0), /compression/],
    // With a larger hello 255 bytes might fit, and the error would come from later fields.
    ["compression_methods 255", set8(l.compressions, 255)],
    ["extensions + 1", set16(l.extensions, u16(rec, l.extensions) + 1), /extensions length/],
    ["extensions - 1", set16(l.extensions, u16(rec, l.extensions) - 1), /extensions length/],
    ["extensions 0xffff", set16(l.extensions, 0xffff), /extensions length/],
  ];
  const last = l.exts[l.exts.length - 1];
  cases.push([
    `last extension (${last.type}) + 1`,
    set16(last.at + 2, last.data.length + 1),
    /overruns/,
  ]);
  for (const e of l.exts) {
    cases.push([`extension ${e.type} 0xffff`, set16(e.at + 2, 0xffff), /overruns/]);
  }
  const sniExt = l.exts.find((e) => e.type === 0)!;
  const alpn = l.exts.find((e) => e.type === 16)!;
  for (const [name, e] of [["server_name", sniExt], ["ALPN", alpn]] as const) {
    const d = e.at + 4; // the list length
    cases.push([`${name} list + 1`, set16(d, u16(rec, d) + 1), /list length/]);
    cases.push([`${name} list - 1`, set16(d, u16(rec, d) - 1), /list length/]);
    cases.push([`${name} list 0`, set16(d, 0), /list length/]);
  }
  const name = sniExt.at + 4 + 2 + 1; // the first entry's name length
  cases.push(["host_name + 1", set16(name, u16(rec, name) + 1), /overruns/]);
  cases.push(["host_name - 1", set16(name, u16(rec, name) - 1), /truncated/]);
  cases.push(["host_name 0", set16(name, 0), /empty/]);
  const proto = alpn.at + 4 + 2; // the first protocol name's length
  cases.push(["ALPN name 0", set8(proto, 0), /empty/]);
  cases.push(["ALPN name 255", set8(proto, 255), /overruns/]);
  for (const [what, b, reason] of cases) {
    expectError(whole(b), what, reason);
    // No prefix of a broken hello passes for one either.
    for (let k = 0; k < b.length; k += 37) {
      assert.notEqual(parseClientHello(b, k).kind, "hello", what);
    }
  }
});

Deno.test("body: any extension's length, nudged, gives an error or a hello naming nothing new", async () => {
  // A nudge can realign the walk so that it still ends exactly at the end
  // (say, key_share - 2 turns its last two bytes into an empty extension of
  // some type and swallows server_name): that is a well-framed hello and
  // may parse, but whatever it names must come from the bytes.
  const rec = await realHello();
  for (const e of layout(rec).exts) {
    for (const delta of [-2, -1, 1, 2]) {
      const b = rec.slice();
      b.set(be16(Math.max(0, e.data.length + delta)), e.at + 2);
      const r = whole(b);
      const what = `extension ${e.type} ${delta}: ${JSON.stringify(r)}`;
      if (r.kind !== "hello") {
        assert.equal(r.kind, "error", what);
        continue;
      }
      assert.ok(["", "app.example.com"].includes(r.info.serverName), what);
      assert.ok(r.info.alpn.every((p) => p === "h2" || p === "http/1.1"), what);
    }
  }
});

Deno.test("body: a duplicated extension is refused, whatever its type", async () => {
  const rec = await realHello();
  const exts = layout(rec).exts;
  for (const e of exts) {
    const dup = frame(withExtensions(rec, [...exts, e]), 16384);
    expectError(whole(dup), `extension ${e.type} twice`, /twice/);
  }
  const grease = frame(
    withExtensions(rec, [{ type: 0x0a0a, data: [] }, ...exts, { type: 0x0a0a, data: [0] }]),
    16384,
  );
  expectError(whole(grease), "an unknown type twice", /twice/);
  // The duplicate check carries no state from one hello to the next.
  assert.equal(whole(rec).kind, "hello");
  assert.equal(whole(rec).kind, "hello");
});

Deno.test("server_name: the rules Go's crypto/tls applies", async () => {
  const rec = await realHello();
  const hello = (b: Uint8Array) => {
    const r = whole(b);
    assert.equal(r.kind, "hello", JSON.stringify(r));
    return r.kind === "hello" ? r.info : undefined;
  };
  assert.equal(
    hello(rebuilt(rec, { sni: sni([0, ascii("API.Example.COM")]) }))?.serverName,
    "api.example.com",
  );
  assert.equal(hello(rebuilt(rec, { sni: null }))?.serverName, "", "no server_name extension");
  // A name type other than host_name is skipped, as Go does.
  assert.equal(hello(rebuilt(rec, { sni: sni([7, ascii("opaque")]) }))?.serverName, "");
  assert.equal(
    hello(rebuilt(rec, { sni: sni([7, ascii("x")], [0, ascii("b.test")]) }))?.serverName,
    "b.test",
  );
  assert.equal(
    hello(rebuilt(rec, { sni: sni([0, ascii("a.b-c_d.test")]) }))?.serverName,
    "a.b-c_d.test",
  );
  const longName = "a".repeat(63) + ("." + "b".repeat(60)).repeat(3);
  assert.equal(hello(rebuilt(rec, { sni: sni([0, ascii(longName)]) }))?.serverName, longName);

  const refused: [string, NewExtension, RegExp][] = [
    ["two host_names", sni([0, ascii("a.test")], [0, ascii("b.test")]), /two host_names/],
    ["a trailing dot", sni([0, ascii("app.example.com.")]), /dot/],
    ["only a dot", sni([0, ascii(".")]), /dot/],
    ["an empty name", sni([0, new Uint8Array(0)]), /empty/],
    ["an empty list", sni(), /empty server_name list/],
    ["no list length", { type: 0, data: [] }, /list length/],
    ["a space", sni([0, ascii("a b.test")]), /printable/],
    ["a NUL", sni([0, ascii("a.test\0")]), /printable/],
    ["DEL", sni([0, ascii("a.test\x7f")]), /printable/],
    ["UTF-8", sni([0, Uint8Array.of(0x63, 0x61, 0x66, 0xc3, 0xa9)]), /printable/],
    ["a truncated entry", { type: 0, data: [0, 2, 0, 0] }, /truncated/],
  ];
  for (const [what, ext, reason] of refused) {
    expectError(whole(rebuilt(rec, { sni: ext })), what, reason);
  }
});

Deno.test("ALPN: names in order, decoded as latin1; empty ones refused", async () => {
  const rec = await realHello();
  const info = (b: Uint8Array) => {
    const r = whole(b);
    assert.equal(r.kind, "hello", JSON.stringify(r));
    return r.kind === "hello" ? r.info : undefined;
  };
  const s = sni([0, ascii("a.test")]);
  const offered = (alpn: NewExtension | null) => rebuilt(rec, { sni: s, alpn });
  const names = (...n: Uint8Array[]) => info(offered(alpnExt(...n)))?.alpn;
  assert.deepEqual(names(ascii("http/1.1"), ascii("h2"), ascii("acme-tls/1")), [
    "http/1.1",
    "h2",
    "acme-tls/1",
  ]);
  assert.deepEqual(names(Uint8Array.of(0x63, 0x61, 0x66, 0xe9, 0x00, 0x80)), ["caf\xe9\x00\x80"]);
  assert.deepEqual(names(new Uint8Array(255).fill(0x78)), ["x".repeat(255)]);
  assert.deepEqual(info(offered(null))?.alpn, [], "no ALPN extension");
  expectError(whole(offered(alpnExt())), "an empty list", /empty ALPN list/);
  expectError(
    whole(offered(alpnExt(ascii("h2"), new Uint8Array(0)))),
    "an empty name",
    /empty ALPN/,
  );
  expectError(whole(offered({ type: 16, data: [0] })), "no list length", /list length/);
  expectError(
    whole(offered({ type: 16, data: [0, 3, 5, 0x68, 0x32] })),
    "a name overrunning",
    /overruns/,
  );
});

Deno.test("bounds: bytes past end are never read; end past the buffer is clamped", async () => {
  const rec = await realHello();
  const garbage = concat(rec, new Uint8Array(64).fill(0xee));
  for (let k = 0; k <= rec.length; k++) {
    assert.deepEqual(
      parseClientHello(garbage, k),
      parseClientHello(rec.slice(0, k), k),
      `end ${k}`,
    );
  }
  // The record length claims one byte more, which sits past end as 0xee.
  const short = rec.slice(0, rec.length - 1);
  assert.equal(parseClientHello(concat(short, [0xee]), short.length).kind, "incomplete");
  assert.deepEqual(parseClientHello(rec, rec.length + 100), whole(rec));
  assert.equal(parseClientHello(rec, -1).kind, "incomplete");
  assert.equal(parseClientHello(rec, NaN).kind, "incomplete");
});

// ---------------------------------------------------------------------------
// Fuzzing

Deno.test("fuzz: random bytes, mutations and cuts of real hellos never throw or invent a name", async () => {
  const runs = Number(Deno.env.get("FUZZ_RUNS") ?? 2000);
  const rec = await realHello();
  const bases = [rec, frame(messageOf(rec), 200), frame(messageOf(rec), 3, 16384)];
  const base = fc.constantFrom(...bases);
  const mutated = fc.tuple(base, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(3)).map(
    ([b, at, byte, op]) => {
      const c = [...b];
      at %= c.length;
      if (op === 0) c[at] = byte;
      else if (op === 1) c[at] ^= 1 << (byte % 8);
      else if (op === 2) c.splice(at, 1);
      else c.splice(at, 0, byte);
      return Uint8Array.from(c);
    },
  );
  const cut = fc.tuple(base, fc.nat()).map(([b, n]) => b.slice(0, n % (b.length + 1)));
  const tlsLike = fc.uint8Array({ minLength: 1, maxLength: 400 }).map((b) => {
    b[0] = 0x16;
    if (b.length > 1) b[1] = 3;
    if (b.length > 5) b[5] = 1;
    return b;
  });
  const input = fc.oneof(fc.uint8Array({ maxLength: 400 }), tlsLike, mutated, cut);
  const kinds = new Set(["incomplete", "not-tls", "error", "hello"]);
  fc.assert(
    fc.property(input, fc.nat(), (b, k) => {
      const r = whole(b);
      assert.ok(kinds.has(r.kind));
      if (r.kind === "error") assert.ok(r.reason.length > 0);
      if (r.kind !== "hello") return;
      assert.ok(r.length > 0 && r.length <= b.length && r.length <= MAX_CLIENT_HELLO);
      // Names may straddle records, so look for them in the fragments.
      assert.equal(recordsLength(b.subarray(0, r.length)), r.length);
      const text = latin1(fragments(b.subarray(0, r.length)));
      assert.ok(text.toLowerCase().includes(r.info.serverName), r.info.serverName);
      assert.equal(r.info.serverName, r.info.serverName.toLowerCase());
      for (const p of r.info.alpn) assert.ok(p.length > 0 && text.includes(p), p);
      // The hello ends at `length`, and every shorter prefix is a valid prefix.
      assert.deepEqual(parseClientHello(b, r.length), r);
      assert.equal(parseClientHello(b, k % r.length).kind, "incomplete");
    }),
    { numRuns: runs },
  );
  // A cut of a valid hello is always "incomplete", never "error".
  for (const b of bases) {
    for (let k = 0; k < b.length; k++) assert.equal(parseClientHello(b, k).kind, "incomplete");
  }
});
