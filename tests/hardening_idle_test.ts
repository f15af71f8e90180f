/**
 * 1,000 idle connections open (half never send a byte, half finished a
 * request and stay kept alive): normal requests keep their latency. p99 is
 * measured with and without them, on loopback, and both are printed.
 *
 * Needs about 2,100 file descriptors (both ends live in this process). When
 * the soft limit is lower (CI often has 1024), the test re-runs itself in a
 * child whose shell raised the soft limit (allowed up to the hard limit).
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";

const IDLE = 1000;
const SAMPLES = 300;
const NEEDED_FDS = 2 * IDLE + 300;

async function softFdLimit(): Promise<number> {
  const out = await new Deno.Command("sh", { args: ["-c", "ulimit -n"], stdout: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return text === "unlimited" ? Infinity : Number(text);
}

async function p99(url: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t = performance.now();
    const res = await fetch(url);
    await res.text();
    assert.equal(res.status, 200);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(SAMPLES * 0.99)];
}

async function measure(): Promise<void> {
  const proxy = await startTestProxy({ dynamic: "", extraStatic: `[ping]\nentryPoint = "web"\n` });
  const idle: Deno.Conn[] = [];
  try {
    const url = proxy.url() + "/ping";
    await p99(url); // warm up
    const before = await p99(url);
    const enc = new TextEncoder();
    for (let i = 0; i < IDLE; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port() });
      if (i % 2 === 1) {
        await c.write(enc.encode("GET /ping HTTP/1.1\r\nHost: a\r\n\r\n"));
        await c.read(new Uint8Array(1024)); // answered; now an idle keep-alive connection
      }
      idle.push(c);
    }
    const during = await p99(url);
    console.log(
      `p99 of ${SAMPLES} sequential /ping requests: ${before.toFixed(2)} ms alone, ${
        during.toFixed(2)
      } ms with ${IDLE} idle connections open`,
    );
    // Generous bound for a shared 2-core CI box; the point is "no collapse".
    assert.ok(
      during < Math.max(before * 5, 25),
      `p99 went from ${before.toFixed(2)} to ${during.toFixed(2)} ms`,
    );
  } finally {
    for (const c of idle) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await proxy.close();
  }
}

Deno.test({
  name: "1,000 idle connections do not hurt the latency of normal requests",
  sanitizeResources: false,
  async fn() {
    if (Deno.env.get("PORTICO_IDLE_CHILD") || await softFdLimit() >= NEEDED_FDS) {
      await measure();
      return;
    }
    const path = new URL(import.meta.url).pathname;
    const child = await new Deno.Command("sh", {
      args: [
        "-c",
        `ulimit -Sn ${NEEDED_FDS + 500} && exec "${Deno.execPath()}" test -A --no-check "${path}"`,
      ],
      env: { PORTICO_IDLE_CHILD: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(child.stdout) + new TextDecoder().decode(child.stderr);
    console.log(out.split("\n").filter((l) => l.includes("p99")).join("\n"));
    assert.equal(child.code, 0, `the child run (raised fd limit) failed:\n${out}`);
  },
});
