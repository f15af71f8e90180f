/**
 * Streaming: a 1 GiB upload and a 1 GiB download pass through a Portico
 * process while its memory stays flat. The peak RSS is printed so the README
 * can quote it.
 */

import assert from "node:assert/strict";
import http from "node:http";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startProxyProcess } from "./fixtures/proxy_process.ts";

const SIZE = Number(Deno.env.get("PORTICO_STREAM_BYTES") ?? 1024 ** 3);
/** Far below SIZE: a proxy that buffered bodies could not stay under it. */
const RSS_LIMIT_KIB = 256 * 1024;

function upload(port: number, bytes: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/upload",
      agent: false,
      headers: { host: "stream.test", "content-length": String(bytes) },
    }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    const chunk = Buffer.alloc(256 * 1024, 98);
    let left = bytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          req.once("drain", pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

function download(port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: `/bytes/${bytes}`, agent: false, headers: { host: "stream.test" } }, (res) => {
      let got = 0;
      res.on("data", (c: Buffer) => (got += c.length));
      res.on("end", () => resolve(got));
      res.on("error", reject);
    }).on("error", reject);
  });
}

Deno.test({
  name: `streaming: ${SIZE} bytes up and down with flat proxy memory`,
  async fn() {
    const backend = startEchoBackend("stream");
    const proxy = await startProxyProcess(`
[http.routers.r]
rule = "Host(\`stream.test\`)"
service = "s"
[http.services.s.loadBalancer]
servers = [{ url = "${backend.url}" }]
`);
    try {
      const before = await proxy.rssKiB();
      const up = await upload(proxy.port, SIZE);
      assert.equal(up.status, 200);
      assert.equal(JSON.parse(up.body).bodyLength, SIZE, "the whole upload reached the backend");
      const got = await download(proxy.port, SIZE);
      assert.equal(got, SIZE, "the whole download reached the client");
      const peak = await proxy.peakRssKiB();
      console.log(`streaming ${SIZE} bytes each way: proxy RSS before ${Math.round(before / 1024)} MiB, peak ${Math.round(peak / 1024)} MiB`);
      assert.ok(peak < RSS_LIMIT_KIB, `peak RSS ${peak} KiB must stay under ${RSS_LIMIT_KIB} KiB`);
    } finally {
      await proxy.stop();
      await backend.close();
    }
  },
});
