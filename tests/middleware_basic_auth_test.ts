/**
 * basicAuth over real HTTP: every hash format, usersFile, realm,
 * removeHeader, headerField, malformed credentials and bad config; plus the
 * verification cache's bounds, deterministically.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import bcrypt from "bcryptjs";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { assertBadMiddlewaresDisableRouters, type BadMiddlewareCase } from "./fixtures/bad_middleware.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { VerifyCache } from "../lib/middlewares/basic_auth/verify_cache.ts";
import { basicAuthenticator } from "../lib/middlewares/basic_auth/authenticate.ts";

const basic = (user: string, password: string) =>
  "Basic " + Buffer.from(`${user}:${password}`).toString("base64");

Deno.test("basicAuth: hashes, options and bad config over real HTTP", async () => {
  const backend = startEchoBackend("echo");
  const dir = await Deno.makeTempDir({ prefix: "portico-basic-" });
  const bcryptHash = bcrypt.hashSync("bpass", 4).replace("$2b$", "$2y$");
  const usersFile = `${dir}/htpasswd`;
  await Deno.writeTextFile(usersFile, `# staff\n\nfile:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n`);
  const badFile = `${dir}/bad`;
  await Deno.writeTextFile(badFile, `ok:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n\nbroken-line\n`);
  const middlewares: Record<string, string> = {
    all:
      `users = ["bc:${bcryptHash}", "apr:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "md5:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1"]`,
    file: `usersFile = "${usersFile}"\nusers = ["inline:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="]`,
    opts:
      `users = ["sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="]\nrealm = "staff only"\nremoveHeader = true\nheaderField = "X-WebAuth-User"`,
    kv:
      `users = "sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=,apr:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"\nremoveheader = "true"`,
    bad_file_line: `usersFile = "${badFile}"`,
    plain: `users = ["a:plaintext"]`,
    bad_line: `users = ["sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "a:b:c"]`,
    bad_missing_file: `usersFile = "${dir}/missing"`,
    bad_none: `realm = "x"`,
    bad_realm: `users = ["sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="]\nrealm = 'a"b'`,
    bad_bool: `users = ["sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="]\nremoveHeader = "yes"`,
  };
  let toml = `[http.services.echo.loadBalancer]\nservers = [{ url = "${backend.url}" }]\n`;
  for (const [name, body] of Object.entries(middlewares)) {
    toml +=
      `[http.routers.${name}]\nrule = "Host(\`${name}.test\`)"\nservice = "echo"\nmiddlewares = ["${name}"]\n`;
    toml += `[http.middlewares.${name}.basicAuth]\n${body}\n`;
  }
  const proxy = await startTestProxy({ dynamic: toml });
  try {
    const cases: {
      name: string;
      host: string;
      auth?: string;
      status: number;
      realm?: string;
      forwardedAuth?: boolean;
      userHeader?: string;
    }[] = [
      { name: "bcrypt", host: "all", auth: basic("bc", "bpass"), status: 200, forwardedAuth: true },
      { name: "bcrypt again (cached)", host: "all", auth: basic("bc", "bpass"), status: 200 },
      {
        name: "bcrypt wrong password",
        host: "all",
        auth: basic("bc", "nope"),
        status: 401,
        realm: "traefik",
      },
      {
        name: "bcrypt wrong password after a cached success",
        host: "all",
        auth: basic("bc", "bpass2"),
        status: 401,
      },
      { name: "apr1", host: "all", auth: basic("apr", "test"), status: 200 },
      { name: "apr1 wrong", host: "all", auth: basic("apr", "test2"), status: 401 },
      { name: "md5-crypt", host: "all", auth: basic("md5", "secret"), status: 200 },
      { name: "SHA", host: "all", auth: basic("sha", "test"), status: 200 },
      { name: "SHA wrong", host: "all", auth: basic("sha", "tesT"), status: 401 },
      { name: "unknown user", host: "all", auth: basic("nobody", "test"), status: 401 },
      {
        name: "user with another's password",
        host: "all",
        auth: basic("sha", "bpass"),
        status: 401,
      },
      { name: "no header", host: "all", status: 401, realm: "traefik" },
      { name: "other scheme", host: "all", auth: "Bearer abc", status: 401 },
      {
        name: "scheme is case-insensitive",
        host: "all",
        auth: basic("sha", "test").replace("Basic", "bAsIc"),
        status: 200,
      },
      {
        name: "no colon in credentials",
        host: "all",
        auth: "Basic " + btoa("shatest"),
        status: 401,
      },
      { name: "garbage base64", host: "all", auth: "Basic !!!", status: 401 },
      { name: "usersFile user", host: "file", auth: basic("file", "test"), status: 200 },
      {
        name: "inline user next to usersFile",
        host: "file",
        auth: basic("inline", "test"),
        status: 200,
      },
      {
        name: "comment line is not a user",
        host: "file",
        auth: basic("# staff", "test"),
        status: 401,
      },
      { name: "custom realm", host: "opts", status: 401, realm: "staff only" },
      {
        name: "removeHeader and headerField",
        host: "opts",
        auth: basic("sha", "test"),
        status: 200,
        forwardedAuth: false,
        userHeader: "sha",
      },
      // As in Traefik: a plain-text entry loads, and its password never matches.
      {
        name: "plain-text entry loads but never matches",
        host: "plain",
        auth: basic("a", "plaintext"),
        status: 401,
      },
      {
        name: "KV-style options",
        host: "kv",
        auth: basic("apr", "test"),
        status: 200,
        forwardedAuth: false,
      },
    ];
    for (const tc of cases) {
      const headers: Record<string, string> = { host: `${tc.host}.test` };
      if (tc.auth) headers.authorization = tc.auth;
      const res = await rawGet(proxy.port(), "/p", headers);
      assert.equal(res.status, tc.status, tc.name);
      if (tc.status === 401) {
        assert.equal(
          res.headers["www-authenticate"],
          `Basic realm="${tc.realm ?? (tc.host === "opts" ? "staff only" : "traefik")}"`,
          tc.name,
        );
        assert.equal(res.body, "401 Unauthorized\n", tc.name);
      } else {
        const echo = JSON.parse(res.body) as Echo;
        if (tc.forwardedAuth !== undefined) {
          assert.equal("authorization" in echo.headers, tc.forwardedAuth, tc.name);
        }
        if (tc.userHeader) assert.equal(echo.headers["x-webauth-user"], tc.userHeader, tc.name);
      }
    }

    const bad: BadMiddlewareCase[] = [
      { router: "bad_file_line", error: /usersFile ".*bad" line 3: expected "user:hash"/ },
      { router: "bad_line", error: /users\[1\]: expected "user:hash"/ },
      { router: "bad_missing_file", error: /usersFile: cannot read ".*missing"/ },
      { router: "bad_none", error: /option users: no users given/ },
      { router: "bad_realm", error: /option realm: must not contain/ },
      { router: "bad_bool", error: /option removeHeader: expected true or false/ },
    ];
    assertBadMiddlewaresDisableRouters(proxy, bad).forEach((message, i) =>
      assert.doesNotMatch(message, /qUqP5cyx/, `${bad[i].router}: hashes are not echoed into errors`)
    );
    assert.equal(
      (await rawGet(proxy.port(), "/", { host: "opts.test", authorization: basic("sha", "test") }))
        .status,
      200,
    );
  } finally {
    await proxy.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("basicAuth verify cache: TTL, LRU bound and distinct keys", () => {
  const cache = new VerifyCache(2, 1000);
  const a = VerifyCache.key("u", "p", "h");
  const b = VerifyCache.key("u", "p2", "h");
  const c = VerifyCache.key("u", "p", "h2");
  assert.notEqual(a, b);
  assert.notEqual(a, c);
  assert.equal(cache.has(a, 0), false);
  cache.add(a, 0);
  assert.equal(cache.has(a, 999), true);
  assert.equal(cache.has(a, 1000), false, "expired at ttl");
  assert.equal(cache.size, 0, "expired entry dropped");
  cache.add(a, 0);
  cache.add(b, 0);
  assert.equal(cache.has(a, 1), true); // a is now the youngest
  cache.add(c, 1); // evicts b, the least recently used
  assert.equal(cache.size, 2);
  assert.equal(cache.has(b, 2), false);
  assert.equal(cache.has(a, 2), true);
  assert.equal(cache.has(c, 2), true);
});

Deno.test("basicAuth authenticator: concurrent checks run once, unknown users cost a check", async () => {
  const runs: string[] = [];
  let open = Promise.withResolvers<void>();
  const slowCheck = (hash: string) => async (password: string) => {
    runs.push(`${hash}:${password}`);
    await open.promise;
    return password === "right";
  };
  const accounts = new Map([
    ["alice", { hash: "h1", check: slowCheck("h1"), slow: true }],
    ["bob", { hash: "h2", check: slowCheck("h2"), slow: false }],
  ]);
  const authenticate = basicAuthenticator(accounts);
  // Two tabs logging in at once: one check (Traefik's TestBasicAuthConcurrentHashOnce).
  const both = Promise.all([
    authenticate(basic("alice", "right")),
    authenticate(basic("alice", "right")),
  ]);
  await Promise.resolve();
  open.resolve();
  assert.deepEqual(await both, ["alice", "alice"]);
  assert.deepEqual(runs, ["h1:right"]);
  // Cached afterwards (bcrypt-like); a wrong password is checked again each time.
  assert.equal(await authenticate(basic("alice", "right")), "alice");
  assert.equal(await authenticate(basic("alice", "wrong")), undefined);
  assert.equal(await authenticate(basic("alice", "wrong")), undefined);
  assert.deepEqual(runs, ["h1:right", "h1:wrong", "h1:wrong"]);
  // An unknown user is checked against a configured hash, so timing does not reveal names.
  open = Promise.withResolvers<void>();
  open.resolve();
  assert.equal(
    await authenticate(basic("mallory", "right")),
    undefined,
    "a decoy match never logs in",
  );
  assert.equal(runs.at(-1), "h1:right");
  assert.equal(await authenticate(basic("bob", "right")), "bob");
  assert.equal(await authenticate("Basic not-base64!"), undefined);
});
