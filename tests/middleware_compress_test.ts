import assert from "node:assert/strict";
import http from "node:http";
import zlib from "node:zlib";
import { startTestProxy } from "./fixtures/proxy.ts";
import { chooseEncoding, type Encoding, gzipQuality } from "../lib/middlewares/compress/accept_encoding.ts";
import { parseMediaType } from "../lib/middlewares/compress/media_type.ts";

Deno.test("chooseEncoding: Traefik's weights, priorities, wildcard and identity", () => {
  const all: Encoding[] = ["gzip", "br", "zstd"];
  const cases: [string, Encoding[], Encoding | "", string][] = [
    ["gzip", all, "", "gzip"],
    ["gzip, br", all, "", "gzip"],
    ["br, zstd", all, "", "br"],
    ["gzip;q=1.0, br;q=0.5", all, "", "gzip"],
    ["br;q=0, gzip", all, "", "gzip"],
    ["*", all, "", "gzip"],
    ["*", all, "br", "br"],
    // At equal weight the wildcard ranks first.
    ["zstd, *", all, "", "gzip"],
    ["identity", all, "", "identity"],
    ["", all, "gzip", "identity"],
    ["deflate, compress", all, "", "not_acceptable"],
    // Names are matched exactly, as Traefik does.
    ["GZIP", all, "", "not_acceptable"],
    ["br", ["gzip"], "", "not_acceptable"],
    ["gzip;q=abc", all, "", "not_acceptable"],
    // Spaces are dropped, tabs are not.
    ["gzip ; q=0.5 , br;q=0.4", all, "", "gzip"],
    ["\tgzip", all, "", "not_acceptable"],
  ];
  for (const [header, supported, def, want] of cases) {
    assert.equal(chooseEncoding(header, supported, def), want, `${header} ${supported} ${def}`);
  }
});

Deno.test("gzipQuality: gzhttp's reading of Accept-Encoding", () => {
  const cases: [string | null, number][] = [
    [null, 0],
    ["", 0],
    ["*", 0],
    ["gzip", 1],
    ["br, GZIP ;q=0.5", 0.5],
    ["gzip;q=2", 1],
    ["gzip;q=0", 0],
    ["gzip;q=x", 0],
  ];
  for (const [header, want] of cases) assert.equal(gzipQuality(header), want, String(header));
});

Deno.test("parseMediaType: Go's mime.ParseMediaType", () => {
  const cases: [string, string, Record<string, string>, string?][] = [
    ["text/html", "text/html", {}],
    ["Text/HTML; Charset=utf-8", "text/html", { charset: "utf-8" }],
    ['application/json;  a="x;y" ;b=c;', "application/json", { a: "x;y", b: "c" }],
    ["application/json;charset=UTF-8;charset=utf-8", "", {}, "duplicate parameter name"],
    ["application/json;charset=utf-8;charset=utf-8", "application/json", { charset: "utf-8" }],
    ["text/plain; charset", "text/plain", {}, "invalid media parameter"],
    ["", "", {}, "no media type"],
    ["text/", "", {}, "expected token after slash"],
    ["a b", "", {}, "expected slash after first token"],
    ["text", "text", {}],
  ];
  for (const [value, type, params, error] of cases) {
    const got = parseMediaType(value);
    assert.equal(got.type, type, value);
    assert.deepEqual(Object.fromEntries(got.params), params, value);
    assert.equal(got.error, error, value);
  }
});

type Got = { status: number; headers: http.IncomingHttpHeaders; body: Uint8Array };

function get(
  port: number,
  host: string,
  path: string,
  headers: Record<string, string>,
  method = "GET",
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      path,
      method,
      headers: { host, ...headers },
      agent: false,
    }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on(
        "end",
        () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body: new Uint8Array(Buffer.concat(chunks)),
          }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

function decode(encoding: string | undefined, body: Uint8Array): string {
  const buf = Buffer.from(body);
  const z = zlib as unknown as { zstdDecompressSync(b: Buffer): Buffer };
  const out = encoding === "gzip"
    ? zlib.gunzipSync(buf)
    : encoding === "br"
    ? zlib.brotliDecompressSync(buf)
    : encoding === "zstd"
    ? z.zstdDecompressSync(buf)
    : buf;
  return new TextDecoder().decode(out);
}

Deno.test("compress: encoding choice, size threshold, content types, no double compression, streaming", async () => {
  const big = "hello compress ".repeat(200); // 3000 bytes
  let releaseStream: () => void = () => {};
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/small") {
      return new Response("tiny", { headers: { "content-type": "text/plain" } });
    }
    if (path === "/encoded") {
      return new Response(big, {
        headers: { "content-type": "text/plain", "content-encoding": "gzip" },
      });
    }
    if (path === "/image") return new Response(big, { headers: { "content-type": "image/png" } });
    if (path === "/grpc") {
      return new Response(big, { headers: { "content-type": "application/grpc" } });
    }
    if (path === "/sse") {
      return new Response(big, { headers: { "content-type": "Text/Event-Stream; charset=utf-8" } });
    }
    if (path === "/chunked-small") {
      // No Content-Length: the middleware must look at the bytes to decide.
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode("short"));
            c.close();
          },
        }),
        { headers: { "content-type": "text/plain" } },
      );
    }
    if (path === "/stream") {
      // First 2000 bytes, then wait: the client must get them compressed before the rest exists.
      const wait = new Promise<void>((r) => (releaseStream = r));
      return new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(new TextEncoder().encode("a".repeat(2000)));
            await wait;
            c.enqueue(new TextEncoder().encode("b".repeat(10)));
            c.close();
          },
        }),
        { headers: { "content-type": "text/plain" } },
      );
    }
    return new Response(big, {
      headers: { "content-type": "text/html; charset=utf-8", "vary": "Cookie" },
    });
  });
  const url = `http://127.0.0.1:${(upstream.addr as Deno.NetAddr).port}`;
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.def]
rule = "Host(\`def.test\`)"
service = "up"
middlewares = ["def"]
[http.routers.custom]
rule = "Host(\`custom.test\`)"
service = "up"
middlewares = ["custom"]
[http.routers.incl]
rule = "Host(\`incl.test\`)"
service = "up"
middlewares = ["incl"]
[http.routers.both]
rule = "Host(\`both.test\`)"
service = "up"
middlewares = ["both"]
[http.routers.brdefault]
rule = "Host(\`brdefault.test\`)"
service = "up"
middlewares = ["brdefault"]
[http.routers.badenc]
rule = "Host(\`badenc.test\`)"
service = "up"
middlewares = ["badenc"]
[http.middlewares.def.compress]
[http.middlewares.custom.compress]
encodings = ["gzip", "br"]
defaultEncoding = "gzip"
excludedContentTypes = ["text/event-stream"]
minResponseBodyBytes = 10
[http.middlewares.brdefault.compress]
defaultEncoding = "br"
[http.middlewares.incl.compress]
includedContentTypes = ["image/png"]
[http.middlewares.both.compress]
includedContentTypes = ["text/html"]
excludedContentTypes = ["text/plain"]
[http.middlewares.badenc.compress]
encodings = ["deflate"]
[http.services.up.loadBalancer]
servers = [{ url = "${url}" }]
`,
  });
  try {
    const port = proxy.port();
    const cases: {
      name: string;
      host: string;
      path: string;
      ae?: string;
      method?: string;
      encoding?: string;
    }[] = [
      {
        name: "gzip first by default",
        host: "def.test",
        path: "/",
        ae: "zstd, br, gzip",
        encoding: "gzip",
      },
      { name: "br before zstd", host: "def.test", path: "/", ae: "zstd, br", encoding: "br" },
      {
        name: "q-value wins over order",
        host: "def.test",
        path: "/",
        ae: "br;q=0.5, gzip",
        encoding: "gzip",
      },
      { name: "no Accept-Encoding", host: "def.test", path: "/", encoding: undefined },
      { name: "empty Accept-Encoding", host: "def.test", path: "/", ae: "", encoding: undefined },
      {
        name: "below 1024 by Content-Length",
        host: "def.test",
        path: "/small",
        ae: "gzip",
        encoding: undefined,
      },
      {
        // Traefik's proxy flushes a streamed answer as it goes, which makes its
        // handlers compress it whatever its size.
        name: "below 1024 but streamed: compressed",
        host: "def.test",
        path: "/chunked-small",
        ae: "gzip",
        encoding: "gzip",
      },
      {
        name: "already encoded",
        host: "def.test",
        path: "/encoded",
        ae: "gzip",
        encoding: "gzip-upstream",
      },
      {
        name: "grpc always excluded by default",
        host: "def.test",
        path: "/grpc",
        ae: "gzip",
        encoding: undefined,
      },
      {
        name: "HEAD untouched",
        host: "def.test",
        path: "/",
        ae: "gzip",
        method: "HEAD",
        encoding: undefined,
      },
      {
        name: "configured order: gzip first",
        host: "custom.test",
        path: "/",
        ae: "br, gzip",
        encoding: "gzip",
      },
      {
        name: "zstd not in encodings",
        host: "custom.test",
        path: "/",
        ae: "zstd",
        encoding: undefined,
      },
      {
        // gzhttp wants a gzip token in the header: a gzip default alone does not compress.
        name: "defaultEncoding gzip, header absent",
        host: "custom.test",
        path: "/",
        encoding: undefined,
      },
      {
        name: "defaultEncoding br, header absent",
        host: "brdefault.test",
        path: "/",
        encoding: "br",
      },
      {
        name: "lower minResponseBodyBytes",
        host: "custom.test",
        path: "/small",
        ae: "gzip",
        encoding: undefined,
      },
      {
        name: "excluded type, case and params ignored",
        host: "custom.test",
        path: "/sse",
        ae: "gzip",
        encoding: undefined,
      },
      {
        name: "included type compressed",
        host: "incl.test",
        path: "/image",
        ae: "gzip",
        encoding: "gzip",
      },
      {
        name: "not included type left alone",
        host: "incl.test",
        path: "/",
        ae: "gzip",
        encoding: undefined,
      },
    ];
    for (const tc of cases) {
      const headers: Record<string, string> = tc.ae === undefined
        ? {}
        : { "accept-encoding": tc.ae };
      const res = await get(port, tc.host, tc.path, headers, tc.method);
      assert.equal(res.status, 200, tc.name);
      if (tc.encoding === "gzip-upstream") {
        assert.equal(res.headers["content-encoding"], "gzip", tc.name);
        assert.equal(
          new TextDecoder().decode(res.body),
          big,
          `${tc.name}: passed through, not compressed twice`,
        );
        continue;
      }
      assert.equal(res.headers["content-encoding"], tc.encoding, tc.name);
      if (tc.method === "HEAD") continue;
      const text = decode(tc.encoding, res.body);
      assert.ok(text === big || text === "tiny" || text === "short", `${tc.name}: body intact`);
      if (tc.encoding) {
        assert.equal(res.headers["content-length"], undefined, `${tc.name}: no stale length`);
        assert.match(String(res.headers["vary"]), /Accept-Encoding/, tc.name);
        assert.ok(res.body.length < big.length, `${tc.name}: smaller`);
      }
    }
    const html = await get(port, "def.test", "/", { "accept-encoding": "gzip" });
    assert.match(String(html.headers["vary"]), /^Accept-Encoding, Cookie$/, "existing Vary kept");

    // Streaming: the first compressed bytes arrive before the upstream finishes.
    const firstBytes = await new Promise<Uint8Array>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port,
        path: "/stream",
        headers: { host: "def.test", "accept-encoding": "gzip" },
        agent: false,
      }, (res) => {
        const chunks: Uint8Array[] = [];
        res.once("data", (c: Uint8Array) => {
          chunks.push(c);
          releaseStream();
        });
        res.on("end", () => resolve(Buffer.concat(chunks)));
        res.on("data", (c: Uint8Array) => chunks.length && chunks[0] !== c && chunks.push(c));
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(decode("gzip", firstBytes), "a".repeat(2000) + "b".repeat(10));

    const routers = proxy.server.watcher.current.routers;
    assert.match(
      routers.get("both@file")!.errors.join(),
      /middleware "both@file": option includedContentTypes: cannot be used together with excludedContentTypes/,
    );
    assert.match(
      routers.get("badenc@file")!.errors.join(),
      /middleware "badenc@file": option encodings\[0\]: expected one of gzip, br, zstd, found "deflate"/,
    );
  } finally {
    await proxy.close();
    await upstream.shutdown();
  }
});

Deno.test("compress: gzhttp's own rules on the gzip path, and none of them on br", async () => {
  const body = "x".repeat(3000);
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    const headers = new Headers({ "accept-ranges": "bytes" });
    if (path === "/range") headers.set("content-range", "bytes 0-2999/6000");
    if (path === "/optout") headers.set("no-gzip-compression", "1");
    if (path !== "/untyped") headers.set("content-type", "text/plain");
    // A byte stream, so that Deno sets no Content-Type of its own on /untyped.
    return new Response(new Blob([body]).stream(), { headers });
  });
  const url = `http://127.0.0.1:${(upstream.addr as Deno.NetAddr).port}`;
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.all]
rule = "PathPrefix(\`/\`)"
service = "up"
middlewares = ["gz"]
[http.middlewares.gz.compress]
[http.services.up.loadBalancer]
servers = [{ url = "${url}" }]
`,
  });
  try {
    const cases: {
      path: string;
      ae: string;
      encoding?: string;
      acceptRanges?: string;
      contentType?: string;
      optOutHeader?: boolean;
    }[] = [
      // Compressing drops Accept-Ranges on gzip (gzhttp), keeps it on br (Traefik's handler).
      { path: "/", ae: "gzip", encoding: "gzip", acceptRanges: undefined },
      { path: "/", ae: "br", encoding: "br", acceptRanges: "bytes" },
      // A partial answer is never gzipped; br does not look.
      { path: "/range", ae: "gzip", encoding: undefined },
      { path: "/range", ae: "br", encoding: "br" },
      // The opt-out header stops gzip and is removed; br passes it on.
      { path: "/optout", ae: "gzip", encoding: undefined, optOutHeader: false },
      { path: "/optout", ae: "br", encoding: "br", optOutHeader: true },
      // No Content-Type: gzip sniffs one and sets it, br leaves it unset.
      { path: "/untyped", ae: "gzip", encoding: "gzip", contentType: "text/plain; charset=utf-8" },
      { path: "/untyped", ae: "br", encoding: "br", contentType: undefined },
    ];
    for (const tc of cases) {
      const name = `${tc.path} ${tc.ae}`;
      const res = await get(proxy.port(), "any.test", tc.path, { "accept-encoding": tc.ae });
      assert.equal(res.headers["content-encoding"], tc.encoding, name);
      assert.equal(decode(tc.encoding, res.body), body, name);
      if ("acceptRanges" in tc) assert.equal(res.headers["accept-ranges"], tc.acceptRanges, name);
      if ("contentType" in tc) assert.equal(res.headers["content-type"], tc.contentType, name);
      if (tc.optOutHeader !== undefined) {
        assert.equal("no-gzip-compression" in res.headers, tc.optOutHeader, name);
      }
    }
  } finally {
    await proxy.close();
    await upstream.shutdown();
  }
});
