/**
 * Fuzzing the header rules: whatever the client sends, hop-by-hop headers
 * and those its Connection header lists never reach the upstream (nor the
 * client from the upstream), and X-Forwarded-For stays a well-formed list
 * that ends with the real client address.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  downstreamResponseHeaders,
  upstreamRequestHeaders,
  withoutForwardedHeaders,
} from "../lib/proxy/headers.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 300);

const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];
/** Names the proxy writes itself, so they are present whatever the client listed. */
const SET_BY_PROXY = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-server",
  "x-real-ip",
  // An HTTP/1.1 upstream request always has a Host (Go's proxy sends req.Host whatever the map holds).
  "host",
]);

const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);
const name = fc.oneof(
  fc.constantFrom(...HOP_BY_HOP, "x-forwarded-for", "x-real-ip", "host", "cookie", "x-a", "x-b"),
  token,
);
/** Header values as a client can send them: visible ASCII, spaces, tabs, commas. */
const value = fc.stringMatching(/^[\x21-\x7e][\x20-\x7e\t]{0,20}$/);
const headerList = fc.array(fc.tuple(name, value), { maxLength: 12 });
const connectionValue = fc.array(name, { maxLength: 4 }).map((names) => names.join(", "));
const ip = fc.oneof(fc.ipV4(), fc.ipV6());

function build(pairs: [string, string][], connection: string | undefined): Headers {
  const h = new Headers();
  for (const [k, v] of pairs) h.append(k, v);
  if (connection) h.set("connection", connection);
  return h;
}

Deno.test("fuzz: upstream headers drop hop-by-hop and Connection-listed names; X-Forwarded-For is well formed", () => {
  fc.assert(
    fc.property(
      headerList,
      fc.option(connectionValue, { nil: undefined }),
      ip,
      fc.boolean(),
      (pairs, connection, clientIp, trusted) => {
        const incoming = build(pairs, connection);
        const headers = trusted ? incoming : withoutForwardedHeaders(incoming);
        const out = upstreamRequestHeaders(headers, {
          clientIp,
          proto: "http",
          host: "a.test",
          port: 80,
          serverName: "edge",
          trustForwarded: trusted,
        }, { keepUpgrade: false });
        for (const hop of HOP_BY_HOP) {
          if (hop === "te") {
            if (out.te !== undefined) {
              assert.equal(
                out.te,
                "trailers",
                "only `te: trailers` is kept",
              );
            }
            continue;
          }
          assert.ok(!(hop in out), `${hop} must not be forwarded`);
        }
        const listed = (incoming.get("connection") ?? "").split(",").map((s) =>
          s.trim().toLowerCase()
        ).filter(Boolean);
        for (const n of listed) {
          if (SET_BY_PROXY.has(n) || n === "te") continue;
          assert.ok(!(n in out), `${n} was listed in Connection`);
        }
        const xff = out["x-forwarded-for"];
        assert.equal(typeof xff, "string");
        const parts = (xff as string).split(",").map((s) => s.trim());
        assert.equal(parts[parts.length - 1], clientIp, "the real client address is last");
        // Even a trusted hop's list loses its empty entries (`x-forwarded-for: ,`).
        assert.ok(
          parts.every((p) => p.length > 0),
          `no empty entries in ${JSON.stringify(xff)}`,
        );
        assert.ok(!/[\r\n]/.test(xff as string));
        if (!trusted) {
          assert.deepEqual(
            parts,
            [clientIp],
            "an untrusted client's list is replaced, not appended to",
          );
        }
        for (const v of Object.values(out)) {
          assert.ok(
            !/[\r\n]/.test(String(v)),
            "no header value carries a line break",
          );
        }
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz: response headers from the upstream drop hop-by-hop and Connection-listed names", () => {
  fc.assert(
    fc.property(headerList, fc.option(connectionValue, { nil: undefined }), (pairs, connection) => {
      const raw: string[] = [];
      for (const [k, v] of pairs) raw.push(k, v);
      if (connection) raw.push("Connection", connection);
      const out = downstreamResponseHeaders(raw);
      for (const hop of HOP_BY_HOP) assert.ok(!out.has(hop), `${hop} must not reach the client`);
      for (const n of (connection ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
        assert.ok(!out.has(n), `${n} was listed in Connection`);
      }
    }),
    { numRuns: RUNS },
  );
});
