/**
 * Fuzzing the engine's pure parsers with fast-check: random bytes and
 * mutations of a valid head never crash or hang the request parser, the
 * response parser or the chunked decoder; a head split anywhere parses
 * the same; chunked framing round-trips. `FUZZ_RUNS=N deno task fuzz`
 * runs more cases.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ChunkedDecoder, ChunkedError, encodeChunk, LAST_CHUNK } from "../lib/engine/chunked.ts";
import { parseRequestHead } from "../lib/engine/request_head.ts";
import { parseResponseHead } from "../lib/engine/response_parser.ts";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

const VALID = "POST /p?q=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nX-A: b\r\n\r\n";

Deno.test("fuzz: random bytes and mutated heads never crash or hang the parsers", () => {
  const runs = Number(Deno.env.get("FUZZ_RUNS") ?? 500);
  const mutated = fc.tuple(fc.nat(VALID.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(3)).map(
    ([at, byte, op]) => {
      const b = [...bytes(VALID)];
      if (op === 0) b[at] = byte;
      else if (op === 1) b.splice(at, 0, byte);
      else if (op === 2) b.splice(at, 1);
      else b.splice(at, 0, 13, 10);
      return new Uint8Array(b);
    },
  );
  const input = fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated);
  fc.assert(
    fc.property(input, (b) => {
      const r = parseRequestHead(b, 0, b.length);
      if (r.kind === "head") {
        assert.ok(r.end <= b.length);
        assert.ok(r.head.headers.length % 2 === 0);
      }
      const s = parseResponseHead(b, 0, b.length);
      if (s.kind === "head") assert.ok(s.end <= b.length);
      const d = new ChunkedDecoder();
      try {
        const upTo = d.decode(b, 0, b.length, (f, t) => assert.ok(f <= t && t <= b.length));
        assert.ok(upTo <= b.length);
      } catch (err) {
        assert.ok(err instanceof ChunkedError, String(err));
      }
    }),
    { numRuns: runs },
  );
  fc.assert(
    fc.property(fc.nat(VALID.length), (cut) => {
      const b = bytes(VALID);
      const first = parseRequestHead(b, 0, cut);
      const scanned = first.kind === "incomplete" ? first.scanned : 0;
      assert.deepEqual(parseRequestHead(b, 0, b.length, undefined, scanned), parseRequestHead(b, 0, b.length));
    }),
    { numRuns: Math.min(runs, VALID.length * 2) },
  );
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 50 }), { maxLength: 10 }), fc.nat(500), (parts, cut) => {
      const framed = [...parts.flatMap((p) => [...encodeChunk(p)]), ...LAST_CHUNK];
      const b = new Uint8Array(framed);
      const d = new ChunkedDecoder();
      const out: number[] = [];
      const at = Math.min(cut, b.length);
      const collect = (f: number, t: number) => out.push(...b.subarray(f, t));
      const mid = d.decode(b, 0, at, collect);
      d.decode(b, mid, b.length, collect);
      assert.ok(d.done);
      assert.deepEqual(out, parts.flatMap((p) => [...p]));
    }),
    { numRuns: runs },
  );
});
