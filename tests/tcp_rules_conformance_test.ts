/**
 * Traefik v3's own TCP muxer tests (pkg/muxer/tcp, as data in
 * tests/data/traefik_tcp_mux_vectors.json) run against Portico's TCP rule
 * engine. The v2-syntax suites are not run: Portico refuses
 * `ruleSyntax = "v2"` (see the last test).
 */

import assert from "node:assert/strict";
import { compileTcpRule, parseHostSNI, type TcpConnData } from "../lib/rules/tcp.ts";
import { validateDynamic } from "../lib/config/dynamic.ts";

interface Case {
  serverName: string;
  remoteAddr: string;
  alpn: string[];
  matches: boolean;
}
interface Vector {
  suite: string;
  kind: string;
  desc: string;
  rule?: string;
  ruleSyntax?: string;
  connData: "NewConnData" | "raw";
  expectError: boolean;
  cases: Case[];
  extra?: Record<string, unknown>;
}

const vectors: Vector[] = JSON.parse(
  Deno.readTextFileSync(new URL("./data/traefik_tcp_mux_vectors.json", import.meta.url)),
);
const v3 = vectors.filter((v) => v.ruleSyntax !== "v2" && v.kind !== "matcherFunc");

/** What Traefik's NewConnData does: SNI lower-cased and trimmed, the port cut off the remote address. */
function connOf(c: Case, how: Vector["connData"]): TcpConnData {
  if (how === "raw") return { serverName: c.serverName, clientIp: c.remoteAddr, alpn: c.alpn };
  const addr = c.remoteAddr;
  const host = addr.startsWith("[") ? addr.slice(1, addr.indexOf("]")) : addr.slice(0, addr.lastIndexOf(":"));
  return { serverName: c.serverName.trim().toLowerCase(), clientIp: host, alpn: c.alpn };
}

function compiles(rule: string): ReturnType<typeof compileTcpRule> | Error {
  try {
    return compileTcpRule(rule);
  } catch (e) {
    return e as Error;
  }
}

for (const v of v3) {
  Deno.test(`Traefik TCP ${v.suite}: ${v.desc}`, () => {
    switch (v.kind) {
      case "route":
      case "matcher":
      case "catchAll": {
        const rule = compiles(v.rule ?? "");
        if (v.expectError) {
          assert.ok(rule instanceof Error, `rule ${v.rule} must be refused`);
          return;
        }
        assert.ok(!(rule instanceof Error), `rule ${v.rule}: ${(rule as Error).message}`);
        for (const c of v.cases) {
          assert.equal(rule.match(connOf(c, v.connData)), c.matches, `${v.rule} on ${JSON.stringify(c)}`);
        }
        if (v.kind === "catchAll") assert.equal(rule.catchAll, v.extra!.expectedCatchAll);
        return;
      }
      case "parseHostSNI": {
        if (v.expectError) return void assert.throws(() => parseHostSNI(v.rule!));
        assert.deepEqual(parseHostSNI(v.rule!), v.extra!.expectedDomains ?? []);
        return;
      }
      case "rulePriority": {
        const rule = compiles(v.rule!);
        assert.ok(!(rule instanceof Error));
        assert.equal(rule.priority, v.extra!.expectedPriority);
        return;
      }
      case "priority": {
        const routes = (v.extra!.routes as { rule: string; priority: number; provider: string }[])
          .map((r) => ({ ...r, compiled: compileTcpRule(r.rule, r.priority) }));
        // Ties keep the order routes were added in (a stable sort), as Traefik's do.
        routes.sort((a, b) => b.compiled.priority - a.compiled.priority);
        for (const c of v.cases) {
          const winner = routes.find((r) => r.compiled.match(connOf(c, v.connData)));
          assert.equal(winner?.rule, v.extra!.expectedRule);
        }
        return;
      }
      default:
        throw new Error(`unknown vector kind ${v.kind}`);
    }
  });
}

Deno.test("the TCP conformance vectors are all there and all v3 ones run", () => {
  assert.equal(vectors.length, 225);
  assert.equal(v3.length, 102);
});

Deno.test("ruleSyntax v2 on a TCP router is refused with a clear error", () => {
  assert.throws(
    () =>
      validateDynamic({
        tcp: { routers: { r: { rule: "HostSNI(`a`)", service: "s", ruleSyntax: "v2" } } },
      }, "dynamic.toml"),
    /tcp\.routers\.r\.ruleSyntax: expected "v3" \(Traefik v2 rule syntax is not supported\)/,
  );
});
