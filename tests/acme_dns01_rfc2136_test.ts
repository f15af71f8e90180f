/**
 * DNS-01 against a real BIND 9 (tests/fixtures/bind9.ts), without a CA:
 *
 * - the `rfc2136` provider (TSIG hmac-sha256 and hmac-sha512, read back
 *   with dig): a wildcard's and its apex's values coexist under one name,
 *   and cleanup removes only its own;
 * - TSIG failures (BADSIG, BADKEY, REFUSED) named with the rcode and a
 *   hint, never the secret; `RFC2136_TSIG_FILE` and `_FILE` variables;
 * - the propagation check: the authoritative servers found by SOA/NS walk
 *   and queried on port 53 (through the fixture's relay, counted), the
 *   recursive check (`requireAllRNS`), and a timeout naming the server
 *   and its answer;
 * - CNAME following: the record goes to the CNAME's target;
 * - a new manager removes records an earlier one left without an order.
 */
import assert from "node:assert/strict";
import { type Bind9, startBind9 } from "./fixtures/bind9.ts";
import { createDnsProvider } from "../lib/acme/dns/providers.ts";
import { awaitPropagation } from "../lib/acme/dns/propagation.ts";
import { parseNameServer } from "../lib/config/name_server.ts";
import { MemoryDnsRecordJournal } from "../lib/acme/dns/record_journal.ts";
import { DnsSolver } from "../lib/acme/dns/solver.ts";
import { DnsPropagationError, type TxtRecord } from "../lib/acme/dns/types.ts";
import { AcmeManager } from "../lib/acme/manager.ts";
import { ChallengeAnswers } from "../lib/acme/challenges.ts";
import { FileStorage } from "../lib/acme/storage.ts";
import { MemoryOrderJournal } from "../lib/acme/journal.ts";
import { CertificateStore } from "../lib/tls/store.ts";
import { Logger } from "../lib/log/logger.ts";
import type { DnsChallengeConfig } from "../lib/config/types.ts";
import type { StoredCertificate } from "../lib/tls/certificate.ts";

const ZONE = "example.test";

function dnsConfig(bind: Bind9, extra: Partial<DnsChallengeConfig> = {}): DnsChallengeConfig {
  return {
    provider: "rfc2136",
    resolvers: [bind.server],
    propagation: {
      delayBeforeChecks: 0,
      disableChecks: false,
      requireAllRNS: false,
      disableANSChecks: false,
    },
    ...extra,
  };
}

function record(domain: string, value: string): TxtRecord {
  return {
    domain,
    fqdn: `_acme-challenge.${domain.replace(/^\*\./, "")}.`,
    value,
    token: "tok",
    keyAuthorization: "tok.thumb",
  };
}

function envOf(vars: Record<string, string>) {
  return (name: string) => vars[name];
}

/** A logger whose lines the test reads. */
function capture() {
  const lines: string[] = [];
  return {
    lines,
    log: new Logger({ level: "DEBUG", format: "json", write: (l) => lines.push(l) }),
  };
}

Deno.test({
  name:
    "rfc2136 on BIND 9: apex and wildcard values coexist under one name, each cleanup removes only its own (hmac-sha256, hmac-sha512)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bind = await startBind9({ zones: [ZONE] });
    try {
      for (const key of [bind.keys.sha256, bind.keys.sha512]) {
        const provider = createDnsProvider(
          "dns",
          dnsConfig(bind),
          envOf({
            RFC2136_NAMESERVER: bind.server,
            RFC2136_TSIG_KEY: key.name,
            RFC2136_TSIG_SECRET: key.secret,
            RFC2136_TSIG_ALGORITHM: key.algorithm,
            RFC2136_TTL: "30",
          }),
        );
        const apex = record(ZONE, `apex-${key.algorithm}`);
        const wild = record(`*.${ZONE}`, `wild-${key.algorithm}`);
        await provider.present(apex);
        await provider.present(wild);
        await provider.present(wild); // publishing again is not an error (a resumed order)
        assert.deepEqual(
          (await bind.txt(`_acme-challenge.${ZONE}`)).sort(),
          [apex.value, wild.value].sort(),
        );
        await provider.cleanUp(apex);
        assert.deepEqual(await bind.txt(`_acme-challenge.${ZONE}`), [wild.value], key.algorithm);
        await provider.cleanUp(wild);
        assert.deepEqual(await bind.txt(`_acme-challenge.${ZONE}`), [], key.algorithm);
      }
    } finally {
      await bind.stop();
    }
  },
});

Deno.test({
  name:
    "rfc2136 on BIND 9: BADSIG, BADKEY and REFUSED are named with a hint and no secret; RFC2136_TSIG_FILE and _FILE work",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bind = await startBind9({ zones: [ZONE, { name: "locked.test", updateKeys: [] }] });
    const dir = await Deno.makeTempDir();
    try {
      const wrongSecret = btoa("a wrong secret of some length!!");
      const k = bind.keys.sha256;
      const cases: { name: string; vars: Record<string, string>; domain: string; error: RegExp }[] =
        [
          {
            name: "wrong secret",
            vars: { RFC2136_TSIG_KEY: k.name, RFC2136_TSIG_SECRET: wrongSecret },
            domain: ZONE,
            error:
              /answered NOTAUTH \(TSIG error BADSIG\): the server's secret for key "portico-256\." differs/,
          },
          {
            name: "unknown key",
            vars: { RFC2136_TSIG_KEY: "nobody.", RFC2136_TSIG_SECRET: k.secret },
            domain: ZONE,
            error: /answered NOTAUTH \(TSIG error BADKEY\): the server has no key "nobody\."/,
          },
          {
            name: "wrong algorithm",
            vars: {
              RFC2136_TSIG_KEY: k.name,
              RFC2136_TSIG_SECRET: k.secret,
              RFC2136_TSIG_ALGORITHM: "hmac-sha512",
            },
            domain: ZONE,
            error: /TSIG error BADKEY/,
          },
          {
            name: "zone refuses updates",
            vars: { RFC2136_TSIG_KEY: k.name, RFC2136_TSIG_SECRET: k.secret },
            domain: "locked.test",
            error:
              /zone locked\.test\. at 127\.0\.0\.1:\d+ answered REFUSED: the server refused the update: does allow-update/,
          },
        ];
      for (const c of cases) {
        const provider = createDnsProvider(
          "dns",
          dnsConfig(bind),
          envOf({ RFC2136_NAMESERVER: bind.server, ...c.vars }),
        );
        const err = await provider.present(record(c.domain, "v")).then(() => undefined, (e) => e);
        assert.ok(err instanceof Error, `${c.name}: rejected`);
        assert.match(err.message, c.error, c.name);
        assert.match(err.message, /^rfc2136: DNS UPDATE adding TXT _acme-challenge\./, c.name);
        assert.ok(!err.message.includes(c.vars.RFC2136_TSIG_SECRET), `${c.name}: no secret`);
      }
      // The key file as tsig-keygen writes it, and the secret through _FILE.
      await Deno.writeTextFile(
        `${dir}/k.key`,
        `key "${bind.keys.sha512.name}" {\n\talgorithm hmac-sha512;\n\tsecret "${bind.keys.sha512.secret}";\n};\n`,
      );
      await Deno.writeTextFile(`${dir}/secret`, `${bind.keys.sha256.secret}\n`);
      const fileCases: Record<string, string>[] = [
        { RFC2136_TSIG_FILE: `${dir}/k.key` },
        { RFC2136_TSIG_KEY: bind.keys.sha256.name, RFC2136_TSIG_SECRET_FILE: `${dir}/secret` },
      ];
      for (const vars of fileCases) {
        const provider = createDnsProvider(
          "dns",
          dnsConfig(bind),
          envOf({ RFC2136_NAMESERVER: bind.server, ...vars }),
        );
        await provider.present(record(ZONE, "from-a-file"));
        assert.deepEqual(await bind.txt(`_acme-challenge.${ZONE}`), ["from-a-file"]);
        await provider.cleanUp(record(ZONE, "from-a-file"));
        assert.deepEqual(await bind.txt(`_acme-challenge.${ZONE}`), []);
      }
    } finally {
      await bind.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "propagation on BIND 9: authoritative servers found by SOA/NS walk and asked on port 53; requireAllRNS; a timeout names the server and its answer",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bind = await startBind9({ zones: [ZONE], nsAddress: true });
    try {
      const provider = createDnsProvider(
        "dns",
        dnsConfig(bind),
        envOf({
          RFC2136_NAMESERVER: bind.server,
          RFC2136_TSIG_KEY: bind.keys.sha256.name,
          RFC2136_TSIG_SECRET: bind.keys.sha256.secret,
        }),
      );
      const resolver = parseNameServer(bind.server);
      assert.ok(typeof resolver !== "string");
      const base = {
        resolvers: [resolver],
        requireAllRNS: false,
        disableANSChecks: false,
        disableChecks: false,
        delayBeforeChecksMs: 0,
        timeoutMs: 1200,
        intervalMs: 200,
        queryTimeoutMs: 1000,
      };
      const apex = record(ZONE, "apex-value");
      const wild = record(`*.${ZONE}`, "wild-value");

      // Nothing published yet: the timeout names the authoritative server and its answer.
      const before = bind.nsQueries();
      const missing = await awaitPropagation([apex], base).then(() => undefined, (e) => e);
      assert.ok(missing instanceof DnsPropagationError);
      assert.match(
        missing.message,
        new RegExp(
          `not visible within 1200 ms after \\d+ checks: TXT _acme-challenge\\.example\\.test\\. = "apex-value" for example\\.test: ${
            bind.nsAddress!.replaceAll(".", "\\.")
          }:53 \\(authoritative ns\\.example\\.test\\.\\) answered no TXT record`,
        ),
      );
      assert.ok(bind.nsQueries() > before, "the authoritative server was asked on port 53");

      // Only the apex's value is there: the wildcard's still times out, saying what it saw.
      await provider.present(apex);
      const partial = await awaitPropagation([apex, wild], { ...base, requireAllRNS: true })
        .then(() => undefined, (e) => e);
      assert.ok(partial instanceof DnsPropagationError);
      assert.match(
        partial.message,
        /"wild-value" for \*\.example\.test: 127\.0\.0\.1:\d+ \(resolver\) answered \["apex-value"\]/,
      );
      assert.doesNotMatch(partial.message, /"apex-value" for example\.test/);

      // Both there: confirmed by the resolver and by the authoritative server.
      await provider.present(wild);
      const asked = bind.nsQueries();
      const report = await awaitPropagation([apex, wild], { ...base, requireAllRNS: true });
      assert.equal(report.rounds, 1);
      assert.deepEqual(
        report.confirmedBy.sort(),
        [
          `${bind.nsAddress}:53 (authoritative ns.example.test.)`,
          `${bind.server} (resolver)`,
        ].sort(),
      );
      assert.ok(bind.nsQueries() > asked);

      // disableChecks and the delay: no query, the delay is waited.
      const quiet = bind.nsQueries();
      const delayed = await awaitPropagation([record("other.example.test", "x")], {
        ...base,
        disableChecks: true,
        delayBeforeChecksMs: 300,
      });
      assert.ok(delayed.waitedMs >= 290 && delayed.rounds === 0);
      assert.equal(bind.nsQueries(), quiet);
      await provider.cleanUp(apex);
      await provider.cleanUp(wild);
    } finally {
      await bind.stop();
    }
  },
});

Deno.test({
  name:
    "DnsSolver on BIND 9: a CNAME'd _acme-challenge is published at its target; cleanup by order; records journalled with term and node",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bind = await startBind9({
      zones: [{
        name: ZONE,
        records: ["_acme-challenge.alias IN CNAME _acme-challenge.target.example.test."],
      }],
    });
    try {
      const journal = new MemoryDnsRecordJournal();
      const { log, lines } = capture();
      let acting = true;
      const solver = new DnsSolver({
        resolver: "dns",
        config: dnsConfig(bind),
        env: envOf({
          RFC2136_NAMESERVER: bind.server,
          RFC2136_TSIG_KEY: bind.keys.sha512.name,
          RFC2136_TSIG_SECRET: bind.keys.sha512.secret,
          RFC2136_TSIG_ALGORITHM: "hmac-sha512.",
        }),
        journal,
        log,
        identity: () => ({ term: 7, nodeId: "n2" }),
        mayAct: () => acting,
      });
      const published = await solver.present("alias.example.test", [
        {
          domain: "alias.example.test",
          token: "t1",
          keyAuthorization: "t1.x",
          txtValue: "via-cname",
        },
        { domain: "*.alias.example.test", token: "t2", keyAuthorization: "t2.x", txtValue: "wild" },
      ]);
      assert.deepEqual(published.map((r) => r.fqdn), [
        "_acme-challenge.target.example.test.",
        "_acme-challenge.target.example.test.",
      ]);
      assert.deepEqual((await bind.txt("_acme-challenge.target.example.test")).sort(), [
        "via-cname",
        "wild",
      ]);
      const entries = await journal.list();
      assert.deepEqual(entries.map((e) => [e.main, e.term, e.nodeId]), [
        ["alias.example.test", 7, "n2"],
        ["alias.example.test", 7, "n2"],
      ]);
      // Not the manager any more: the provider is not touched.
      acting = false;
      assert.equal(await solver.cleanUp("alias.example.test"), 0);
      assert.equal((await bind.txt("_acme-challenge.target.example.test")).length, 2);
      await assert.rejects(
        solver.present("x.example.test", [
          { domain: "x.example.test", token: "t", keyAuthorization: "t.x", txtValue: "no" },
        ]),
        /no longer the manager/,
      );
      assert.deepEqual(await bind.txt("_acme-challenge.x.example.test"), []);
      acting = true;
      assert.equal(await solver.cleanUp("alias.example.test"), 2);
      assert.deepEqual(await bind.txt("_acme-challenge.target.example.test"), []);
      assert.equal((await journal.list()).filter((e) => e.main === "alias.example.test").length, 0);
      assert.ok(lines.some((l) => l.includes("DNS-01: TXT record removed")));
      assert.ok(!lines.join("\n").includes(bind.keys.sha512.secret), "no secret logged");
    } finally {
      await bind.stop();
    }
  },
});

Deno.test({
  name:
    "a new manager removes TXT records an earlier one journalled and left without an order, and keeps those of a journalled order",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bind = await startBind9({ zones: [ZONE] });
    const dir = await Deno.makeTempDir();
    try {
      const env = envOf({
        RFC2136_NAMESERVER: bind.server,
        RFC2136_TSIG_KEY: bind.keys.sha256.name,
        RFC2136_TSIG_SECRET: bind.keys.sha256.secret,
      });
      const provider = createDnsProvider("dns", dnsConfig(bind), env);
      const records = new MemoryDnsRecordJournal();
      const stale = record(`*.${ZONE}`, "left-behind");
      const live = record("live.example.test", "order-in-flight");
      for (const [r, main] of [[stale, ZONE], [live, "live.example.test"]] as const) {
        await provider.present(r);
        await records.save({ ...r, resolver: "dns", main, term: 3, nodeId: "n1", presentedAt: "" });
      }
      const storage = new FileStorage(`${dir}/acme.json`);
      // The order of live.example.test is still journalled: its resumed order cleans up.
      const orders = new MemoryOrderJournal((r, c) => storage.saveCertificate(r, c));
      await orders.save({
        resolver: "dns",
        main: "live.example.test",
        domains: ["live.example.test"],
        orderUrl: "https://127.0.0.1:1/order/1",
        state: "validating",
        term: 3,
        nodeId: "n1",
        tokens: [],
        keyPem: "unused",
        createdAt: new Date().toISOString(),
      });
      const { log, lines } = capture();
      const manager = new AcmeManager({
        resolvers: {
          dns: {
            acme: {
              caServer: "https://127.0.0.1:1/dir",
              storage: `${dir}/acme.json`,
              keyType: "EC256",
              caCertificates: [],
              dnsChallenge: dnsConfig(bind),
            },
          },
        },
        storage,
        challenges: new ChallengeAnswers(new CertificateStore({} as StoredCertificate)),
        tlsStore: new CertificateStore({} as StoredCertificate),
        log,
        env,
        journal: orders,
        dnsRecords: records,
      });
      await manager.activate();
      manager.deactivate();
      assert.deepEqual(
        await bind.txt(`_acme-challenge.${ZONE}`),
        [],
        "the stale record is removed",
      );
      assert.deepEqual(await bind.txt("_acme-challenge.live.example.test"), ["order-in-flight"]);
      assert.deepEqual((await records.list()).map((e) => e.main), ["live.example.test"]);
      assert.ok(
        lines.some((l) => l.includes("removed stale DNS-01 records of an earlier manager")),
      );
      await provider.cleanUp(live);
    } finally {
      await bind.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
