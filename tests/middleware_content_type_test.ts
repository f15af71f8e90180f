import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { sniffContentType } from "../lib/middlewares/shared/sniff.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("sniffContentType: common signatures, text versus binary", () => {
  const cases: [Uint8Array, string][] = [
    [enc("  <!doctype html><html>"), "text/html; charset=utf-8"],
    [enc("<HTML>"), "text/html; charset=utf-8"],
    [enc("<p>hi</p>"), "text/html; charset=utf-8"],
    [enc("<!-- c -->"), "text/html; charset=utf-8"],
    [enc("<?xml version='1.0'?><a/>"), "text/xml; charset=utf-8"],
    [enc("%PDF-1.7"), "application/pdf"],
    [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]), "image/png"],
    [new Uint8Array([0xff, 0xd8, 0xff, 0xe0]), "image/jpeg"],
    [enc("GIF89a...."), "image/gif"],
    [enc("RIFF\x00\x00\x00\x00WEBPVP8 "), "image/webp"],
    [new Uint8Array([0x1f, 0x8b, 0x08, 0]), "application/x-gzip"],
    [enc('{"json": true}'), "text/plain; charset=utf-8"],
    [enc("<pre>"), "text/plain; charset=utf-8"],
    [new Uint8Array([1, 2, 3, 4]), "application/octet-stream"],
  ];
  for (const [data, want] of cases) {
    assert.equal(sniffContentType(data), want, new TextDecoder().decode(data));
  }
});

Deno.test("contentType: sets a sniffed type only when the upstream sent none", async () => {
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    const strip = (r: Response) => {
      r.headers.delete("content-type");
      return r;
    };
    if (path === "/html") return strip(new Response("<html><body>hi</body></html>"));
    if (path === "/typed") {
      return new Response("<html>", { headers: { "content-type": "text/x-custom" } });
    }
    if (path === "/empty") return strip(new Response(null, { status: 200 }));
    if (path === "/bin") return strip(new Response(new Uint8Array([0, 1, 2, 3])));
    return strip(new Response("just text"));
  });
  const url = `http://127.0.0.1:${(upstream.addr as Deno.NetAddr).port}`;
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.on]
rule = "Host(\`on.test\`)"
service = "up"
middlewares = ["detect"]
[http.routers.explicit]
rule = "Host(\`explicit.test\`)"
service = "up"
middlewares = ["explicit"]
[http.routers.off]
rule = "Host(\`off.test\`)"
service = "up"
middlewares = ["off"]
[http.routers.plain]
rule = "Host(\`plain.test\`)"
service = "up"
[http.routers.bad]
rule = "Host(\`bad.test\`)"
service = "up"
middlewares = ["bad"]
[http.middlewares.detect.contentType]
[http.middlewares.explicit.contentType]
autoDetect = true
[http.middlewares.off.contentType]
autoDetect = "false"
[http.middlewares.bad.contentType]
autodetect = "maybe"
[http.services.up.loadBalancer]
servers = [{ url = "${url}" }]
`,
  });
  try {
    const cases = [
      {
        host: "on.test",
        path: "/html",
        type: "text/html; charset=utf-8",
        body: "<html><body>hi</body></html>",
      },
      { host: "on.test", path: "/text", type: "text/plain; charset=utf-8", body: "just text" },
      { host: "on.test", path: "/bin", type: "application/octet-stream" },
      { host: "on.test", path: "/typed", type: "text/x-custom", body: "<html>" },
      { host: "on.test", path: "/empty", type: undefined, body: "" },
      { host: "explicit.test", path: "/html", type: "text/html; charset=utf-8" },
      { host: "off.test", path: "/html", type: undefined },
      { host: "plain.test", path: "/html", type: undefined, body: "<html><body>hi</body></html>" },
    ];
    for (const tc of cases) {
      const res = await rawGet(proxy.port(), tc.path, { host: tc.host });
      assert.equal(res.status, 200, `${tc.host}${tc.path}`);
      assert.equal(res.headers["content-type"], tc.type, `${tc.host}${tc.path}`);
      if (tc.body !== undefined) {
        assert.equal(res.body, tc.body, `${tc.host}${tc.path}: body intact`);
      }
    }
    assert.match(
      proxy.server.watcher.current.routers.get("bad@file")!.errors.join(),
      /middleware "bad@file": option autoDetect: expected true or false, found "maybe"/,
    );
  } finally {
    await proxy.close();
    await upstream.shutdown();
  }
});
