/**
 * DNS-01 pieces that need no server: the static config of `dnsChallenge`
 * (Traefik's keys, the deprecated ones folded in as Traefik does: cases
 * transcribed from traefik/traefik pkg/config/static/static_config_test.go
 * at fd5a576d, "ACME deprecation DelayBeforeCheck" and "…DisablePropagationCheck"),
 * wildcards in the wanted certificates, credentials (`_FILE`, the
 * per-resolver credentials file), provider errors, name servers, and the
 * propagation loop's modes on a scripted DNS.
 */
import assert from "node:assert/strict";
import { validateStatic } from "../lib/config/static.ts";
import { wantedCertificates } from "../lib/acme/domains.ts";
import { Credentials, parseCredentialsFile } from "../lib/acme/dns/credentials.ts";
import { createDnsProvider, DNS_PROVIDERS } from "../lib/acme/dns/providers.ts";
import { awaitPropagation, type DnsQuery, type PropagationOptions } from "../lib/acme/dns/propagation.ts";
import { type NameServer, parseNameServer } from "../lib/config/name_server.ts";
import { challengePreference } from "../lib/acme/issuer.ts";
import { DnsConfigError, DnsPropagationError } from "../lib/acme/dns/types.ts";
import type { MergedConfig } from "../lib/providers/merge.ts";
import type { StaticConfig } from "../lib/config/types.ts";

function staticWith(acme: Record<string, unknown>): StaticConfig {
  return validateStatic({
    entryPoints: { web: { address: ":80" } },
    certificatesResolvers: { foo: { acme } },
  } as never, "test.toml");
}

Deno.test("static config: dnsChallenge with Traefik's keys; the deprecated ones folded into propagation (Traefik's cases)", () => {
  const table: {
    name: string;
    dns: Record<string, unknown>;
    propagation: Record<string, unknown>;
  }[] = [
    {
      name: "provider only: defaults",
      dns: { provider: "bar" },
      propagation: {
        delayBeforeChecks: 0,
        disableChecks: false,
        requireAllRNS: false,
        disableANSChecks: false,
      },
    },
    {
      name: "ACME deprecation DelayBeforeCheck",
      dns: { provider: "bar", delayBeforeCheck: 123 },
      propagation: {
        delayBeforeChecks: 123_000,
        disableChecks: false,
        requireAllRNS: false,
        disableANSChecks: false,
      },
    },
    {
      name: "ACME deprecation DisablePropagationCheck",
      dns: { provider: "bar", disablePropagationCheck: true },
      propagation: {
        delayBeforeChecks: 0,
        disableChecks: true,
        requireAllRNS: false,
        disableANSChecks: false,
      },
    },
    {
      name: "propagation options",
      dns: {
        provider: "rfc2136",
        propagation: { delayBeforeChecks: "2s", requireAllRNS: true, disableANSChecks: true },
      },
      propagation: {
        delayBeforeChecks: 2000,
        disableChecks: false,
        requireAllRNS: true,
        disableANSChecks: true,
      },
    },
  ];
  for (const c of table) {
    const dns = staticWith({ dnsChallenge: c.dns }).certificatesResolvers.foo.acme.dnsChallenge!;
    assert.deepEqual(dns.propagation, c.propagation, c.name);
    assert.equal(dns.provider, c.dns.provider, c.name);
  }
  const full = staticWith({
    dnsChallenge: {
      provider: "cloudflare",
      resolvers: ["1.1.1.1:53", "8.8.8.8", "[2606:4700::1111]:53"],
      credentialsFile: "/run/cf.env",
    },
  }).certificatesResolvers.foo.acme.dnsChallenge!;
  assert.deepEqual(full.resolvers, ["1.1.1.1:53", "8.8.8.8", "[2606:4700::1111]:53"]);
  assert.equal(full.credentialsFile, "/run/cf.env");
  const errors: [Record<string, unknown>, RegExp][] = [
    [
      { dnsChallenge: {} },
      /certificatesResolvers\.foo\.acme\.dnsChallenge\.provider: missing; expected a string/,
    ],
    [
      { dnsChallenge: { provider: "x", resolvers: ["ns1.example.com:53"] } },
      /dnsChallenge\.resolvers\[0\]: expected an IP address with an optional port, like "1\.1\.1\.1:53"/,
    ],
    [
      { dnsChallenge: { provider: "x", propagation: { delayBeforeCheck: "1s" } } },
      /dnsChallenge\.propagation\.delayBeforeCheck/,
    ],
    [
      { email: "a@b.c" },
      /expected a challenge: "httpChallenge" or "tlsChallenge", or "dnsChallenge"/,
    ],
  ];
  for (const [acme, re] of errors) assert.throws(() => staticWith(acme), re);
});

function merged(
  routers: Record<
    string,
    { rule: string; domains?: { main: string; sans: string[] }[]; resolver: string }
  >,
): MergedConfig {
  return {
    routers: new Map(
      Object.entries(routers).map(([name, r]) => [name, {
        config: {
          rule: r.rule,
          service: "s",
          entryPoints: [],
          middlewares: [],
          tls: { certResolver: r.resolver, domains: r.domains ?? [] },
        },
      }]),
    ),
    tcp: { routers: new Map() },
    tls: { certificates: [], options: new Map(), stores: {} },
  } as unknown as MergedConfig;
}

Deno.test("wanted certificates: wildcards from a resolver with dnsChallenge; refused with the reason otherwise", () => {
  const sc = validateStatic({
    entryPoints: { web: { address: ":80" } },
    certificatesResolvers: {
      dns: { acme: { dnsChallenge: { provider: "rfc2136" } } },
      http: { acme: { httpChallenge: { entryPoint: "web" } } },
    },
  } as never, "test.toml");
  const { wanted, errors } = wantedCertificates(
    merged({
      a: {
        rule: "Host(`example.com`)",
        resolver: "dns",
        domains: [{ main: "example.com", sans: ["*.example.com"] }],
      },
      b: {
        rule: "Host(`x.example.org`)",
        resolver: "http",
        domains: [{ main: "*.example.org", sans: [] }],
      },
      c: {
        rule: "Host(`y.example.net`)",
        resolver: "dns",
        domains: [{ main: "a.*.example.net", sans: [] }],
      },
      d: { rule: "Host(`plain.example.com`)", resolver: "dns" },
    }),
    sc,
  );
  assert.deepEqual(wanted.map((w) => [w.resolver, w.main, w.sans]), [
    ["dns", "example.com", ["*.example.com"]],
    ["dns", "plain.example.com", []],
  ]);
  assert.deepEqual(errors, [
    'router "b": "*.example.org" needs a DNS-01 challenge, which resolver "http" does not offer (add dnsChallenge to it)',
    'router "c": "a.*.example.net" is not a wildcard a CA issues; expected "*." followed by a domain, like "*.example.com"',
  ]);
  assert.deepEqual(
    challengePreference({ httpChallenge: { entryPoint: "web" }, dnsChallenge: {} } as never),
    ["http-01", "dns-01"],
  );
  assert.deepEqual(challengePreference({ dnsChallenge: {} } as never), ["dns-01"]);
});

Deno.test("credentials: a resolver's credentialsFile before the environment, NAME_FILE, and errors that name the variable, never the value", () => {
  const files: Record<string, string> = {
    "/run/a.env":
      "# account A\nexport CF_DNS_API_TOKEN='token-of-a'\nCF_ZONE_API_TOKEN=\"zone-of-a\"\n\nRFC2136_TSIG_SECRET_FILE=/run/secret\n",
    "/run/secret": "c2VjcmV0LWZyb20tZmlsZQ==\n",
    "/run/bad.env": "CF_DNS_API_TOKEN=x\nthis line is wrong\n",
  };
  const readFile = (p: string) => {
    if (!(p in files)) {
      throw new Deno.errors.NotFound(`No such file or directory (os error 2): readfile '${p}'`);
    }
    return files[p];
  };
  const env = (n: string) =>
    ({ CF_DNS_API_TOKEN: "token-from-env", CF_API_EMAIL: "ops@example.com" } as Record<
      string,
      string
    >)[n];
  const a = Credentials.load(
    "certificatesResolvers.a.acme.dnsChallenge",
    env,
    "/run/a.env",
    readFile,
  );
  assert.equal(a.secret("CF_DNS_API_TOKEN"), "token-of-a", "the file wins over the environment");
  assert.equal(a.get("CF_ZONE_API_TOKEN"), "zone-of-a");
  assert.equal(
    a.get("CF_API_EMAIL"),
    "ops@example.com",
    "what the file lacks comes from the environment",
  );
  assert.equal(a.get("RFC2136_TSIG_SECRET"), "c2VjcmV0LWZyb20tZmlsZQ==", "NAME_FILE, trimmed");
  assert.deepEqual(a.secrets, ["token-of-a"]);
  const plain = new Credentials("w", env, undefined, readFile);
  assert.equal(plain.get("CF_DNS_API_TOKEN"), "token-from-env");
  assert.equal(plain.duration("X_TIMEOUT", 5), 5);
  assert.equal(
    new Credentials("w", () => "90", undefined, readFile).duration("X", 0),
    90_000,
    "lego's seconds",
  );
  assert.equal(new Credentials("w", () => "250ms", undefined, readFile).duration("X", 0), 250);
  assert.throws(
    () => new Credentials("w", () => "soon", undefined, readFile).duration("RFC2136_TTL_X", 0),
    /w: RFC2136_TTL_X must be a number of seconds/,
  );
  assert.deepEqual([...parseCredentialsFile("f", 'A=1\n# c\n  B = two words \nexport C="3"\n')], [
    ["A", "1"],
    ["B", "two words"],
    ["C", "3"],
  ]);
  assert.throws(
    () => Credentials.load("r", env, "/run/bad.env", readFile),
    /\/run\/bad\.env, line 2: expected NAME=value/,
  );
  assert.throws(
    () =>
      Credentials.load("certificatesResolvers.r.acme.dnsChallenge", env, "/run/none.env", readFile),
    (e: Error) =>
      e instanceof DnsConfigError &&
      /certificatesResolvers\.r\.acme\.dnsChallenge\.credentialsFile: cannot read "\/run\/none\.env"/
        .test(e.message),
  );
  assert.throws(
    () =>
      new Credentials(
        "r",
        (n) => (n === "RFC2136_TSIG_SECRET_FILE" ? "/run/gone" : undefined),
        undefined,
        readFile,
      ).get("RFC2136_TSIG_SECRET"),
    /r: RFC2136_TSIG_SECRET_FILE names "\/run\/gone", which cannot be read/,
  );
});

Deno.test("providers: an unknown name lists the supported ones; missing and invalid variables are named", () => {
  assert.deepEqual(DNS_PROVIDERS, ["cloudflare", "exec", "httpreq", "rfc2136", "route53"]);
  const cfg = (provider: string) => ({
    provider,
    resolvers: [],
    propagation: {
      delayBeforeChecks: 0,
      disableChecks: false,
      requireAllRNS: false,
      disableANSChecks: false,
    },
  });
  const table: [string, Record<string, string>, RegExp][] = [
    [
      "digitalocean",
      {},
      /^certificatesResolvers\.r\.acme\.dnsChallenge\.provider: unknown DNS provider "digitalocean"; supported: cloudflare, exec, httpreq, rfc2136, route53$/,
    ],
    [
      "rfc2136",
      {},
      /^certificatesResolvers\.r\.acme\.dnsChallenge: provider rfc2136 needs the variable RFC2136_NAMESERVER, not set/,
    ],
    [
      "rfc2136",
      { RFC2136_TSIG_KEY: "k." },
      /needs the variables RFC2136_NAMESERVER, RFC2136_TSIG_SECRET, not set/,
    ],
    [
      "rfc2136",
      { RFC2136_NAMESERVER: "127.0.0.1", RFC2136_TSIG_SECRET: "c2VjcmV0" },
      /needs the variable RFC2136_TSIG_KEY, not set/,
    ],
    [
      "rfc2136",
      {
        RFC2136_NAMESERVER: "127.0.0.1",
        RFC2136_TSIG_KEY: "k.",
        RFC2136_TSIG_SECRET: "c2VjcmV0",
        RFC2136_TSIG_ALGORITHM: "hmac-sha3",
      },
      /RFC2136_TSIG_ALGORITHM "hmac-sha3" is not supported; expected one of hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512/,
    ],
    ["rfc2136", {
      RFC2136_NAMESERVER: "127.0.0.1",
      RFC2136_TSIG_KEY: "k.",
      RFC2136_TSIG_SECRET: "not base64 !!",
    }, /RFC2136_TSIG_SECRET is not valid base64$/],
    [
      "rfc2136",
      { RFC2136_NAMESERVER: "127.0.0.1", RFC2136_TTL: "a minute" },
      /RFC2136_TTL must be a whole number/,
    ],
    ["exec", { EXEC_PATH: "/x", EXEC_MODE: "JSON" }, /EXEC_MODE must be empty or RAW/],
  ];
  for (const [provider, vars, re] of table) {
    assert.throws(() => createDnsProvider("r", cfg(provider), (n) => vars[n]), (e: Error) => {
      assert.ok(e instanceof DnsConfigError, `${provider}: ${e.message}`);
      assert.match(e.message, re);
      assert.ok(
        !e.message.includes("c2VjcmV0") && !e.message.includes("not base64"),
        "no secret in the message",
      );
      return true;
    });
  }
});

Deno.test("parseNameServer: lego's forms, port 53 by default", () => {
  const table: [string, NameServer | RegExp][] = [
    ["1.1.1.1", { ipAddr: "1.1.1.1", port: 53 }],
    ["127.0.0.1:5353", { ipAddr: "127.0.0.1", port: 5353 }],
    ["[2606:4700::1111]:53", { ipAddr: "2606:4700::1111", port: 53 }],
    ["2606:4700::1111", { ipAddr: "2606:4700::1111", port: 53 }],
    ["dns.google:53", /expected an IP address/],
    ["1.1.1.300", /expected an IP address/],
    ["1.1.1.1:0", /expected an IP address/],
  ];
  for (const [text, want] of table) {
    const got = parseNameServer(text);
    if (want instanceof RegExp) assert.match(String(got), want, text);
    else assert.deepEqual(got, want, text);
  }
});

/** A scripted DNS: answers by server and question; every query is recorded. */
function scripted(answers: Record<string, unknown[] | "timeout">) {
  const asked: string[] = [];
  const query: DnsQuery = (name, type, server) => {
    const key = `${server ? `${server.ipAddr}:${server.port}` : "system"} ${type} ${name}`;
    asked.push(key);
    const a = answers[key];
    if (a === "timeout") {
      return Promise.reject(Object.assign(new Error("timed out"), { name: "TimeoutError" }));
    }
    if (!a) return Promise.reject(new Deno.errors.NotFound("no records found"));
    return Promise.resolve(a);
  };
  return { query, asked };
}

Deno.test("propagation loop (scripted DNS): lego's modes; a lagging resolver is waited for; the timeout names every server and answer", async () => {
  let now = 0;
  const clock = { now: () => now, sleep: (ms: number) => Promise.resolve(void (now += ms)) };
  const r1 = { ipAddr: "10.9.9.1", port: 53 };
  const r2 = { ipAddr: "10.9.9.2", port: 53 };
  const base: PropagationOptions = {
    resolvers: [r1, r2],
    requireAllRNS: false,
    disableANSChecks: false,
    disableChecks: false,
    delayBeforeChecksMs: 0,
    timeoutMs: 10_000,
    intervalMs: 2_000,
  };
  const rec = { domain: "*.example.com", fqdn: "_acme-challenge.example.com.", value: "v" };
  const zone: Record<string, unknown[]> = {
    "10.9.9.1:53 SOA example.com.": [{ mname: "ns1.example.com." }],
    "10.9.9.1:53 NS example.com.": ["ns1.example.com."],
    "10.9.9.1:53 A ns1.example.com.": ["10.9.9.53"],
  };
  // Default: the authoritative server only (found through the first resolver).
  let dns = scripted({ ...zone, "10.9.9.53:53 TXT _acme-challenge.example.com.": [["v"]] });
  const report = await awaitPropagation([rec], base, dns.query, clock);
  assert.deepEqual(report.confirmedBy, ["10.9.9.53:53 (authoritative ns1.example.com.)"]);
  assert.ok(
    !dns.asked.some((q) => q.includes("TXT") && q.startsWith("10.9.9.2")),
    "resolvers not asked for TXT",
  );
  // Neither check required: nothing is asked (lego: trust the delay).
  dns = scripted({});
  await awaitPropagation(
    [rec],
    { ...base, disableANSChecks: true, delayBeforeChecksMs: 500 },
    dns.query,
    clock,
  );
  assert.deepEqual(dns.asked, []);
  // requireAllRNS: the second resolver has it only from the third round on.
  let rounds = 0;
  const lagging: DnsQuery = (name, type, server, t) => {
    if (type === "TXT" && server?.ipAddr === "10.9.9.2") {
      rounds++;
      return rounds >= 3 ? Promise.resolve([["v"]]) : Promise.reject(new Deno.errors.NotFound("x"));
    }
    return type === "TXT" ? Promise.resolve([["v"]]) : scripted(zone).query(name, type, server, t);
  };
  now = 0;
  const slow = await awaitPropagation(
    [rec],
    { ...base, requireAllRNS: true, disableANSChecks: true },
    lagging,
    clock,
  );
  assert.equal(slow.rounds, 3);
  assert.equal(slow.waitedMs, 4_000);
  // Timeout: every server named with its last answer.
  now = 0;
  dns = scripted({
    ...zone,
    "10.9.9.1:53 TXT _acme-challenge.example.com.": [["old"], ["v"]],
    "10.9.9.2:53 TXT _acme-challenge.example.com.": "timeout",
    "10.9.9.53:53 TXT _acme-challenge.example.com.": [["old"]],
  });
  const err = await awaitPropagation([rec], { ...base, requireAllRNS: true }, dns.query, clock)
    .then(() => undefined, (e) => e);
  assert.ok(err instanceof DnsPropagationError);
  assert.equal(
    err.message,
    // Rounds at 0, 2, …, 10 s; the last round's queries get what is left (the 200 ms floor).
    'DNS-01 propagation: not visible within 10000 ms after 6 checks: TXT _acme-challenge.example.com. = "v" for *.example.com: ' +
      '10.9.9.1:53 (resolver) answered ["old","v"]; 10.9.9.2:53 (resolver) answered no answer within 200 ms; ' +
      '10.9.9.53:53 (authoritative ns1.example.com.) answered ["old"]',
  );
  // A zone nobody knows.
  now = 0;
  dns = scripted({});
  const noZone = await awaitPropagation([rec], { ...base, timeoutMs: 1_000 }, dns.query, clock)
    .then(() => undefined, (e) => e);
  assert.match(
    noZone.message,
    /authoritative servers \(lookup\) answered cannot find the zone of _acme-challenge\.example\.com\. \(10\.9\.9\.1:53: no SOA record for any parent name; 10\.9\.9\.2:53: no SOA record for any parent name\)/,
  );
});
