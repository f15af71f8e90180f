/**
 * Overload: far more concurrent clients than the proxy (one process, one
 * JS thread) can serve, for a few seconds. `/ping` keeps answering, excess
 * requests beyond `maxConnections` are refused at once with 503 rather than
 * queued, and the proxy's memory stays bounded.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startProxyProcess } from "./fixtures/proxy_process.ts";

const CLIENTS = 256;
const MAX_IN_FLIGHT = 32;
const SECONDS = 4;

Deno.test({
  name: "under 10x overload /ping answers, the excess gets 503 and RSS stays bounded",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const backend = startEchoBackend("b");
    const proxy = await startProxyProcess(
      `
[http.routers.r]
rule = "PathPrefix(\`/\`)"
service = "s"
[http.services.s.loadBalancer]
servers = [{ url = "${backend.url}" }]
`,
      `[entryPoints.web.transport]\nmaxConnections = ${MAX_IN_FLIGHT}\n`,
    );
    try {
      const url = `http://127.0.0.1:${proxy.port}/slow/20`;
      const warm = await fetch(url);
      await warm.body?.cancel();
      const rssBefore = await proxy.rssKiB();
      const counts = new Map<number, number>();
      let errors = 0;
      const until = Date.now() + SECONDS * 1000;
      const client = async () => {
        while (Date.now() < until) {
          try {
            const res = await fetch(url);
            await res.body?.cancel();
            counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
          } catch {
            errors++;
          }
        }
      };
      const pings: { status: number; ms: number }[] = [];
      const prober = (async () => {
        while (Date.now() < until) {
          const t = performance.now();
          try {
            const res = await fetch(`http://127.0.0.1:${proxy.apiPort}/ping`, {
              signal: AbortSignal.timeout(3000),
            });
            await res.body?.cancel();
            pings.push({ status: res.status, ms: performance.now() - t });
          } catch {
            pings.push({ status: 0, ms: performance.now() - t });
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      await Promise.all([...Array.from({ length: CLIENTS }, client), prober]);
      const peak = await proxy.peakRssKiB();
      const served = counts.get(200) ?? 0;
      const refused = counts.get(503) ?? 0;
      const worstPing = Math.max(...pings.map((p) => p.ms));
      console.log(
        `${CLIENTS} clients for ${SECONDS}s: ${served} x 200, ${refused} x 503, ${errors} errors; ` +
          `ping ${pings.length} probes, worst ${worstPing.toFixed(0)} ms; RSS ${
            Math.round(rssBefore / 1024)
          } -> peak ${Math.round(peak / 1024)} MiB`,
      );
      assert.ok(pings.length >= SECONDS * 2, "the prober ran");
      assert.ok(
        pings.every((p) => p.status === 200),
        `every /ping answered 200: ${JSON.stringify(pings.filter((p) => p.status !== 200))}`,
      );
      assert.ok(worstPing < 2000, `worst /ping ${worstPing.toFixed(0)} ms`);
      assert.ok(served > 0, "some requests were served");
      assert.ok(refused > 0, "the excess was refused, not queued");
      assert.ok(
        peak - rssBefore < 200 * 1024,
        `RSS grew by ${Math.round((peak - rssBefore) / 1024)} MiB`,
      );
    } finally {
      await proxy.stop();
      await backend.close();
    }
  },
});
