/**
 * @module
 * Runs the Traefik v3 rule vectors (`shared/conformance/traefik-rule-vectors.json`, see its
 * README) against the rule engine over real HTTP: a `Deno.serve` on 127.0.0.1 routes with
 * compiled rules, and each vector request is written as raw bytes on a TCP socket so the
 * method case, Host header, absolute-form target and percent-encodings reach the server
 * exactly as in the vector. Shared by `scripts/conformance.ts` and `tests/conformance_test.ts`.
 */

import {
  compareRoutes,
  type CompiledRule,
  compileRule,
  defaultPriority,
  matchRequestFrom,
  parseDomains,
  RoutingPathError,
  RuleSyntaxError,
} from "../lib/rules/mod.ts";

/** Where the vectors live: `shared/` beside the repository root. */
export const VECTORS_URL = new URL(
  "../../shared/conformance/traefik-rule-vectors.json",
  import.meta.url,
);

/** Test-only request header carrying the vector's socket peer address to the handler. */
export const REMOTE_ADDR_HEADER = "x-conformance-remote-addr";
const CASE_HEADER = "x-conformance-case";

interface VectorRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
  remoteAddr: string;
  expected: number;
  expectedRoute?: string;
  expectedRoutingPath?: string;
  raw?: string;
  note?: string;
}

interface VectorRoute {
  name: string;
  rule: string;
  priority: number;
  priorityFromRule: boolean;
  provider: string;
}

/** One element of the vectors file. */
export interface VectorCase {
  suite: string;
  kind: "match" | "priority" | "parseDomains" | "rulePriority" | "routingPath";
  desc: string;
  rule?: string;
  expectError: boolean;
  requests: VectorRequest[];
  routes?: VectorRoute[];
  providersPrecedence?: string[];
  expectedDomains?: string[];
  expectedPriority?: number;
}

/** What a run found. */
export interface ConformanceReport {
  /** Checks that passed: one per request, plus one per case checked without a request. */
  passed: number;
  failed: number;
  failures: string[];
  /** Requests carrying a `note`: sent, but not counted (Go in-memory artefacts). */
  notReproducible: string[];
  requestsPassed: number;
  requestsFailed: number;
}

/** Reads the vectors, or `undefined` when the shared file is absent. */
export async function loadVectors(): Promise<VectorCase[] | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(VECTORS_URL));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

interface NamedRoute {
  name: string;
  compiled: CompiledRule;
  priority: number;
  provider: string;
}

/** Splits an absolute URL without normalising it (the `URL` class would re-encode). */
function splitUrl(url: string): { authority?: string; target: string } {
  if (url.startsWith("/")) return { target: url };
  const start = url.indexOf("://") + 3;
  let end = start;
  while (end < url.length && url[end] !== "/" && url[end] !== "?") end++;
  const rest = url.slice(end);
  return { authority: url.slice(start, end), target: rest.startsWith("/") ? rest : "/" + rest };
}

function buildRequest(caseIndex: number, req: VectorRequest): string {
  const extra =
    `${CASE_HEADER}: ${caseIndex}\r\n${REMOTE_ADDR_HEADER}: ${req.remoteAddr}\r\nConnection: close\r\n`;
  if (req.raw) return req.raw.replace(/\r\n\r\n$/, "\r\n" + extra + "\r\n");
  const { authority, target } = splitUrl(req.url);
  let head = `${req.method} ${target} HTTP/1.1\r\n`;
  if (authority !== undefined) head += `Host: ${authority}\r\n`;
  for (const [name, value] of Object.entries(req.headers)) {
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
  }
  return head + extra + "\r\n";
}

interface WireResponse {
  status: number;
  headers: Map<string, string>;
}

async function send(port: number, bytes: string): Promise<WireResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(bytes));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(8192);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(
      chunks.reduce((a, b) => new Uint8Array([...a, ...b]), new Uint8Array()),
    );
    const [head] = text.split("\r\n\r\n");
    const lines = head.split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    return { status, headers };
  } finally {
    try {
      conn.close();
    } catch { /* already closed by the server */ }
  }
}

/** Runs every vector; never throws for a failing vector, only records it. */
export async function runConformance(vectors: VectorCase[]): Promise<ConformanceReport> {
  const report: ConformanceReport = {
    passed: 0,
    failed: 0,
    failures: [],
    notReproducible: [],
    requestsPassed: 0,
    requestsFailed: 0,
  };
  const check = (ok: boolean, label: string, detail: string, isRequest: boolean) => {
    if (ok) {
      report.passed++;
      if (isRequest) report.requestsPassed++;
    } else {
      report.failed++;
      if (isRequest) report.requestsFailed++;
      report.failures.push(`${label}: ${detail}`);
    }
  };

  // Route tables per case, built before any request is sent.
  const tables = new Map<number, NamedRoute[]>();
  vectors.forEach((c, index) => {
    const label = `${c.suite} / ${c.desc}`;
    if (c.kind === "match") {
      let compiled: CompiledRule | undefined;
      let error: unknown;
      try {
        compiled = compileRule(c.rule ?? "");
      } catch (e) {
        error = e;
      }
      if (c.expectError) {
        check(
          error instanceof RuleSyntaxError,
          label,
          error
            ? `threw ${error}`
            : `rule ${JSON.stringify(c.rule)} was accepted, expected an error`,
          false,
        );
      } else if (!compiled) {
        check(false, label, `rule ${JSON.stringify(c.rule)} rejected: ${error}`, false);
      } else {
        tables.set(index, [{ name: "route", compiled, priority: compiled.priority, provider: "" }]);
      }
    } else if (c.kind === "priority") {
      const routes = c.routes!.map((r) => {
        const compiled = compileRule(r.rule, r.priorityFromRule ? 0 : r.priority);
        return { name: r.name, compiled, priority: compiled.priority, provider: r.provider };
      });
      for (const [k, r] of routes.entries()) {
        check(
          r.priority === c.routes![k].priority,
          label,
          `route ${r.name} priority ${r.priority}, expected ${c.routes![k].priority}`,
          false,
        );
      }
      tables.set(index, routes.sort(compareRoutes(c.providersPrecedence)));
    } else if (c.kind === "parseDomains") {
      const got = parseDomains(c.rule!);
      check(
        JSON.stringify(got) === JSON.stringify(c.expectedDomains),
        label,
        `parseDomains(${JSON.stringify(c.rule)}) = ${JSON.stringify(got)}, expected ${
          JSON.stringify(c.expectedDomains)
        }`,
        false,
      );
    } else if (c.kind === "rulePriority") {
      const got = defaultPriority(c.rule!);
      check(
        got === c.expectedPriority,
        label,
        `priority ${got}, expected ${c.expectedPriority}`,
        false,
      );
    } else if (c.kind === "routingPath") {
      tables.set(index, []);
    }
  });

  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => {
      const routes = tables.get(Number(req.headers.get(CASE_HEADER)));
      if (!routes) return new Response("unknown case", { status: 400 });
      let view;
      try {
        view = matchRequestFrom(req, req.headers.get(REMOTE_ADDR_HEADER) ?? "");
      } catch (e) {
        if (e instanceof RoutingPathError) return new Response(e.message, { status: 400 });
        throw e;
      }
      const headers = { "x-routing-path": encodeURIComponent(view.path) };
      for (const r of routes) {
        if (r.compiled.match(view)) {
          return new Response(null, { headers: { ...headers, "x-from": r.name } });
        }
      }
      return new Response(null, { status: 404, headers });
    },
  );
  try {
    for (const [index, c] of vectors.entries()) {
      if (!tables.has(index)) continue;
      for (const req of c.requests) {
        const label = `${c.suite} / ${c.desc} / ${req.method} ${req.url}` +
          (Object.keys(req.headers).length ? ` ${JSON.stringify(req.headers)}` : "") +
          (req.remoteAddr ? ` from ${req.remoteAddr}` : "");
        if (req.note) {
          let onWire: string;
          try {
            onWire = String((await send(server.addr.port, buildRequest(index, req))).status);
          } catch (e) {
            onWire = `error ${e}`;
          }
          report.notReproducible.push(
            `${label}: Go expects ${req.expected}, on the wire ${onWire}; ${req.note}`,
          );
          continue;
        }
        const res = await send(server.addr.port, buildRequest(index, req));
        if (c.kind === "routingPath") {
          const got = decodeURIComponent(res.headers.get("x-routing-path") ?? "");
          check(
            got === req.expectedRoutingPath,
            label,
            `routing path ${JSON.stringify(got)}, expected ${
              JSON.stringify(req.expectedRoutingPath)
            }`,
            true,
          );
        } else if (c.kind === "priority") {
          const got = res.headers.get("x-from");
          check(
            got === req.expectedRoute,
            label,
            `served by ${got ?? "nothing"} (${res.status}), expected ${req.expectedRoute}`,
            true,
          );
        } else {
          check(
            res.status === req.expected,
            label,
            `status ${res.status}, expected ${req.expected} (rule ${c.rule})`,
            true,
          );
        }
      }
    }
  } finally {
    ac.abort();
    await server.finished;
  }
  return report;
}

/** The report as text; the last line is `N passed, N failed`. */
export function formatReport(r: ConformanceReport): string {
  const lines: string[] = [];
  if (r.failures.length) lines.push("FAILED:", ...r.failures.map((f) => `  ${f}`));
  if (r.notReproducible.length) {
    lines.push(`not reproducible on the wire (${r.notReproducible.length}, not counted):`);
    lines.push(...r.notReproducible.map((n) => `  ${n}`));
  }
  lines.push(`requests: ${r.requestsPassed} passed, ${r.requestsFailed} failed`);
  lines.push(`${r.passed} passed, ${r.failed} failed`);
  return lines.join("\n");
}
