/**
 * Contract tests of the HTTP-API DNS-01 providers against local servers
 * that enforce the documented APIs (tests/fixtures/cloudflare_api.ts,
 * route53_api.ts, httpreq_server.ts): auth, zone lookup, record create
 * and delete, error shapes; and the `exec` provider with a real script.
 * Each provider is built from lego's variables, as a resolver builds it.
 *
 * The SigV4 signer is checked against AWS's published vectors: the
 * `get-vanilla`, `get-vanilla-query-order-key-case`, `post-vanilla` and
 * `get-utf8` cases of the AWS SigV4 test suite (as shipped in
 * awslabs/aws-c-auth, tests/aws-sig-v4-test-suite/) and the "GET Object"
 * example of the Amazon S3 API reference (sig-v4-header-based-auth), as
 * data: request, credentials, expected signature.
 */
import assert from "node:assert/strict";
import { startCloudflareApi } from "./fixtures/cloudflare_api.ts";
import { startRoute53Api } from "./fixtures/route53_api.ts";
import { startHttpReqServer } from "./fixtures/httpreq_server.ts";
import { createDnsProvider } from "../lib/acme/dns/providers.ts";
import { sha256Hex, signV4 } from "../lib/acme/dns/sigv4.ts";
import { DnsConfigError, type TxtRecord } from "../lib/acme/dns/types.ts";
import type { DnsChallengeConfig } from "../lib/config/types.ts";

function config(provider: string): DnsChallengeConfig {
  return {
    provider,
    resolvers: [],
    propagation: {
      delayBeforeChecks: 0,
      disableChecks: false,
      requireAllRNS: false,
      disableANSChecks: false,
    },
  };
}

function build(provider: string, vars: Record<string, string>) {
  return createDnsProvider("dns", config(provider), (n) => vars[n]);
}

const apex: TxtRecord = {
  domain: "example.com",
  fqdn: "_acme-challenge.example.com.",
  value: "apex-value-LHDhK3oGRvkiefQnx7OOczTY5Tic",
  token: "tok1",
  keyAuthorization: "tok1.thumb",
};
const wild: TxtRecord = {
  ...apex,
  domain: "*.example.com",
  value: "wild-value-xZ6HcMOc_gmtoM",
  token: "tok2",
  keyAuthorization: "tok2.thumb",
};

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => undefined, (e) => e);
  assert.ok(err instanceof Error, "expected a rejection");
  return err;
}

Deno.test("SigV4 signer matches AWS's published vectors", () => {
  const suite = {
    accessKeyId: "AKIDEXAMPLE",
    secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    region: "us-east-1",
    service: "service",
  };
  const empty = sha256Hex("");
  const table: {
    name: string;
    method: string;
    url: string;
    headers: Record<string, string>;
    creds: typeof suite;
    signature: string;
  }[] = [
    {
      name: "get-vanilla",
      method: "GET",
      url: "https://example.amazonaws.com/",
      headers: { host: "example.amazonaws.com", "x-amz-date": "20150830T123600Z" },
      creds: suite,
      signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    {
      name: "get-vanilla-query-order-key-case",
      method: "GET",
      url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
      headers: { host: "example.amazonaws.com", "x-amz-date": "20150830T123600Z" },
      creds: suite,
      signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    {
      name: "post-vanilla",
      method: "POST",
      url: "https://example.amazonaws.com/",
      headers: { host: "example.amazonaws.com", "x-amz-date": "20150830T123600Z" },
      creds: suite,
      signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    {
      name: "get-utf8",
      method: "GET",
      url: "https://example.amazonaws.com/\u1234",
      headers: { host: "example.amazonaws.com", "x-amz-date": "20150830T123600Z" },
      creds: suite,
      signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    },
    {
      name: "S3 GET Object example",
      method: "GET",
      url: "https://examplebucket.s3.amazonaws.com/test.txt",
      headers: {
        Host: "examplebucket.s3.amazonaws.com",
        Range: "bytes=0-9",
        "x-amz-content-sha256": empty,
        "x-amz-date": "20130524T000000Z",
      },
      creds: {
        accessKeyId: "AKIAIOSFODNN7EXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region: "us-east-1",
        service: "s3",
      },
      signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    },
  ];
  for (const c of table) {
    const r = signV4({
      method: c.method,
      url: new URL(c.url),
      headers: c.headers,
      payloadHash: empty,
    }, c.creds);
    assert.equal(r.signature, c.signature, c.name);
    assert.match(
      r.authorization,
      new RegExp(
        `^AWS4-HMAC-SHA256 Credential=${c.creds.accessKeyId}/\\d{8}/us-east-1/${c.creds.service}/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=${c.signature}$`,
      ),
    );
  }
});

Deno.test("cloudflare contract: token auth, zone lookup with the zone token, apex and wildcard values coexist, each deletion removes only its own", async () => {
  const api = startCloudflareApi({
    zones: ["example.com", "other.org"],
    tokens: { "dns-token-abc": ["dns:edit"], "zone-token-xyz": ["zone:read"] },
  });
  try {
    const cf = build("cloudflare", {
      CF_DNS_API_TOKEN: "dns-token-abc",
      CF_ZONE_API_TOKEN: "zone-token-xyz",
      CLOUDFLARE_BASE_URL: api.baseUrl,
      CLOUDFLARE_TTL: "120",
    });
    const h1 = await cf.present(apex);
    const h2 = await cf.present(wild);
    assert.ok(h1 && h2 && h1 !== h2, "each record has its own id");
    assert.deepEqual(
      api.records().map((r) => [r.name, r.content, r.ttl]).sort(),
      [
        ["_acme-challenge.example.com", apex.value, 120],
        ["_acme-challenge.example.com", wild.value, 120],
      ].sort(),
    );
    // Presenting again (a resumed order) finds the identical record instead of failing.
    assert.equal(await cf.present(apex), h1);
    // The zone was looked up once (cached), by the zone token; records by the DNS token.
    assert.deepEqual(
      api.requests.filter((r) => r.startsWith("GET /zones") && !r.includes("dns_records")),
      ["GET /zones"],
    );
    await cf.cleanUp(apex, h1);
    assert.deepEqual(api.records().map((r) => r.content), [wild.value]);
    // Without the handle (journal written before the id came back), the record is found by name and content.
    await cf.cleanUp(wild);
    assert.deepEqual(api.records(), []);
    await cf.cleanUp(wild, h2); // already gone: not an error
  } finally {
    await api.close();
  }
});

Deno.test("cloudflare contract: global key auth; a wrong token, a DNS-only token and an unknown zone give the API's error, without the secret", async () => {
  const api = startCloudflareApi({
    zones: ["example.com"],
    tokens: { "dns-only": ["dns:edit"] },
    globalKeys: { "ops@example.com": "global-key-0123456789" },
  });
  try {
    const global = build("cloudflare", {
      CF_API_EMAIL: "ops@example.com",
      CF_API_KEY: "global-key-0123456789",
      CLOUDFLARE_BASE_URL: api.baseUrl,
    });
    await global.present(apex);
    await global.cleanUp(apex);
    assert.deepEqual(api.records(), []);

    const wrong = await rejection(
      build("cloudflare", {
        CF_DNS_API_TOKEN: "not-a-token-9876",
        CLOUDFLARE_BASE_URL: api.baseUrl,
      }).present(apex),
    );
    assert.equal(
      wrong.message,
      "cloudflare: looking up zone example.com: HTTP 403, error 10000: Authentication error",
    );
    assert.ok(!wrong.message.includes("not-a-token-9876"));
    // A token without Zone:Read and no CF_ZONE_API_TOKEN cannot find the zone.
    const dnsOnly = await rejection(
      build("cloudflare", { CF_DNS_API_TOKEN: "dns-only", CLOUDFLARE_BASE_URL: api.baseUrl })
        .present(apex),
    );
    assert.match(dnsOnly.message, /looking up zone example\.com: HTTP 403, error 10000/);
    const elsewhere = await rejection(
      build("cloudflare", {
        CF_API_EMAIL: "ops@example.com",
        CF_API_KEY: "global-key-0123456789",
        CLOUDFLARE_BASE_URL: api.baseUrl,
      })
        .present({ ...apex, fqdn: "_acme-challenge.nowhere.net." }),
    );
    assert.equal(
      elsewhere.message,
      "cloudflare: no zone of this account holds _acme-challenge.nowhere.net. (asked for nowhere.net)",
    );
    // Missing variables are named, each way round.
    const table: [Record<string, string>, RegExp][] = [
      [
        {},
        /provider cloudflare needs the variable CF_DNS_API_TOKEN, or CF_API_EMAIL and CF_API_KEY, not set/,
      ],
      [
        { CF_API_EMAIL: "a@b.c" },
        /needs the variable CF_API_KEY \(with CF_API_EMAIL\), or CF_DNS_API_TOKEN/,
      ],
      [
        { CLOUDFLARE_API_KEY: "k" },
        /needs the variable CF_API_EMAIL \(with CF_API_KEY\), or CF_DNS_API_TOKEN/,
      ],
    ];
    for (const [vars, re] of table) {
      assert.throws(
        () => build("cloudflare", vars),
        (e: Error) => e instanceof DnsConfigError && re.test(e.message),
      );
    }
  } finally {
    await api.close();
  }
});

Deno.test("route53 contract: SigV4 verified by the server, zone looked up by name, apex and wildcard share one record set, INSYNC awaited, the last value deletes the set", async () => {
  const key = {
    accessKeyId: "AKIDPORTICOTEST",
    secretAccessKey: "route53-secret-key-for-contract-tests",
  };
  const api = startRoute53Api({
    zones: ["example.com", "sub.example.com", "example.org"],
    keys: [key],
  });
  try {
    const r53 = build("route53", {
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
      AWS_REGION: "eu-west-1",
      AWS_ENDPOINT_URL_ROUTE_53: api.endpoint,
      AWS_POLLING_INTERVAL: "50ms",
    });
    await r53.present(apex);
    await r53.present(wild);
    await r53.present(wild); // already there: no change sent
    assert.deepEqual(api.recordSets("example.com"), [{
      name: "_acme-challenge.example.com.",
      type: "TXT",
      ttl: 10,
      values: [`"${apex.value}"`, `"${wild.value}"`],
    }]);
    assert.equal(api.requests.filter((r) => r.startsWith("POST")).length, 2, "two UPSERTs");
    assert.ok(
      api.requests.some((r) => r.startsWith("GET /2013-04-01/change/")),
      "waited for INSYNC",
    );
    assert.ok(api.requests.some((r) => r === "GET /2013-04-01/hostedzonesbyname"));
    await r53.cleanUp(apex);
    assert.deepEqual(api.recordSets("example.com")[0].values, [`"${wild.value}"`]);
    await r53.cleanUp(wild);
    assert.deepEqual(api.recordSets("example.com"), [], "the last value removed deletes the set");
    await r53.cleanUp(wild); // nothing left: not an error
    assert.equal(api.refused, 0);

    // A name in the delegated sub-zone goes to that zone (the longest match).
    const subRecord = { ...apex, fqdn: "_acme-challenge.a.sub.example.com." };
    const withZone = build("route53", {
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
      AWS_ENDPOINT_URL_ROUTE_53: api.endpoint,
      AWS_WAIT_FOR_RECORD_SETS_CHANGED: "false",
    });
    await withZone.present(subRecord);
    assert.equal(api.recordSets("sub.example.com").length, 1);
    await withZone.cleanUp(subRecord);
    // AWS_HOSTED_ZONE_ID skips the lookup.
    const byId = build("route53", {
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
      AWS_ENDPOINT_URL_ROUTE_53: api.endpoint,
      AWS_HOSTED_ZONE_ID: api.zoneIds["example.org."],
      AWS_WAIT_FOR_RECORD_SETS_CHANGED: "false",
    });
    const before = api.requests.filter((r) => r.includes("hostedzonesbyname")).length;
    const orgRecord = { ...apex, fqdn: "_acme-challenge.example.org." };
    await byId.present(orgRecord);
    assert.equal(api.requests.filter((r) => r.includes("hostedzonesbyname")).length, before);
    assert.equal(api.recordSets("example.org").length, 1);
    await byId.cleanUp(orgRecord);
  } finally {
    await api.close();
  }
});

Deno.test("route53 contract: session tokens, a wrong secret, an unknown key and a refused batch give the API's error, without the secret", async () => {
  const key = {
    accessKeyId: "AKIDSESSION",
    secretAccessKey: "session-secret-abcdefgh",
    sessionToken: "session-token-zyxw",
  };
  const api = startRoute53Api({ zones: ["example.com"], keys: [key] });
  try {
    const base = {
      AWS_ENDPOINT_URL_ROUTE_53: api.endpoint,
      AWS_WAIT_FOR_RECORD_SETS_CHANGED: "false",
    };
    const ok = build("route53", {
      ...base,
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
      AWS_SESSION_TOKEN: key.sessionToken,
    });
    await ok.present(apex);
    await ok.cleanUp(apex);
    const cases: [Record<string, string>, RegExp, string][] = [
      [
        {
          AWS_ACCESS_KEY_ID: key.accessKeyId,
          AWS_SECRET_ACCESS_KEY: "not-the-secret-123",
          AWS_SESSION_TOKEN: key.sessionToken,
        },
        /^route53: looking up hosted zone example\.com: HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match/,
        "not-the-secret-123",
      ],
      [
        {
          AWS_ACCESS_KEY_ID: "AKIDUNKNOWN",
          AWS_SECRET_ACCESS_KEY: "whatever-secret-1",
          AWS_SESSION_TOKEN: key.sessionToken,
        },
        /HTTP 403 InvalidClientTokenId: The security token included in the request is invalid/,
        "whatever-secret-1",
      ],
      [
        { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey },
        /HTTP 403 InvalidClientTokenId/,
        key.secretAccessKey,
      ],
    ];
    for (const [vars, re, secret] of cases) {
      const err = await rejection(build("route53", { ...base, ...vars }).present(apex));
      assert.match(err.message, re);
      assert.ok(!err.message.includes(secret), "no secret in the message");
    }
    // A name outside every zone of the id given: the batch is refused with Route 53's own message.
    const wrongZone = build("route53", {
      ...base,
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
      AWS_SESSION_TOKEN: key.sessionToken,
      AWS_HOSTED_ZONE_ID: api.zoneIds["example.com."],
    });
    const batch = await rejection(
      wrongZone.present({ ...apex, fqdn: "_acme-challenge.example.net." }),
    );
    assert.match(
      batch.message,
      /UPSERT TXT _acme-challenge\.example\.net\.: HTTP 400 InvalidChangeBatch: RRSet with DNS name _acme-challenge\.example\.net\. is not permitted in zone example\.com\./,
    );
    assert.throws(
      () => build("route53", {}),
      /provider route53 needs the variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, not set/,
    );
  } finally {
    await api.close();
  }
});

Deno.test("httpreq contract: default and RAW bodies, basic auth, and an endpoint error carried with its status and body", async () => {
  const plain = startHttpReqServer({ user: { name: "acme", password: "hook-password-42" } });
  const raw = startHttpReqServer({ mode: "RAW" });
  try {
    const p = build("httpreq", {
      HTTPREQ_ENDPOINT: plain.endpoint,
      HTTPREQ_USERNAME: "acme",
      HTTPREQ_PASSWORD: "hook-password-42",
    });
    await p.present(apex);
    await p.present(wild);
    assert.deepEqual(plain.records.get("_acme-challenge.example.com."), [apex.value, wild.value]);
    await p.cleanUp(apex);
    assert.deepEqual(plain.records.get("_acme-challenge.example.com."), [wild.value]);
    await p.cleanUp(wild);
    assert.equal(plain.records.size, 0);
    assert.deepEqual(plain.requests, [
      "POST /dns/present",
      "POST /dns/present",
      "POST /dns/cleanup",
      "POST /dns/cleanup",
    ]);

    const r = build("httpreq", { HTTPREQ_ENDPOINT: raw.endpoint, HTTPREQ_MODE: "RAW" });
    await r.present(wild);
    assert.deepEqual(
      raw.records.get("example.com"),
      [wild.keyAuthorization],
      "RAW: the domain without *., the key authorization",
    );
    await r.cleanUp(wild);
    assert.equal(raw.records.size, 0);

    const badPassword = await rejection(
      build("httpreq", {
        HTTPREQ_ENDPOINT: plain.endpoint,
        HTTPREQ_USERNAME: "acme",
        HTTPREQ_PASSWORD: "wrong-password-1",
      }).present(apex),
    );
    assert.equal(badPassword.message, "httpreq: POST /dns/present answered HTTP 401: unauthorized");
    const rawBodyToDefault = await rejection(
      build("httpreq", { HTTPREQ_ENDPOINT: raw.endpoint }).present(apex),
    );
    assert.match(rawBodyToDefault.message, /HTTP 400: RAW mode expects domain, token and keyAuth/);
    plain.failWith(500, "upstream DNS host is down");
    const down = await rejection(p.present(apex));
    assert.equal(
      down.message,
      "httpreq: POST /dns/present answered HTTP 500: upstream DNS host is down",
    );
    assert.throws(
      () => build("httpreq", {}),
      /provider httpreq needs the variable HTTPREQ_ENDPOINT, not set/,
    );
    assert.throws(
      () => build("httpreq", { HTTPREQ_ENDPOINT: "ftp://x" }),
      /HTTPREQ_ENDPOINT must be an http\(s\) URL/,
    );
    assert.throws(
      () => build("httpreq", { HTTPREQ_ENDPOINT: raw.endpoint, HTTPREQ_USERNAME: "u" }),
      /needs the variable HTTPREQ_PASSWORD/,
    );
  } finally {
    await plain.close();
    await raw.close();
  }
});

Deno.test("exec: the script gets present/cleanup with fqdn and value (RAW: domain, token, keyAuth); a failure carries its exit code and output", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/hook.sh`;
    await Deno.writeTextFile(
      script,
      `#!/bin/sh\necho "$@" >> "${dir}/calls"\nif [ "$2" = "_acme-challenge.fail.example.com." ]; then echo "zone is read-only" >&2; exit 3; fi\n`,
    );
    await Deno.chmod(script, 0o755);
    const e = build("exec", { EXEC_PATH: script });
    await e.present(apex);
    await e.cleanUp(apex);
    const r = build("exec", { EXEC_PATH: script, EXEC_MODE: "RAW" });
    await r.present(wild);
    assert.deepEqual((await Deno.readTextFile(`${dir}/calls`)).trim().split("\n"), [
      `present _acme-challenge.example.com. ${apex.value}`,
      `cleanup _acme-challenge.example.com. ${apex.value}`,
      `present -- example.com tok2 tok2.thumb`,
    ]);
    const err = await rejection(e.present({ ...apex, fqdn: "_acme-challenge.fail.example.com." }));
    assert.equal(err.message, `exec: "${script} present" exited with code 3: zone is read-only`);
    const missing = await rejection(build("exec", { EXEC_PATH: `${dir}/nope` }).present(apex));
    assert.match(missing.message, /^exec: cannot run EXEC_PATH ".*\/nope"/);
    assert.throws(() => build("exec", {}), /provider exec needs the variable EXEC_PATH, not set/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
