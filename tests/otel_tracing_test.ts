/**
 * OpenTelemetry tracing end to end: a running instance exports to an OTLP
 * receiver that decodes with the official protobuf definitions. Spans
 * (names, parent/child, status, attributes), `traceparent` reaching a real
 * upstream, sampling, OTLP/gRPC, and a receiver that is down.
 */

import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { OtlpReceiver, type ReceivedSpan } from "./fixtures/otlp_receiver.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { parseTraceparent } from "../lib/tracing/trace_context.ts";
import { makePki } from "./fixtures/pki.ts";
import { rawGet } from "./fixtures/http_client.ts";

const dynamicFor = (url: string, middlewares = "") => `
[http.routers.app]
rule = "PathPrefix(\`/\`)"
service = "app"
${middlewares}
[http.services.app.loadBalancer]
[[http.services.app.loadBalancer.servers]]
url = "${url}"
[http.middlewares.rt.retry]
attempts = 1
`;

function tracingStatic(receiver: OtlpReceiver, extra = "", transport = "http"): string {
  const otlp = transport === "http"
    ? `[tracing.otlp.http]\nendpoint = "${receiver.url}"\n`
    : `[tracing.otlp.grpc]\nendpoint = "${receiver.grpcEndpoint}"\ninsecure = true\n`;
  return `[tracing]\nserviceName = "edge-test"\n${extra}\n[tracing.resourceAttributes]\n"deployment.environment" = "test"\n${otlp}`;
}

function byTrace(spans: ReceivedSpan[], traceId: string): Map<string, ReceivedSpan> {
  return new Map(spans.filter((s) => s.traceId === traceId).map((s) => [s.name, s]));
}

const INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

for (const path of ["byte-level", "web"] as const) {
  Deno.test(`tracing (${path} path): Traefik's spans, parent/child, status, attributes; traceparent reaches the upstream`, async () => {
    const receiver = await OtlpReceiver.start();
    const backend = startEchoBackend("b1");
    // retry has no byte-level step: it keeps the request on the Web path.
    const proxy = await startTestProxy({
      dynamic: dynamicFor(backend.url, path === "web" ? `middlewares = ["rt"]` : ""),
      extraStatic: tracingStatic(
        receiver,
        `sampleRate = 1.0\ncapturedRequestHeaders = ["X-Trace-Me"]\ncapturedResponseHeaders = ["X-Backend"]\nsafeQueryParams = ["keep"]`,
      ),
    });
    try {
      const res = await fetch(`${proxy.url()}/status/503?keep=yes&secret=hunter2`, {
        headers: { traceparent: INCOMING, "x-trace-me": "please", "user-agent": "otel-test/1" },
      });
      const echo = await res.json() as Echo;
      assert.equal(res.status, 503);

      // The upstream saw this hop's context: the caller's trace id, a new parent id.
      const sent = parseTraceparent(echo.headers["traceparent"]);
      assert.ok(sent, `upstream got traceparent ${echo.headers["traceparent"]}`);
      assert.equal(sent.traceId, "0af7651916cd43dd8448eb211c80319c");
      assert.notEqual(sent.spanId, "b7ad6b7169203331");
      assert.equal(sent.sampled, true);

      const spans = await receiver.waitFor("4 spans of the trace", () => {
        const m = byTrace(receiver.spans, sent.traceId);
        return m.size >= 4 ? m : undefined;
      });
      const server = spans.get("GET")!,
        router = spans.get("Router")!,
        service = spans.get("Service")!;
      const client = spans.get("ReverseProxy")!;
      assert.ok(server && router && service && client, `span names: ${[...spans.keys()]}`);
      // Parent chain: caller → entrypoint → Router → Service → ReverseProxy → upstream.
      assert.equal(server.parentSpanId, "b7ad6b7169203331");
      assert.equal(router.parentSpanId, server.spanId);
      assert.equal(service.parentSpanId, router.spanId);
      assert.equal(client.parentSpanId, service.spanId);
      assert.equal(sent.spanId, client.spanId);
      // Kinds: server 2, internal 1, client 3 (OTLP numbering).
      assert.deepEqual([server.kind, router.kind, service.kind, client.kind], [2, 1, 1, 3]);
      // 503: an error on every span.
      assert.deepEqual([server.status, router.status, service.status, client.status], [2, 2, 2, 2]);
      assert.ok(server.startNs <= router.startNs && router.startNs <= service.startNs);
      assert.ok(client.endNs <= server.endNs && server.endNs > server.startNs);

      assert.equal(server.attributes["entry_point"], "web");
      assert.equal(server.attributes["http.request.method"], "GET");
      assert.equal(server.attributes["http.response.status_code"], 503);
      assert.equal(server.attributes["url.path"], "/status/503");
      assert.equal(server.attributes["url.query"], "keep=yes&secret=REDACTED");
      assert.equal(server.attributes["user_agent.original"], "otel-test/1");
      assert.equal(server.attributes["client.address"], "127.0.0.1");
      assert.deepEqual(server.attributes["http.request.header.x-trace-me"], ["please"]);
      assert.deepEqual(server.attributes["http.response.header.x-backend"], ["b1"]);
      assert.deepEqual(client.attributes["http.response.header.x-backend"], ["b1"]);
      assert.equal(router.attributes["traefik.router.name"], "app@file");
      assert.equal(router.attributes["traefik.service.name"], "app@file");
      assert.equal(router.attributes["http.route"], "PathPrefix(`/`)");
      assert.equal(service.attributes["traefik.service.name"], "app@file");
      assert.equal(
        client.attributes["url.full"],
        `${backend.url}/status/503?keep=yes&secret=REDACTED`,
      );
      assert.equal(client.attributes["server.port"], backend.port);
      assert.equal(client.attributes["http.response.status_code"], 503);
      assert.equal(server.resource["service.name"], "edge-test");
      assert.equal(server.resource["deployment.environment"], "test");

      // Without an incoming traceparent: a new trace, a root entrypoint span, status unset on 200.
      const res2 = await fetch(`${proxy.url()}/ok`);
      const sent2 = parseTraceparent(((await res2.json()) as Echo).headers["traceparent"]);
      assert.ok(sent2 && sent2.traceId !== sent.traceId && sent2.sampled);
      const spans2 = await receiver.waitFor("the second trace", () => {
        const m = byTrace(receiver.spans, sent2.traceId);
        return m.size >= 4 ? m : undefined;
      });
      assert.equal(spans2.get("GET")!.parentSpanId, "");
      assert.equal(spans2.get("GET")!.status, 0);
      assert.equal(spans2.get("ReverseProxy")!.status, 0);
    } finally {
      await proxy.close();
      await backend.close();
      await receiver.close();
    }
  });
}

Deno.test("tracing: sampleRate 0 exports nothing of its own but propagates context, and honours a sampled parent", async () => {
  const receiver = await OtlpReceiver.start();
  const backend = startEchoBackend("b1");
  const proxy = await startTestProxy({
    dynamic: dynamicFor(backend.url),
    extraStatic: tracingStatic(receiver, "sampleRate = 0.0"),
  });
  try {
    const unsampled = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const echo = await (await fetch(`${proxy.url()}/n${i}`)).json() as Echo;
      const tp = parseTraceparent(echo.headers["traceparent"]);
      assert.ok(tp && !tp.sampled, `traceparent ${echo.headers["traceparent"]}`);
      unsampled.add(tp.traceId);
    }
    assert.equal(unsampled.size, 20);
    // A caller that sampled its trace: followed whatever the rate.
    const echo =
      await (await fetch(`${proxy.url()}/parent`, { headers: { traceparent: INCOMING } }))
        .json() as Echo;
    assert.equal(parseTraceparent(echo.headers["traceparent"])!.sampled, true);
    // The queue is first in, first out: once the sampled trace arrived, anything queued before it has too.
    await receiver.waitFor(
      "the sampled trace",
      () => byTrace(receiver.spans, "0af7651916cd43dd8448eb211c80319c").size >= 4,
    );
    assert.equal(receiver.spans.filter((s) => unsampled.has(s.traceId)).length, 0);
    assert.equal(receiver.spans.length, 4);
  } finally {
    await proxy.close();
    await backend.close();
    await receiver.close();
  }
});

Deno.test("tracing: sampleRate 1 exports every request", async () => {
  const receiver = await OtlpReceiver.start();
  const backend = startEchoBackend("b1");
  const proxy = await startTestProxy({
    dynamic: dynamicFor(backend.url),
    extraStatic: tracingStatic(receiver, "sampleRate = 1.0"),
  });
  try {
    for (let i = 0; i < 30; i++) await (await fetch(`${proxy.url()}/n${i}`)).body?.cancel();
    await receiver.waitFor(
      "30 traces",
      () => new Set(receiver.spans.map((s) => s.traceId)).size >= 30,
    );
    assert.equal(receiver.spans.filter((s) => s.name === "ReverseProxy").length, 30);
  } finally {
    await proxy.close();
    await backend.close();
    await receiver.close();
  }
});

Deno.test("tracing: OTLP/gRPC export reaches a gRPC receiver", async () => {
  const receiver = await OtlpReceiver.start();
  const backend = startEchoBackend("b1");
  const proxy = await startTestProxy({
    dynamic: dynamicFor(backend.url),
    extraStatic: tracingStatic(receiver, "", "grpc"),
  });
  try {
    const echo = await (await fetch(`${proxy.url()}/grpc`)).json() as Echo;
    const tp = parseTraceparent(echo.headers["traceparent"])!;
    const spans = await receiver.waitFor("spans over gRPC", () => {
      const m = byTrace(receiver.spans, tp.traceId);
      return m.size >= 4 ? m : undefined;
    });
    assert.equal(spans.get("ReverseProxy")!.spanId, tp.spanId);
    assert.equal(spans.get("GET")!.resource["service.name"], "edge-test");
  } finally {
    await proxy.close();
    await backend.close();
    await receiver.close();
  }
});

Deno.test("tracing: a receiver that is down never delays requests; dropped spans are counted; export resumes", async () => {
  const receiver = await OtlpReceiver.start();
  await receiver.pause();
  const backend = startEchoBackend("b1");
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    dynamic: dynamicFor(backend.url),
    extraStatic: tracingStatic(receiver) + `[metrics.prometheus]\n`,
  });
  const dropped = async () => {
    const text = await (await fetch(`${proxy.url("traefik")}/metrics`)).text();
    const m = /^portico_tracing_spans_dropped_total (\d+)$/m.exec(text);
    return m ? Number(m[1]) : -1;
  };
  try {
    assert.equal(await dropped(), 0);
    let slowest = 0;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      const res = await fetch(`${proxy.url()}/down${i}`);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      slowest = Math.max(slowest, performance.now() - t0);
    }
    // Generous for a loaded machine; an export that blocked would take its 5 s timeout or more.
    assert.ok(slowest < 2000, `slowest request took ${slowest.toFixed(0)} ms`);
    const deadline = Date.now() + 20_000;
    let count = 0;
    while ((count = await dropped()) <= 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(count > 0, "the drop counter rose");

    await receiver.resume();
    const echo = await (await fetch(`${proxy.url()}/back`)).json() as Echo;
    const tp = parseTraceparent(echo.headers["traceparent"])!;
    await receiver.waitFor(
      "spans after the receiver came back",
      () => byTrace(receiver.spans, tp.traceId).size >= 4,
    );
  } finally {
    await proxy.close();
    await backend.close();
    await receiver.close();
  }
});

Deno.test("tracing: otlp.http.tls.ca is what the exporter trusts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-otlp-tls-" });
  await makePki(dir);
  const receiver = await OtlpReceiver.start({
    tls: {
      cert: await Deno.readTextFile(`${dir}/server.pem`),
      key: await Deno.readTextFile(`${dir}/server.key`),
    },
  });
  const backend = startEchoBackend("b1");
  const run = async (tls: string) => {
    const proxy = await startTestProxy({
      entryPoints: ["web", "traefik"],
      dynamic: dynamicFor(backend.url),
      extraStatic:
        `[metrics.prometheus]\n[tracing]\n[tracing.otlp.http]\nendpoint = "${receiver.url}"\n${tls}`,
    });
    try {
      const echo = await (await fetch(`${proxy.url()}/tls`)).json() as Echo;
      const tp = parseTraceparent(echo.headers["traceparent"])!;
      const counters = async () => {
        const text = await (await fetch(`${proxy.url("traefik")}/metrics`)).text();
        const n = (name: string) =>
          Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? -1);
        return {
          exported: n("portico_tracing_spans_exported_total"),
          dropped: n("portico_tracing_spans_dropped_total"),
        };
      };
      const deadline = Date.now() + 20_000;
      let c = await counters();
      while (c.exported + c.dropped < 4 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        c = await counters();
      }
      return { ...c, received: byTrace(receiver.spans, tp.traceId).size };
    } finally {
      await proxy.close();
    }
  };
  try {
    // Trusting the test CA: exported. Without it the system bundle refuses the certificate: dropped.
    assert.deepEqual(await run(`[tracing.otlp.http.tls]\nca = "${dir}/ca.pem"\n`), {
      exported: 4,
      dropped: 0,
      received: 4,
    });
    assert.deepEqual(await run(""), { exported: 0, dropped: 4, received: 0 });
    assert.deepEqual(await run(`[tracing.otlp.http.tls]\ninsecureSkipVerify = true\n`), {
      exported: 4,
      dropped: 0,
      received: 4,
    });
  } finally {
    await backend.close();
    await receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "tracing: with [server] workers every listener traces and exports its requests",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const receiver = await OtlpReceiver.start();
    const backend = startEchoBackend("b1");
    const proxy = await startTestProxy({
      dynamic: dynamicFor(backend.url),
      extraStatic: `[server]\nworkers = 2\n` + tracingStatic(receiver),
    });
    try {
      assert.ok(proxy.server.workers, "a worker pool was started");
      const traceIds = new Set<string>();
      // A new connection per request, so both listeners take some.
      for (let i = 0; i < 4; i++) {
        const batch = await Promise.all(
          Array.from({ length: 10 }, () => rawGet(proxy.port(), "/w", { host: "w.test" })),
        );
        for (const r of batch) {
          assert.equal(r.status, 200);
          traceIds.add(
            parseTraceparent((JSON.parse(r.body) as Echo).headers["traceparent"])!.traceId,
          );
        }
      }
      assert.equal(traceIds.size, 40);
      await receiver.waitFor(
        "40 traces from main and the worker",
        () => [...traceIds].every((id) => byTrace(receiver.spans, id).size === 4),
      );
    } finally {
      await proxy.close();
      await backend.close();
      await receiver.close();
    }
  },
});

Deno.test("tracing: a receiver that accepts and never answers holds no request, and not shutdown", async () => {
  // Accepts connections, reads whatever comes, answers nothing.
  const hung = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of hung) {
      held.push(conn);
      (async () => {
        const buf = new Uint8Array(65536);
        try {
          while (await conn.read(buf) !== null) { /* swallow */ }
        } catch { /* closed */ }
      })();
    }
  })();
  const backend = startEchoBackend("b1");
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    dynamic: dynamicFor(backend.url),
    extraStatic:
      `[metrics.prometheus]\n[tracing]\n[tracing.otlp.http]\nendpoint = "http://127.0.0.1:${hung.addr.port}"\n`,
  });
  let closed = false;
  try {
    let slowest = 0;
    const t0 = performance.now();
    // Across the export timeout (5 s): the first batch is in flight, the rest wait in the queue.
    while (performance.now() - t0 < 6500) {
      const t = performance.now();
      const res = await fetch(`${proxy.url()}/hung`);
      await res.body?.cancel();
      assert.equal(res.status, 200);
      slowest = Math.max(slowest, performance.now() - t);
    }
    assert.ok(slowest < 2000, `slowest request took ${slowest.toFixed(0)} ms`);
    const deadline = Date.now() + 20_000;
    let dropped = 0;
    while (Date.now() < deadline) {
      const text = await (await fetch(`${proxy.url("traefik")}/metrics`)).text();
      dropped = Number(/^portico_tracing_spans_dropped_total (\d+)$/m.exec(text)?.[1] ?? 0);
      if (dropped > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(dropped > 0, "the timed-out export's spans were counted as dropped");
    const c0 = performance.now();
    await proxy.close();
    closed = true;
    assert.ok(
      performance.now() - c0 < 8000,
      `shutdown took ${(performance.now() - c0).toFixed(0)} ms`,
    );
  } finally {
    if (!closed) await proxy.close();
    await backend.close();
    hung.close();
    for (const c of held) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await accepting.catch(() => {});
  }
});
