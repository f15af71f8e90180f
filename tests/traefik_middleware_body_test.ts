/**
 * Traefik's (and oxy's) own test tables for compress, buffering, retry,
 * errors, circuitBreaker and inFlightReq, transcribed as data in
 * tests/data/traefik_mw_*.json (sources and the cases that cannot apply
 * over HTTP are in the .md beside each), each case sent over real HTTP
 * through a running Portico to real upstreams.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http from "node:http";
import zlib from "node:zlib";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import {
  type Json,
  middlewareToml,
  readTestData,
  routerToml,
  serviceToml,
} from "./fixtures/traefik_tables.ts";
import { freePort } from "./fixtures/ports.ts";
import { chooseEncoding, type Encoding } from "../lib/middlewares/compress/accept_encoding.ts";
import { parseExpression } from "../lib/middlewares/circuit_breaker/expression.ts";
import { RollingMetrics } from "../lib/middlewares/circuit_breaker/metrics.ts";

/** Traefik's generateBytes: byte i is 0x61 + i. */
function generateBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (0x61 + i) & 0xff;
  return out;
}

function bodyOf(spec: Json): Uint8Array {
  if (spec === undefined || spec === null) return new Uint8Array();
  if (typeof spec === "string") return new TextEncoder().encode(spec);
  if (spec.generate !== undefined) return generateBytes(spec.generate);
  if (spec.repeat !== undefined) return new TextEncoder().encode(spec.repeat.repeat(spec.times));
  return new TextEncoder().encode(spec.text ?? "");
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  statusMessage: string;
  body: Uint8Array;
}

/** One request with exact headers and an optional body (a string, or chunks sent chunked). */
function request(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; chunks?: string[] } =
    {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers = { ...options.headers };
    if (options.body !== undefined) {
      headers["content-length"] = String(Buffer.byteLength(options.body));
    }
    const req = http.request({
      host: "127.0.0.1",
      port,
      path,
      method: options.method ?? "GET",
      headers,
      agent: false,
    }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          statusMessage: res.statusMessage ?? "",
          body: new Uint8Array(Buffer.concat(chunks)),
        }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (options.chunks) {
      for (const c of options.chunks) req.write(c);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

/** A node:http upstream whose answer per request is decided by `handle`. */
async function startUpstream(
  handle: (
    req: http.IncomingMessage,
    body: Buffer,
    res: http.ServerResponse,
  ) => void | Promise<void>,
) {
  const server = http.createServer((req, res) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("end", () => void handle(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

function decode(encoding: string | undefined, body: Uint8Array): Uint8Array {
  const buf = Buffer.from(body);
  const z = zlib as unknown as { zstdDecompressSync(b: Buffer): Buffer };
  const out = encoding === "gzip"
    ? zlib.gunzipSync(buf)
    : encoding === "br"
    ? zlib.brotliDecompressSync(buf)
    : encoding === "zstd"
    ? z.zstdDecompressSync(buf)
    : buf;
  return new Uint8Array(out);
}

const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/** Writes `body` as the Go handler of a case does: at once, or in flushed pieces (chunked). */
async function writeBody(res: http.ServerResponse, body: Uint8Array, spec: Json) {
  if (!spec.streamed) {
    res.end(body);
    return;
  }
  const pieces: Uint8Array[] = [];
  if (spec.chunks === "one-then-bytes") {
    pieces.push(body.subarray(0, 1));
    for (let i = 1; i < body.length; i += 97) pieces.push(body.subarray(i, i + 97));
  } else if (spec.chunks === "bytes" || spec.chunks === "100") {
    const size = spec.chunks === "100" ? 100 : 61;
    for (let i = 0; i < body.length; i += size) pieces.push(body.subarray(i, i + size));
  } else if (body.length > 0) pieces.push(body);
  res.flushHeaders();
  for (const p of pieces) {
    res.write(p);
    await delay(1);
  }
  res.end();
}

Deno.test("traefik compress tables over real HTTP", async () => {
  const data = readTestData("traefik_mw_compress");
  const cases = data.cases as Json[];
  const seenAcceptEncoding = new Map<string, string | undefined>();
  const upstream = await startUpstream(async (req, _body, res) => {
    const i = Number((req.url ?? "").slice(2));
    const tc = cases[i];
    seenAcceptEncoding.set(req.url!, req.headers["accept-encoding"] as string | undefined);
    const r = tc.response;
    const body = bodyOf(r.body);
    const headers: Record<string, string> = { ...r.headers };
    if (!r.streamed) headers["content-length"] = String(body.length);
    res.writeHead(r.status ?? 200, headers);
    if (r.status === 204 || r.status === 304) return void res.end();
    await writeBody(res, body, r);
  });
  let toml = serviceToml("up", [upstream.url]);
  cases.forEach((tc, i) => {
    toml += routerToml(`c${i}`, `Host(\`c${i}.test\`)`, "up", [`m${i}`]);
    toml += middlewareToml(`m${i}`, "compress", tc.config);
  });
  const proxy = await startTestProxy({ dynamic: toml });
  try {
    for (const [i, tc] of cases.entries()) {
      const name = `${tc.file} ${tc.test}: ${tc.desc}`;
      const state = proxy.server.watcher.current!.routers.get(`c${i}@file`)!;
      assert.equal(state.status, "enabled", `${name}: ${state.errors}`);
      const headers: Record<string, string> = { host: `c${i}.test` };
      if (tc.request.acceptEncoding !== null && tc.request.acceptEncoding !== undefined) {
        headers["accept-encoding"] = tc.request.acceptEncoding;
      }
      if (tc.request.contentType) headers["content-type"] = tc.request.contentType;
      const res = await request(proxy.port(), `/c${i}`, { method: tc.request.method, headers });
      const e = tc.expect;
      const sent = bodyOf(tc.response.body);
      assert.equal(res.status, e.status ?? 200, name);
      if ("contentEncoding" in e) {
        assert.equal(
          res.headers["content-encoding"],
          e.contentEncoding ?? undefined,
          `${name}: Content-Encoding`,
        );
      }
      if ("vary" in e) {
        const first = res.headers["vary"]?.split(",")[0].trim();
        assert.equal(first, e.vary ?? undefined, `${name}: Vary`);
      }
      if (e.bodySame) assert.ok(sameBytes(res.body, sent), `${name}: body untouched`);
      if (e.bodyChanged) assert.ok(!sameBytes(res.body, sent), `${name}: body compressed`);
      if (e.bodyEmpty) assert.equal(res.body.length, 0, `${name}: no body`);
      if (e.decodesTo === "same" && tc.request.method !== "HEAD") {
        assert.ok(
          sameBytes(decode(res.headers["content-encoding"], res.body), sent),
          `${name}: decodes to the body`,
        );
      }
      if ("upstreamAcceptEncoding" in e) {
        assert.equal(
          seenAcceptEncoding.get(`/c${i}`),
          e.upstreamAcceptEncoding,
          `${name}: upstream Accept-Encoding`,
        );
      }
      if (e.contentEncoding && !tc.response.headers?.["Content-Encoding"]) {
        assert.equal(res.headers["content-length"], undefined, `${name}: no stale length`);
      }
    }
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

Deno.test("traefik compress: Test_getCompressionEncoding, as a choice and over real HTTP", async () => {
  const data = readTestData("traefik_mw_compress");
  const table = data.negotiation as Json[];
  for (const tc of table) {
    assert.equal(
      chooseEncoding(tc.acceptEncoding, tc.encodings as Encoding[], tc.defaultEncoding),
      tc.expected,
      tc.desc,
    );
  }
  const body = generateBytes(4096);
  const upstream = await startUpstream((_req, _b, res) => {
    res.writeHead(200, { "content-length": String(body.length) });
    res.end(body);
  });
  let toml = serviceToml("up", [upstream.url]);
  table.forEach((tc, i) => {
    toml += routerToml(`n${i}`, `Host(\`n${i}.test\`)`, "up", [`n${i}`]);
    toml += middlewareToml(`n${i}`, "compress", {
      encodings: tc.encodings,
      ...(tc.defaultEncoding ? { defaultEncoding: tc.defaultEncoding } : {}),
    });
  });
  const proxy = await startTestProxy({ dynamic: toml });
  try {
    for (const [i, tc] of table.entries()) {
      const res = await request(proxy.port(), "/", {
        headers: { host: `n${i}.test`, "accept-encoding": tc.acceptEncoding },
      });
      assert.equal(res.status, 200, tc.desc);
      assert.equal(
        res.headers["content-encoding"],
        tc.overHttpEncoding ?? undefined,
        `${tc.desc} over HTTP`,
      );
      assert.ok(sameBytes(decode(res.headers["content-encoding"], res.body), body), tc.desc);
    }
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

Deno.test("traefik/oxy buffering tables over real HTTP", async () => {
  const data = readTestData("traefik_mw_buffering");
  const cases = data.cases as Json[];
  const recorded = new Map<string, { body: string; contentLength?: string }>();
  const handle = async (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => {
    const i = Number((req.url ?? "").split("/")[1].slice(1));
    const u = cases[i].upstream;
    recorded.set(`c${i}`, { body: body.toString(), contentLength: req.headers["content-length"] });
    const headers: Record<string, string> = { ...u.headers };
    if (u.echoBody) {
      return void res.writeHead(200, { "content-length": String(body.length) }).end(body);
    }
    if (u.chunks) {
      res.writeHead(u.status ?? 200, headers);
      res.flushHeaders();
      for (const c of u.chunks) {
        res.write(c);
        await delay(1);
      }
      return void res.end();
    }
    // The live server of the retry cases answers "hello", as oxy's does.
    const answer = u.servers ? "hello" : u.body;
    if (answer === undefined) return void res.writeHead(u.status ?? 200, headers).end();
    const text = bodyOf(answer);
    res.writeHead(u.status ?? 200, { ...headers, "content-length": String(text.length) });
    res.end(text);
  };
  const upstream = await startUpstream(handle);
  const dead = freePort();
  let toml = "";
  cases.forEach((tc, i) => {
    const urls = tc.upstream.servers
      ? tc.upstream.servers.map((
        s: string,
      ) => (s === "refused" ? `http://127.0.0.1:${dead}` : upstream.url))
      : [upstream.url];
    toml += serviceToml(`s${i}`, urls);
    toml += routerToml(`c${i}`, `PathPrefix(\`/c${i}\`)`, `s${i}`, [`m${i}`]);
    toml += middlewareToml(`m${i}`, "buffering", tc.config);
  });
  const proxy = await startTestProxy({ dynamic: toml });
  try {
    for (const [i, tc] of cases.entries()) {
      const name = `${tc.source} ${tc.test}: ${tc.desc}`;
      const state = proxy.server.watcher.current!.routers.get(`c${i}@file`)!;
      assert.equal(state.status, "enabled", `${name}: ${state.errors}`);
      const r = tc.request;
      const body = r.bodySize !== undefined ? "p".repeat(r.bodySize) : r.body;
      const res = await request(proxy.port(), `/c${i}`, {
        method: r.method,
        body,
        chunks: r.chunks,
      });
      const e = tc.expect;
      assert.equal(res.status, e.status, name);
      if (e.statusLine) {
        assert.equal(`HTTP/1.1 ${res.status} ${res.statusMessage}`, e.statusLine, name);
      }
      if (e.body !== undefined) {
        assert.equal(new TextDecoder().decode(res.body), e.body, `${name}: body`);
      }
      if (e.contentLength) {
        assert.equal(res.headers["content-length"], e.contentLength, `${name}: Content-Length`);
      }
      const seen = recorded.get(`c${i}`);
      if (e.upstreamBody !== undefined) {
        assert.equal(seen?.body, e.upstreamBody, `${name}: upstream body`);
      }
      if (e.upstreamContentLength) {
        assert.equal(
          seen?.contentLength,
          e.upstreamContentLength,
          `${name}: upstream Content-Length`,
        );
      }
    }
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

/** A TCP server that accepts and never answers: TLS to it hangs until the dial timeout. */
function startSilentServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      accepted++;
      conns.push(conn);
    }
  })().catch(() => {});
  return {
    url: `https://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    accepted: () => accepted,
    close: () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

/** An upgrade request; the status of the answer (101, or what came instead). */
function upgrade(port: number, path: string, closeAfter = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      path,
      agent: false,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    req.on("upgrade", (res, socket) => {
      if (closeAfter) socket.destroy();
      else socket.end();
      resolve(res.statusCode!);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on("error", reject);
    req.end();
  });
}


Deno.test("traefik retry table over real HTTP", async () => {
  const data = readTestData("traefik_mw_retry");
  const cases = data.cases as Json[];
  const dead = freePort();
  // Per case: calls to its scripted servers, and what the client must see.
  const calls = cases.map(() => 0);
  const headSeen = cases.map(() => Promise.withResolvers<void>());
  const upstream = await startUpstream(async (req, body, res) => {
    const [, kase] = (req.url ?? "").split("/");
    const i = Number(kase.slice(1));
    const tc = cases[i];
    const spec = tc.upstreams.find((u: Json) => typeof u === "object") ?? {};
    const n = calls[i]++;
    if (spec.script) {
      // The shared counter of Traefik's handler also counts the network failures before it.
      const index = n + spec.tcpFailures;
      if (spec.delayMs) await delay(spec.delayMs);
      if (tc.request.body !== undefined) {
        assert.equal(body.toString(), tc.request.body, `${tc.desc}: body replayed`);
      }
      const status = spec.script[index] ?? 403;
      const headers: Record<string, string> = {
        [`x-attempt-${index}`]: "value",
        "content-length": "0",
      };
      if (status === 200) headers["x-final"] = "success";
      return void res.writeHead(status, headers).end();
    }
    if (spec.chunks) {
      res.writeHead(200);
      for (const c of spec.chunks) {
        res.write(c);
        await delay(5);
      }
      return void res.end();
    }
    const status = spec.statuses?.[Math.min(n, spec.statuses.length - 1)] ?? 200;
    const text = spec.body ?? "ok";
    res.writeHead(status, { ...spec.headers, "content-length": String(text.length) });
    res.end(text);
  });
  // POSTs with a slow body: the upstream must see the head before the body is complete.
  const streaming = http.createServer((req, res) => {
    const i = Number((req.url ?? "").split("/")[1].slice(1));
    headSeen[i].resolve();
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-length": "2" }).end("ok"));
  });
  await new Promise<void>((r) => streaming.listen(0, "127.0.0.1", () => r()));
  const streamingUrl = `http://127.0.0.1:${(streaming.address() as { port: number }).port}`;
  const wsHits = cases.map(() => 0);
  const sockets: WebSocket[] = [];
  const ws = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    wsHits[Number(new URL(req.url).pathname.slice(3))]++;
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onerror = () => {};
    sockets.push(socket);
    return response;
  });
  const wsUrl = `http://127.0.0.1:${(ws.addr as Deno.NetAddr).port}`;
  const silent = cases.map(() => startSilentServer());
  const authAnswers = new Map<string, number[]>();
  const authCalls = new Map<string, number>();
  const auth = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    const n = authCalls.get(path) ?? 0;
    authCalls.set(path, n + 1);
    const answers = authAnswers.get(path)!;
    return new Response(null, { status: answers[Math.min(n, answers.length - 1)] });
  });
  const authUrl = `http://127.0.0.1:${(auth.addr as Deno.NetAddr).port}`;

  let toml = `[http.serversTransports.quickdial.forwardingTimeouts]\ndialTimeout = "100ms"\n`;
  cases.forEach((tc, i) => {
    const urls: string[] = [];
    let transport: string | undefined;
    for (const u of tc.upstreams) {
      if (u === "refused") urls.push(`http://127.0.0.1:${dead}`);
      else if (u === "ok") urls.push(`${upstream.url}`);
      else if (u === "websocket") urls.push(wsUrl);
      else if (tc.request.slowBody) urls.push(streamingUrl);
      else if (u.script) {
        // Network failures first (a dial that times out, as the unit test's 504 without a
        // request written), then one scripted server per remaining attempt, in round-robin order.
        for (let k = 0; k < u.tcpFailures; k++) urls.push(silent[i].url);
        if (u.tcpFailures > 0) transport = "quickdial";
        for (let k = u.tcpFailures; k < Math.max(tc.config.attempts, 1); k++) {
          urls.push(upstream.url);
        }
      } else urls.push(upstream.url);
    }
    toml += serviceToml(`s${i}`, urls, transport);
    const chain = [`r${i}`];
    if (tc.authAnswers) {
      authAnswers.set(`/a${i}`, tc.authAnswers);
      chain.push(`a${i}`);
      toml += middlewareToml(`a${i}`, "forwardAuth", { address: `${authUrl}/a${i}` });
    }
    const prefix = tc.request.websocket ? `/ws${i}` : `/c${i}`;
    toml += routerToml(`c${i}`, `PathPrefix(\`${prefix}\`)`, `s${i}`, chain);
    toml += middlewareToml(`r${i}`, "retry", tc.config);
  });
  data.configValidation.forEach((v: Json, i: number) => {
    toml += serviceToml(`vs${i}`, [upstream.url]);
    toml += routerToml(`v${i}`, `PathPrefix(\`/v${i}\`)`, `vs${i}`, [`v${i}`]);
    toml += middlewareToml(`v${i}`, "retry", v.config);
  });
  const proxy = await startTestProxy({ dynamic: toml });
  const port = proxy.port();
  try {
    for (const [i, v] of (data.configValidation as Json[]).entries()) {
      const state = proxy.server.watcher.current!.routers.get(`v${i}@file`)!;
      assert.equal(state.status, v.valid ? "enabled" : "disabled", `${v.desc}: ${state.errors}`);
      if (!v.valid) {
        assert.match(
          state.errors.join("\n"),
          new RegExp(`middleware "v${i}@file": .*option ${v.error}`),
          v.desc,
        );
      }
    }
    for (const [i, tc] of cases.entries()) {
      const name = `${tc.test}: ${tc.desc}`;
      const state = proxy.server.watcher.current!.routers.get(`c${i}@file`)!;
      assert.equal(state.status, "enabled", `${name}: ${state.errors}`);
      const e = tc.expect;
      const r = tc.request;
      let res: Reply | undefined;
      let status: number;
      if (r.websocket) {
        status = await upgrade(port, `/ws${i}`, r.closeAfter);
        if (r.closeAfter) await delay(300);
      } else if (r.slowBody) {
        const sent = new Promise<Reply>((resolve, reject) => {
          const req = http.request({
            host: "127.0.0.1",
            port,
            path: `/c${i}`,
            method: "POST",
            agent: false,
            headers: { "content-length": "10" },
          }, (res) => {
            const chunks: Uint8Array[] = [];
            res.on("data", (c: Uint8Array) => chunks.push(c));
            res.on(
              "end",
              () =>
                resolve({
                  status: res.statusCode!,
                  headers: res.headers,
                  statusMessage: "",
                  body: Buffer.concat(chunks),
                }),
            );
          });
          req.on("error", reject);
          req.write("12345");
          const early = Promise.race([
            headSeen[i].promise.then(() => true),
            delay(2000).then(() => false),
          ]);
          early.then((seen) => {
            assert.ok(seen, `${name}: the upstream saw the request before its body was complete`);
            req.end("67890");
          });
        });
        res = await sent;
        status = res.status;
      } else {
        res = await request(port, `/c${i}`, { method: r.method, body: r.body });
        status = res.status;
      }
      assert.equal(status, e.status, name);
      if (e.body !== undefined) {
        assert.equal(new TextDecoder().decode(res!.body), e.body, `${name}: body`);
      }
      for (const [k, v] of Object.entries(e.headers ?? {})) {
        assert.equal(res!.headers[k], v, `${name}: ${k}`);
      }
      if (e.authCalls !== undefined) {
        assert.equal(authCalls.get(`/a${i}`), e.authCalls, `${name}: auth calls`);
      }
      if (e.upstreamCalls !== undefined) {
        assert.equal(wsHits[i], e.upstreamCalls, `${name}: upstream calls`);
      }
      const kinds = tc.upstreams as Json[];
      const scripted = kinds.find((u) => typeof u === "object" && u.script);
      if (scripted) {
        // Every attempt is either a dial that timed out or a call to a scripted server.
        const attempts = calls[i] + silent[i].accepted();
        assert.equal(attempts, e.retries + 1, `${name}: attempts`);
        if (e.status === 200) {
          assert.equal(res!.headers["x-final"], "success", `${name}: final headers`);
          assert.equal(
            res!.headers[`x-attempt-${e.retries}`],
            "value",
            `${name}: last attempt's headers`,
          );
          for (let k = 0; k < e.retries; k++) {
            assert.equal(
              res!.headers[`x-attempt-${k}`],
              undefined,
              `${name}: no headers of attempt ${k}`,
            );
          }
        }
      } else if (kinds.includes("refused")) {
        // Round robin: the live server answers only after every dead one before it was tried.
        const faulty = kinds.filter((k) => k === "refused").length;
        const live = kinds.includes("websocket") ? wsHits[i] : calls[i];
        assert.equal(
          live,
          e.status === 101 || e.status === 200 ? 1 : 0,
          `${name}: live server reached`,
        );
        assert.equal(
          e.retries,
          Math.min(faulty, tc.config.attempts - 1),
          `${name}: retries in the data`,
        );
      } else if (
        e.retries !== undefined && !r.slowBody && kinds.some((k) => typeof k === "object")
      ) {
        assert.equal(calls[i], e.retries + 1, `${name}: calls`);
      }
    }
  } finally {
    await proxy.close();
    // One by one, the WebSockets closed first: shutting the servers down together could hang.
    for (const socket of sockets) socket.close();
    await upstream.close();
    await ws.shutdown();
    await auth.shutdown();
    await new Promise<void>((r) => streaming.close(() => r()));
    for (const s of silent) s.close();
  }
});

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  206: "Partial Content",
  304: "Not Modified",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

Deno.test("traefik errors (custom error pages) table over real HTTP", async () => {
  const data = readTestData("traefik_mw_errors");
  const cases = data.cases as Json[];
  // The service whose errors are caught: Traefik's test handler writes the status and its text.
  const backend = await startUpstream((req, _b, res) => {
    const code = Number(req.headers["x-code"]);
    if (code === 304) return void res.writeHead(304).end();
    const text = `${STATUS_TEXT[code]}\n`;
    res.writeHead(code, { "content-length": String(text.length) }).end(text);
  });
  // One error-page service per case: the page request of some cases carries no header to tell them apart.
  const pages = await Promise.all(cases.map((tc) =>
    startUpstream((req, _b, res) => {
      const p = tc.page;
      let text = "";
      if (p.onlyFor !== undefined) text = req.url === p.onlyFor ? p.body : "";
      else if (p.echo === "host") text = `${req.headers.host}\n`;
      else if (Array.isArray(p.echo)) {
        text = p.echo.map((h: string) => `${req.headers[h] ?? ""}\n`).join("");
      } else text = p.body;
      res.writeHead(200, { "content-length": String(Buffer.byteLength(text)) }).end(text);
    })
  ));
  let toml = serviceToml("app", [backend.url]);
  cases.forEach((tc, i) => {
    toml += serviceToml(`error${i}`, [pages[i].url]);
    toml += routerToml(
      `c${i}`,
      `Host(\`${data.request.host}\`) && Header(\`x-case\`, \`${i}\`)`,
      "app",
      [`m${i}`],
    );
    toml += middlewareToml(`m${i}`, "errors", { service: `error${i}`, ...tc.config });
  });
  const proxy = await startTestProxy({ dynamic: toml });
  try {
    for (const [i, tc] of cases.entries()) {
      const name = `${tc.test}: ${tc.desc}`;
      const state = proxy.server.watcher.current!.routers.get(`c${i}@file`)!;
      assert.equal(state.status, "enabled", `${name}: ${state.errors}`);
      const res = await request(proxy.port(), data.request.path, {
        headers: {
          host: data.request.host,
          "x-case": String(i),
          "x-code": String(tc.backendCode),
          ...tc.requestHeaders,
        },
      });
      const body = new TextDecoder().decode(res.body);
      const e = tc.expect;
      if (e.status !== undefined) assert.equal(res.status, e.status, name);
      for (const text of [e.bodyContains ?? []].flat()) {
        assert.ok(body.includes(text), `${name}: body ${JSON.stringify(body)} has ${text}`);
      }
      for (const text of e.bodyNotContains ?? []) {
        assert.ok(!body.includes(text), `${name}: body ${JSON.stringify(body)} lacks ${text}`);
      }
    }
  } finally {
    await proxy.close();
    await Promise.all([backend.close(), ...pages.map((p) => p.close())]);
  }
});

/** Records `counts` of each kind of sample in a fresh metrics window, as oxy's test helpers do. */
function windowOf(counts: Record<string, number>): RollingMetrics {
  const m = new RollingMetrics();
  for (const [kind, n] of Object.entries(counts)) {
    for (let k = 0; k < n; k++) {
      if (kind === "ok") m.record(1, 200, 1, false);
      else if (kind === "err") m.record(1, 502, 1, true);
      else if (kind === "slow") m.record(1, 200, 51, false);
      else m.record(1, Number(kind), 1, false);
    }
  }
  return m;
}

Deno.test("oxy circuitBreaker expressions: what trips, and what Traefik accepts or refuses, over real HTTP", async () => {
  const data = readTestData("traefik_mw_circuitbreaker");
  // First, exactly oxy's windows.
  for (const tc of data.tripped as Json[]) {
    assert.equal(
      parseExpression(tc.expression)(windowOf(tc.metrics).view(1)),
      tc.tripped,
      tc.expression,
    );
  }
  const backend = startEchoBackend("cb");
  const dead = freePort();
  let toml = serviceToml("live", [backend.url]) + serviceToml("dead", [`http://127.0.0.1:${dead}`]);
  (data.tripped as Json[]).forEach((tc, i) => {
    toml += routerToml(`t${i}`, `Host(\`t${i}.test\`)`, "live", [`t${i}`]);
    toml += routerToml(`t${i}err`, `Host(\`t${i}err.test\`)`, "dead", [`t${i}`]);
    toml += middlewareToml(`t${i}`, "circuitBreaker", {
      expression: tc.expression,
      checkPeriod: "1500ms",
    });
  });
  const checked = [
    ...data.accepted.map((x: string) => ({ expression: x, valid: true })),
    ...data.refused.map((r: Json) => ({ ...r, valid: false })),
  ];
  checked.forEach((tc: Json, i: number) => {
    toml += routerToml(`x${i}`, `Host(\`x${i}.test\`)`, "live", [`x${i}`]);
    toml += middlewareToml(`x${i}`, "circuitBreaker", { expression: tc.expression });
  });
  const proxy = await startTestProxy({ dynamic: toml });
  const port = proxy.port();
  try {
    for (const [i, tc] of checked.entries()) {
      const state = proxy.server.watcher.current!.routers.get(`x${i}@file`)!;
      assert.equal(
        state.status,
        tc.valid ? "enabled" : "disabled",
        `${tc.expression} (${tc.why ?? "valid"}): ${state.errors}`,
      );
      if (!tc.valid) {
        assert.match(
          state.errors.join("\n"),
          new RegExp(`middleware "x${i}@file": option expression: `),
          tc.expression,
        );
      } else {assert.equal(
          (await request(port, "/", { headers: { host: `x${i}.test` } })).status,
          200,
          tc.expression,
        );}
    }
    const sample = (i: number, kind: string) => {
      const host = kind === "err" ? `t${i}err.test` : `t${i}.test`;
      const path = kind === "slow" ? "/slow/51" : kind === "500" ? "/status/500" : "/";
      return request(port, path, { headers: { host } });
    };
    // Each case replays its window as requests: a first one evaluated alone, the rest
    // within checkPeriod, then one after it that makes the breaker look at them all.
    await Promise.all((data.tripped as Json[]).map(async (tc, i) => {
      const plan = tc.overHttp;
      await sample(i, plan.first);
      const burst = Object.entries(plan.burst as Record<string, number>).flatMap(([k, n]) =>
        Array(n).fill(k)
      );
      await Promise.all(burst.map((k) => sample(i, k)));
      await delay(1600);
      const probe = await sample(i, plan.probe);
      assert.notEqual(probe.status, 503, `${tc.expression}: the probe itself went through`);
      const after = await sample(i, "ok");
      assert.equal(
        after.status === 503,
        tc.tripped,
        `${tc.expression}: tripped after the window (got ${after.status})`,
      );
    }));
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("oxy inFlightReq (connlimit) table over real HTTP", async () => {
  const data = readTestData("traefik_mw_inflightreq");
  const cases = data.cases as Json[];
  let release = Promise.withResolvers<void>();
  const upstream = await startUpstream(async (req, _b, res) => {
    if (req.url === "/hold") await release.promise;
    res.writeHead(200, { "content-length": "5" }).end("hello");
  });
  let toml = serviceToml("up", [upstream.url]);
  cases.forEach((tc, i) => {
    toml += routerToml(`c${i}`, `Header(\`x-case\`, \`${i}\`)`, "up", [`m${i}`]);
    toml += middlewareToml(`m${i}`, "inFlightReq", tc.config);
  });
  const proxy = await startTestProxy({ dynamic: toml });
  try {
    for (const [i, tc] of cases.entries()) {
      const name = `${tc.test}: ${tc.desc}`;
      const state = proxy.server.watcher.current!.routers.get(`c${i}@file`)!;
      assert.equal(state.status, "enabled", `${name}: ${state.errors}`);
      const held: Promise<Reply>[] = [];
      for (const step of tc.steps) {
        const headers = {
          "x-case": String(i),
          host: step.host ?? "any.test",
          ...step.headers,
          ...step.hold,
        };
        if (step.hold) {
          held.push(request(proxy.port(), "/hold", { headers }));
          await delay(100);
        } else if (step.release) {
          release.resolve();
          for (const r of await Promise.all(held)) {
            assert.equal(r.status, 200, `${name}: held request`);
          }
          held.length = 0;
          release = Promise.withResolvers<void>();
        } else {
          const res = await request(proxy.port(), "/", { headers });
          assert.equal(res.status, step.status, `${name}: ${JSON.stringify(step)}`);
          if (step.status === 429) {
            assert.equal(
              new TextDecoder().decode(res.body),
              data.refusal.replace("{amount}", String(tc.config.amount)),
              `${name}: oxy's refusal`,
            );
          }
        }
      }
      release.resolve();
      await Promise.all(held);
      release = Promise.withResolvers<void>();
    }
  } finally {
    await proxy.close();
    await upstream.close();
  }
});
