import assert from "node:assert/strict";
import http from "node:http";
import zlib from "node:zlib";
import { startTestProxy } from "../../../tests/fixtures/proxy.ts";
import { chooseEncoding, type Encoding } from "./accept_encoding.ts";

Deno.test("chooseEncoding: q-values, then the configured order, wildcard and identity", () => {
  const all: Encoding[] = ["zstd", "br", "gzip"];
  const cases: [string | null, Encoding[], Encoding | "", Encoding | undefined][] = [
    ["gzip", all, "", "gzip"],
    ["gzip, br", all, "", "br"],
    ["gzip, br, zstd", ["gzip", "br", "zstd"], "", "gzip"],
    ["gzip;q=1.0, br;q=0.5", all, "", "gzip"],
    ["br;q=0, gzip", all, "", "gzip"],
    ["*", all, "", "zstd"],
    ["*", all, "gzip", "gzip"],
    ["identity", all, "", undefined],
    ["", all, "gzip", undefined],
    [null, all, "", undefined],
    [null, all, "br", "br"],
    ["deflate, compress", all, "", undefined],
    ["GZIP", all, "", "gzip"],
    ["br", ["gzip"], "", undefined],
  ];
  for (const [header, supported, def, want] of cases) {
    assert.equal(chooseEncoding(header, supported, def), want, `${header} ${supported} ${def}`);
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
        name: "zstd first by default",
        host: "def.test",
        path: "/",
        ae: "gzip, br, zstd",
        encoding: "zstd",
      },
      { name: "br when no zstd", host: "def.test", path: "/", ae: "gzip, br", encoding: "br" },
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
        name: "below 1024, streamed",
        host: "def.test",
        path: "/chunked-small",
        ae: "gzip",
        encoding: undefined,
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
        name: "defaultEncoding when header absent",
        host: "custom.test",
        path: "/",
        encoding: "gzip",
      },
      {
        name: "lower minResponseBodyBytes",
        host: "custom.test",
        path: "/chunked-small",
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
    assert.match(String(html.headers["vary"]), /Cookie.*Accept-Encoding/, "existing Vary kept");

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
      /middleware "badenc@file": option encodings\[0\]: expected one of zstd, br, gzip, found "deflate"/,
    );
  } finally {
    await proxy.close();
    await upstream.shutdown();
  }
});
