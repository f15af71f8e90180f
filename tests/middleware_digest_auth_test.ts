/**
 * digestAuth: header parsing and nonce table deterministically, then the
 * full challenge/response over real HTTP with replays, stale nonces, wrong
 * URIs and passwords, options and bad config.
 */

import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { assertBadMiddlewaresDisableRouters, type BadMiddlewareCase } from "./fixtures/bad_middleware.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { md5Hex, NonceTable, parseDigestHeader } from "../lib/middlewares/digest_auth/digest.ts";

Deno.test("digest header parsing", () => {
  const cases: { header: string | null; expected: Record<string, string> | undefined }[] = [
    { header: null, expected: undefined },
    { header: "Basic abc", expected: undefined },
    {
      header: 'Digest username="a b", realm="r", nc=00000001, qop=auth, uri="/x?y=1,2"',
      expected: { username: "a b", realm: "r", nc: "00000001", qop: "auth", uri: "/x?y=1,2" },
    },
    { header: 'digest USERNAME="q\\"x"', expected: { username: 'q"x' } },
    { header: "Digest garbage", expected: undefined },
  ];
  for (const tc of cases) {
    assert.deepEqual(parseDigestHeader(tc.header), tc.expected, String(tc.header));
  }
});

Deno.test("digest nonce table: counts must increase, entries expire and are bounded", () => {
  const t = new NonceTable(2, 1000);
  t.issue("a", 0);
  const steps: { nonce: string; nc: number; at: number; expected: string }[] = [
    { nonce: "a", nc: 1, at: 1, expected: "ok" },
    { nonce: "a", nc: 1, at: 2, expected: "replay" },
    { nonce: "a", nc: 3, at: 3, expected: "ok" },
    // Lower than seen: requests that overtook each other, "stale" as go-http-auth says.
    { nonce: "a", nc: 2, at: 4, expected: "stale" },
    { nonce: "a", nc: 0, at: 4, expected: "replay" },
    { nonce: "zz", nc: 1, at: 5, expected: "stale" },
    { nonce: "a", nc: 4, at: 1000, expected: "stale" },
  ];
  for (const s of steps) assert.equal(t.use(s.nonce, s.nc, s.at), s.expected, JSON.stringify(s));
  t.issue("b", 0);
  t.issue("c", 0);
  t.issue("d", 0);
  assert.equal(t.size, 2);
  assert.equal(t.use("b", 1, 1), "stale", "oldest evicted");
});

function challengeOf(header: string | string[] | undefined): Record<string, string> {
  return parseDigestHeader(String(header))!;
}

function authorize(
  ch: Record<string, string>,
  o: { user: string; password: string; uri: string; nc: string; method?: string; realm?: string },
): string {
  const realm = o.realm ?? ch.realm;
  const ha1 = md5Hex(`${o.user}:${realm}:${o.password}`);
  const ha2 = md5Hex(`${o.method ?? "GET"}:${o.uri}`);
  const cnonce = "0a4f113b";
  const response = md5Hex(`${ha1}:${ch.nonce}:${o.nc}:${cnonce}:auth:${ha2}`);
  return `Digest username="${o.user}", realm="${realm}", nonce="${ch.nonce}", uri="${o.uri}", qop=auth, nc=${o.nc}, cnonce="${cnonce}", response="${response}", opaque="${ch.opaque}", algorithm=MD5`;
}

Deno.test("digestAuth over real HTTP: challenge, response, replay, stale, options, bad config", async () => {
  const backend = startEchoBackend("echo");
  const dir = await Deno.makeTempDir({ prefix: "portico-digest-" });
  await Deno.writeTextFile(
    `${dir}/htdigest`,
    `# comment\nfile:traefik:${md5Hex("file:traefik:pw")}\n`,
  );
  const middlewares: Record<string, string> = {
    plain: `users = ["test:traefik:a2688e031edb4be6a3797f3882655c05", "other:elsewhere:${
      md5Hex("other:elsewhere:x")
    }"]`,
    opts: `usersFile = "${dir}/htdigest"\nremoveHeader = true\nheaderField = "X-User"`,
    realm: `users = ["r:staff:${md5Hex("r:staff:pw")}"]\nrealm = "staff"`,
    bad_line: `users = ["a:b"]`,
    bad_ha1: `users = ["a:traefik:nothex"]`,
    bad_none: `realm = "x"`,
  };
  let toml = `[http.services.echo.loadBalancer]\nservers = [{ url = "${backend.url}" }]\n`;
  for (const [name, body] of Object.entries(middlewares)) {
    toml +=
      `[http.routers.${name}]\nrule = "Host(\`${name}.test\`)"\nservice = "echo"\nmiddlewares = ["${name}"]\n`;
    toml += `[http.middlewares.${name}.digestAuth]\n${body}\n`;
  }
  const proxy = await startTestProxy({ dynamic: toml });
  const port = proxy.port();
  const get = (host: string, path: string, authorization?: string) =>
    rawGet(
      port,
      path,
      authorization ? { host: `${host}.test`, authorization } : { host: `${host}.test` },
    );
  try {
    const first = await get("plain", "/a?b=1");
    assert.equal(first.status, 401);
    const ch = challengeOf(first.headers["www-authenticate"]);
    assert.equal(ch.realm, "traefik");
    assert.equal(ch.qop, "auth");
    assert.equal(ch.algorithm, "MD5");
    assert.equal(ch.stale, undefined);

    const steps: {
      name: string;
      host?: string;
      uri?: string;
      path?: string;
      user?: string;
      password?: string;
      nc: string;
      status: number;
      stale?: boolean;
      realm?: string;
    }[] = [
      { name: "correct answer", nc: "00000001", status: 200 },
      { name: "replayed nonce count", nc: "00000001", status: 401 },
      { name: "next nonce count", nc: "00000002", status: 200 },
      { name: "wrong password", password: "nope", nc: "00000003", status: 401 },
      { name: "a digest for another URI", uri: "/other", nc: "00000004", status: 401 },
      { name: "unknown user", user: "ghost", nc: "00000005", status: 401 },
      {
        name: "user of another realm",
        user: "other",
        password: "x",
        realm: "elsewhere",
        nc: "00000006",
        status: 401,
      },
      { name: "still works after failures", nc: "00000007", status: 200 },
    ];
    for (const s of steps) {
      const path = s.path ?? "/a?b=1";
      const auth = authorize(ch, {
        user: s.user ?? "test",
        password: s.password ?? "test",
        uri: s.uri ?? path,
        nc: s.nc,
        realm: s.realm,
      });
      const res = await get(s.host ?? "plain", path, auth);
      assert.equal(res.status, s.status, s.name);
      if (s.status === 401) {
        assert.match(
          String(res.headers["www-authenticate"]),
          /^Digest realm="traefik", nonce="/,
          s.name,
        );
      } else {assert.ok(
          (JSON.parse(res.body) as Echo).headers.authorization?.startsWith("Digest "),
          s.name,
        );}
    }

    // A correct answer for a nonce this server never issued is stale, not wrong.
    const foreign = authorize({ ...ch, nonce: "feedfacefeedfacefeedfacefeedface" }, {
      user: "test",
      password: "test",
      uri: "/",
      nc: "00000001",
    });
    const stale = await get("plain", "/", foreign);
    assert.equal(stale.status, 401);
    assert.equal(challengeOf(stale.headers["www-authenticate"]).stale, "true");

    // usersFile, removeHeader and headerField.
    const optsCh = challengeOf((await get("opts", "/")).headers["www-authenticate"]);
    const ok = await get(
      "opts",
      "/",
      authorize(optsCh, { user: "file", password: "pw", uri: "/", nc: "00000001" }),
    );
    assert.equal(ok.status, 200);
    const echo = JSON.parse(ok.body) as Echo;
    assert.equal(echo.headers.authorization, undefined);
    assert.equal(echo.headers["x-user"], "file");

    // A custom realm is offered and required.
    const realmCh = challengeOf((await get("realm", "/")).headers["www-authenticate"]);
    assert.equal(realmCh.realm, "staff");
    assert.equal(
      (await get(
        "realm",
        "/",
        authorize(realmCh, { user: "r", password: "pw", uri: "/", nc: "00000001" }),
      )).status,
      200,
    );

    const bad: BadMiddlewareCase[] = [
      { router: "bad_line", error: /option users\[0\]: expected "user:realm:HA1"/ },
      { router: "bad_ha1", error: /option users\[0\]: user "a": HA1 must be 32 hex digits/ },
      { router: "bad_none", error: /option users: no users given/ },
    ];
    assertBadMiddlewaresDisableRouters(proxy, bad);
  } finally {
    await proxy.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
