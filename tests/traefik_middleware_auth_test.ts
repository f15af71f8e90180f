/**
 * Traefik's own test tables for basicAuth, digestAuth and forwardAuth,
 * transcribed as data in tests/data/traefik_mw_{basicauth,digestauth,
 * forwardauth}.json (sources and the cases that cannot apply over HTTP are
 * in the .md beside each), each case sent over real HTTP through a running
 * Portico to real backends and auth servers.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { startTestProxy, type TestProxy } from "./fixtures/proxy.ts";
import {
  type Json,
  middlewareToml,
  readTestData,
  routerToml,
} from "./fixtures/traefik_tables.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { freePort } from "./fixtures/ports.ts";

interface Seen {
  method: string;
  headers: Headers;
  body: string;
}

/**
 * The protected service: records what reaches it and answers "traefik\n",
 * as Traefik's test handler does. node:http, which keeps GET bodies.
 */
async function startService() {
  const seen = new Map<string, Seen[]>();
  const answers = new Map<string, [string, string][]>();
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const host = req.headers.host ?? "";
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
      }
      (seen.get(host) ?? seen.set(host, []).get(host)!).push({
        method: req.method!,
        headers,
        body,
      });
      res.writeHead(200, [...(answers.get(host) ?? []).flat(), "Content-Length", "8"]);
      res.end("traefik\n");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen: (host: string) => seen.get(host) ?? [],
    answer: (host: string, headers: [string, string][]) => answers.set(host, headers),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const basicHeader = (user: string, password: string) =>
  "Basic " + Buffer.from(`${user}:${password}`).toString("base64");

/**
 * A proxy with, per case i of a basicAuth or digestAuth table, router `c<i>`
 * (Host `c<i>.test`) → middleware `m<i>` → `serviceUrl`; a case's
 * `usersFile` text is written to a file of its own.
 */
async function startUsersTableProxy(
  type: "basicAuth" | "digestAuth",
  cases: Json[],
  serviceUrl: string,
): Promise<{ proxy: TestProxy; close(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: `portico-${type}-table-` });
  let toml = `[http.services.svc.loadBalancer]\nservers = [{ url = "${serviceUrl}" }]\n`;
  cases.forEach((tc, i) => {
    const options = { ...tc.config };
    if (tc.usersFile !== undefined) {
      const file = `${dir}/users-${i}`;
      Deno.writeTextFileSync(file, tc.usersFile);
      options.usersFile = file;
    }
    toml += routerToml(`c${i}`, `Host(\`c${i}.test\`)`, "svc", [`m${i}`]);
    toml += middlewareToml(`m${i}`, type, options);
  });
  const proxy = await startTestProxy({ dynamic: toml });
  return {
    proxy,
    async close() {
      await proxy.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Router `c<i>` of a table case: a case Traefik refuses (`buildError`) must be
 * disabled with an error naming `m<i>` (returns false, nothing to send);
 * any other must be enabled.
 */
function caseRouterBuilt(proxy: TestProxy, i: number, tc: Json, name: string): boolean {
  const state = proxy.server.watcher.current!.routers.get(`c${i}@file`)!;
  if (tc.buildError) {
    assert.equal(state.status, "disabled", name);
    assert.match(state.errors.join("\n"), new RegExp(`middleware "m${i}@file"`), name);
    return false;
  }
  assert.equal(state.status, "enabled", `${name}: ${state.errors}`);
  return true;
}

Deno.test("traefik basicAuth table over real HTTP", async () => {
  const data = readTestData("traefik_mw_basicauth");
  const service = await startService();
  const table = await startUsersTableProxy("basicAuth", data.cases, service.url);
  const { proxy } = table;
  let requests = 0;
  try {
    for (const [i, tc] of (data.cases as Json[]).entries()) {
      const name = `${tc.test}: ${tc.desc}`;
      if (!caseRouterBuilt(proxy, i, tc, name)) continue;
      for (const r of tc.requests) {
        requests++;
        const host = `c${i}.test`;
        const before = service.seen(host).length;
        const res = await rawGet(proxy.port(), "/", {
          host,
          ...r.requestHeaders,
          authorization: basicHeader(r.user, r.password),
        });
        const label = `${name} (${r.user})`;
        assert.equal(res.status, r.status, label);
        if (r.body !== undefined) assert.equal(res.body, r.body, label);
        if (r.wwwAuthenticate) {
          assert.equal(res.headers["www-authenticate"], r.wwwAuthenticate, label);
        }
        if (r.status !== 200) {
          assert.equal(service.seen(host).length, before, `${label}: service not reached`);
          assert.equal(res.body, "401 Unauthorized\n", label);
          continue;
        }
        const got = service.seen(host).at(-1)!;
        for (const [k, v] of Object.entries(r.upstreamHeaders ?? {})) {
          assert.equal(got.headers.get(k), v, `${label}: ${k}`);
        }
        for (const k of r.upstreamAbsent ?? []) {
          assert.equal(got.headers.get(k), null, `${label}: ${k}`);
        }
        for (const k of r.upstreamPresent ?? []) {
          assert.notEqual(got.headers.get(k), null, `${label}: ${k}`);
        }
      }
    }
    assert.equal(requests, 22, "every request of the table was sent");
  } finally {
    await table.close();
    await service.close();
  }
});

const md5 = (s: string) => createHash("md5").update(s).digest("hex");

/**
 * The client of Traefik's digest tests (digest_auth_request_test.go): one
 * unauthenticated request for a challenge, whose quoted parts it reads, then
 * the request with `uri` set to the full URL and a fresh count.
 */
async function digestGet(port: number, host: string, user: string, password: string, headers = {}) {
  const first = await rawGet(port, "/", { host });
  if (first.status !== 401) return first;
  const parts: Record<string, string> = {};
  for (const piece of String(first.headers["www-authenticate"]).split(",")) {
    for (const want of ["algorithm", "nonce", "opaque", "qop", "realm"]) {
      if (piece.includes(want)) parts[want] = piece.split('"')[1];
    }
  }
  assert.equal(
    Object.keys(parts).length,
    5,
    `challenge readable by Traefik's client: ${first.headers["www-authenticate"]}`,
  );
  const uri = `http://${host}/`;
  const ha1 = md5(`${user}:${parts.realm}:${password}`);
  const ha2 = md5(`GET:${uri}`);
  const nc = "00000001";
  const cnonce = randomBytes(8).toString("hex");
  const response = md5([ha1, parts.nonce, nc, cnonce, parts.qop, ha2].join(":"));
  const authorization =
    `Digest username="${user}", realm="${parts.realm}", nonce="${parts.nonce}", uri="${uri}", algorithm=${parts.algorithm}, qop=${parts.qop}, nc=${nc}, cnonce="${cnonce}", response="${response}", opaque="${parts.opaque}"`;
  return await rawGet(port, "/", { host, ...headers, authorization });
}

Deno.test("traefik digestAuth table over real HTTP", async () => {
  const data = readTestData("traefik_mw_digestauth");
  const service = await startService();
  const table = await startUsersTableProxy("digestAuth", data.cases, service.url);
  const { proxy } = table;
  try {
    for (const [i, tc] of (data.cases as Json[]).entries()) {
      const name = `${tc.test}: ${tc.desc}`;
      if (!caseRouterBuilt(proxy, i, tc, name)) continue;
      for (const r of tc.requests) {
        const host = `c${i}.test`;
        const res = r.basic
          ? await rawGet(proxy.port(), "/", {
            host,
            authorization: basicHeader(r.basic[0], r.basic[1]),
          })
          : await digestGet(proxy.port(), host, r.digest[0], r.digest[1], r.requestHeaders);
        const label = `${name} (${(r.basic ?? r.digest)[0]})`;
        assert.equal(res.status, r.status, label);
        if (r.body !== undefined) assert.equal(res.body, r.body, label);
        if (r.status !== 200) {
          assert.doesNotMatch(res.body, /traefik/, label);
          continue;
        }
        const got = service.seen(host).at(-1)!;
        for (const [k, v] of Object.entries(r.upstreamHeaders ?? {})) {
          assert.equal(got.headers.get(k), v, `${label}: ${k}`);
        }
      }
    }
  } finally {
    await table.close();
    await service.close();
  }
});

interface AuthCall {
  method: string;
  headers: Headers;
  body: string;
}

/**
 * An auth server answering per path as the Go test's handler for that case
 * does. node:http, because Deno.serve drops the body of a GET and the
 * forwardBody cases send one.
 */
function startAuthServer(answers: Map<string, Json>) {
  const calls = new Map<string, AuthCall[]>();
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const path = (req.url ?? "/").split("?")[0];
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
      }
      (calls.get(path) ?? calls.set(path, []).get(path)!).push({
        method: req.method!,
        headers,
        body,
      });
      const a = answers.get(path) ?? { status: 200 };
      const out: [string, string][] = [
        ...(a.headerList ?? []),
        ...Object.entries(a.headers ?? {}),
      ] as [string, string][];
      let text: string = a.body ?? "";
      if (a.goError) {
        // Go's http.Error.
        out.push(["Content-Type", "text/plain; charset=utf-8"], [
          "X-Content-Type-Options",
          "nosniff",
        ]);
        text = `${a.goError}\n`;
      }
      if (a.goRedirect) {
        // Go's http.Redirect for a GET.
        out.push(["Location", a.goRedirect], ["Content-Type", "text/html; charset=utf-8"]);
        text = `<a href="${a.goRedirect}">Found</a>.\n\n`;
      }
      out.push(["Content-Length", String(Buffer.byteLength(text))]);
      res.writeHead(a.status, out.flat());
      res.end(text);
    });
  });
  server.listen(0, "127.0.0.1");
  return {
    url: () => `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    calls: (path: string) => calls.get(path) ?? [],
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** An auth server writing exact bytes: a redirect carrying every hop-by-hop header. */
function startRawHopAuthServer(location: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const body = `<a href="${location}">Found</a>.\n\n`;
  const answer = "HTTP/1.1 302 Found\r\nConnection: test\r\nKeep-Alive: test\r\nTe: test\r\n" +
    `Trailers: test\r\nUpgrade: test\r\nLocation: ${location}\r\n` +
    "Content-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n" +
    `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(65536);
        try {
          await conn.read(buf);
          await conn.write(new TextEncoder().encode(answer));
        } catch { /* the proxy went away */ }
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: () => listener.close(),
  };
}

const keepAlive = new http.Agent({ keepAlive: true });

/** A request with a body, returning status, headers (with every Set-Cookie) and body. */
function send(
  port: number,
  host: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; raw: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      path: "/",
      method,
      headers: {
        host,
        ...headers,
        ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}),
      },
      // Keep-alive, as Go's test client: the answer then carries no Connection of the proxy's own.
      agent: keepAlive,
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on(
        "end",
        () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            raw: res.rawHeaders,
            body: text,
          }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

Deno.test("traefik forwardAuth table over real HTTP", async () => {
  const data = readTestData("traefik_mw_forwardauth");
  const service = await startService();
  const answers = new Map<string, Json>();
  const auth = startAuthServer(answers);
  await new Promise((r) => setTimeout(r, 10));
  const hopAuth = startRawHopAuthServer("http://example.com/redirect-test");
  const dead = freePort();
  let toml = `[http.services.svc.loadBalancer]\nservers = [{ url = "${service.url}" }]\n`;
  data.cases.forEach((tc: Json, i: number) => {
    answers.set(`/c${i}`, tc.auth ?? {});
    const address = tc.config.address === "unreachable"
      ? `http://127.0.0.1:${dead}/`
      : tc.auth?.rawHopHeaders
      ? `${hopAuth.url}/c${i}`
      : `${auth.url()}/c${i}`;
    toml += routerToml(`c${i}`, `Host(\`c${i}.test\`)`, "svc", [`m${i}`]);
    toml += middlewareToml(`m${i}`, "forwardAuth", { ...tc.config, address });
    if (tc.service) service.answer(`c${i}.test`, tc.service.headerList);
  });
  const proxy = await startTestProxy({ dynamic: toml });
  try {
    for (const [i, tc] of (data.cases as Json[]).entries()) {
      const name = `${tc.test}: ${tc.desc}`;
      const host = `c${i}.test`;
      const state = proxy.server.watcher.current!.routers.get(`c${i}@file`)!;
      assert.equal(state.status, "enabled", `${name}: ${state.errors}`);
      const res = await send(
        proxy.port(),
        host,
        tc.request.method,
        tc.request.headers ?? {},
        tc.request.body,
      );
      const e = tc.expect;
      assert.equal(res.status, e.status, name);
      if (e.body !== undefined) assert.equal(res.body, e.body, `${name}: body`);
      if (e.bodyNotEmpty) assert.notEqual(res.body, "", `${name}: body`);
      for (const [k, v] of Object.entries(e.headers ?? {})) {
        assert.equal(res.headers[k], v, `${name}: ${k}`);
      }
      for (const k of e.absent ?? []) {
        assert.equal(res.headers[k], undefined, `${name}: ${k} absent`);
      }
      if (e.location !== undefined) {
        assert.equal(res.headers["location"] ?? "", e.location, `${name}: location`);
      }
      if (e.setCookie) assert.deepEqual(res.headers["set-cookie"], e.setCookie, `${name}: cookies`);
      if (e.exactHeaders) {
        const got: Record<string, string> = {};
        for (let j = 0; j < res.raw.length; j += 2) {
          const k = res.raw[j].toLowerCase();
          if (["date", "connection", "keep-alive"].includes(k)) continue; // the transport's, not the answer's
          got[k] = got[k] === undefined ? res.raw[j + 1] : `${got[k]}, ${res.raw[j + 1]}`;
        }
        assert.deepEqual(got, e.exactHeaders, `${name}: headers`);
      }
      const calls = auth.calls(`/c${i}`);
      if (e.authCalls !== undefined) assert.equal(calls.length, e.authCalls, `${name}: auth calls`);
      if (e.authBody !== undefined) {
        assert.equal(calls.at(-1)!.body, e.authBody, `${name}: auth body`);
      }
      if (e.authMethod) assert.equal(calls.at(-1)!.method, e.authMethod, `${name}: auth method`);
      const reached = service.seen(host);
      if (e.serviceCalled !== undefined) {
        assert.equal(reached.length > 0, e.serviceCalled, `${name}: service`);
      }
      if (e.serviceMethod) {
        assert.equal(reached.at(-1)!.method, e.serviceMethod, `${name}: service method`);
      }
      if (tc.request.body !== undefined && e.serviceCalled) {
        assert.equal(reached.at(-1)!.body, tc.request.body, `${name}: service got the body`);
      }
      for (const [k, v] of Object.entries(e.serviceHeaders ?? {})) {
        assert.equal(reached.at(-1)!.headers.get(k), v, `${name}: service ${k}`);
      }
      for (const k of e.serviceAbsent ?? []) {
        assert.equal(reached.at(-1)!.headers.get(k), null, `${name}: service ${k} absent`);
      }
    }
  } finally {
    await proxy.close();
    await Promise.all([service.close(), auth.close()]);
    hopAuth.close();
    keepAlive.destroy();
  }
});

/** Go's canonical spelling, for messages. */
const lower = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k.toLowerCase(), v]));

Deno.test("traefik forwardAuth request headers (writeHeader, oldWriteHeader, RemoveConnectionHeaders) over real HTTP", async () => {
  const data = readTestData("traefik_mw_forwardauth");
  const service = await startService();
  const auth = startAuthServer(new Map());
  await new Promise((r) => setTimeout(r, 10));
  const writers = data.writeHeader as Json[];
  const removers = data.connectionHeaders as Json[];
  // The unit tests hand forwardAuth a bare request with the client's X-Forwarded-*
  // headers: over HTTP that is an entrypoint that trusts the client.
  let toml = `[http.services.svc.loadBalancer]\nservers = [{ url = "${service.url}" }]\n`;
  const all = [
    ...writers.map((tc) => ({ tc, kind: "w" })),
    ...removers.map((tc) => ({ tc, kind: "r" })),
  ];
  all.forEach(({ tc }, i) => {
    toml += routerToml(`h${i}`, `Header(\`x-case\`, \`${i}\`)`, "svc", [`h${i}`], "trusting");
    const config: Record<string, Json> = { address: `${auth.url()}/h${i}` };
    if (tc.trustForwardHeader !== undefined) config.trustForwardHeader = tc.trustForwardHeader;
    if (tc.authRequestHeaders) config.authRequestHeaders = tc.authRequestHeaders;
    toml += middlewareToml(`h${i}`, "forwardAuth", config);
  });
  const proxy = await startTestProxy({
    dynamic: toml,
    entryPoints: ["web", "trusting"],
    entryPointExtra: { trusting: `[entryPoints.trusting.forwardedHeaders]\ninsecure = true\n` },
  });
  const server = Deno.hostname();
  let checked = 0;
  try {
    for (const [i, { tc, kind }] of all.entries()) {
      const name = `${tc.test}: ${tc.desc}`;
      // Over HTTP a request cannot carry "Transfer-Encoding: TransferEncoding" (Traefik's
      // server refuses it too) or "Upgrade: Upgrade" without becoming an upgrade.
      const sent = Object.fromEntries(
        Object.entries(tc.requestHeaders as Record<string, string>).filter(([k]) =>
          !["transfer-encoding", "upgrade"].includes(k.toLowerCase())
        ),
      );
      if (tc.emptyHost) {
        // HTTP/1.1 requires Host; only an HTTP/1.0 request can come without one.
        // What follows the auth request (the service refusing it) is not these cases' concern.
        await http10WithoutHost(proxy.port("trusting"), data.request.path, sent, i);
      } else {
        const res = await rawGet(proxy.port("trusting"), data.request.path, {
          host: data.request.host,
          ...sent,
          "x-case": String(i),
        });
        assert.equal(res.status, 200, name);
      }
      const got = auth.calls(`/h${i}`).at(-1)!.headers;
      checked++;
      if (kind === "r") {
        for (const k of tc.authAbsent ?? []) assert.equal(got.get(k), null, `${name}: ${k}`);
        for (const [k, v] of Object.entries(tc.authHeaders ?? {})) {
          assert.equal(got.get(k), v, `${name}: ${k}`);
        }
        continue;
      }
      const expected = lower(tc.expectedHeaders);
      for (const [k, v] of Object.entries(expected)) {
        // Go sends no User-Agent at all when Traefik sets it to "".
        assert.equal(got.get(k) ?? (k === "user-agent" ? "" : null), v, `${name}: ${k}`);
      }
      if (!tc.checkForUnexpectedHeaders) continue;
      // What the unit test's bare request lacks and a running Traefik has: the
      // entrypoint's X-Real-Ip, X-Forwarded-Server (and -Port, which the legacy
      // writer keeps), X-Forwarded-For from the connection, and the transport's own.
      const filtered = (tc.authRequestHeaders ?? []).length > 0;
      const extra: Record<string, string> = { "x-forwarded-for": "127.0.0.1" };
      if (tc.trustForwardHeader === true || (tc.trustForwardHeader === null && !filtered)) {
        extra["x-real-ip"] = "127.0.0.1";
        extra["x-forwarded-server"] = server;
      }
      if (tc.trustForwardHeader === null && !filtered) extra["x-forwarded-port"] = "80";
      const transport = new Set(["host", "connection", "x-case", "content-length"]);
      got.forEach((value, k) => {
        if (k in expected || transport.has(k)) return;
        assert.ok(k in extra, `${name}: unexpected header ${k}: ${value}`);
        assert.equal(value, extra[k], `${name}: ${k}`);
      });
    }
    assert.equal(checked, all.length);
  } finally {
    await proxy.close();
    await Promise.all([service.close(), auth.close()]);
  }
});

/** An HTTP/1.0 request without Host; the status line's code. */
async function http10WithoutHost(
  port: number,
  path: string,
  headers: Record<string, string>,
  i: number,
) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let head = `GET ${path} HTTP/1.0\r\nx-case: ${i}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  await conn.write(new TextEncoder().encode(head + "\r\n"));
  const buf = new Uint8Array(4096);
  const n = await conn.read(buf);
  conn.close();
  return Number(new TextDecoder().decode(buf.subarray(0, n ?? 0)).split(" ")[1]);
}
