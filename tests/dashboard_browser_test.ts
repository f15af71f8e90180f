/**
 * The dashboard in a real browser: Debian's chromium driven headless by
 * playwright-core (on Deno), against a running instance with a good router,
 * a rejected router, and a service whose server is down. Every view is
 * loaded, its visible content asserted, and a screenshot kept in
 * `test-artifacts/`. Installs chromium with apt-get when it is missing.
 */

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startEchoBackend } from "./fixtures/backend.ts";
import { freePort } from "./fixtures/ports.ts";
import { startTestProxy } from "./fixtures/proxy.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = new URL("../test-artifacts/", import.meta.url).pathname;
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<boolean> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "null",
    stderr: "inherit",
    env: { DEBIAN_FRONTEND: "noninteractive" },
  })
    .output();
  return out.success;
}

/** Installs Debian's chromium when it is missing (never skipped: CI needs the browser test). */
async function ensureChromium(): Promise<void> {
  if (await exists(CHROMIUM)) return;
  if (!(await run("apt-get", ["install", "-y", "chromium"]))) {
    assert.ok(await run("apt-get", ["update"]), "apt-get update failed");
    assert.ok(
      await run("apt-get", ["install", "-y", "chromium"]),
      "apt-get install -y chromium failed",
    );
  }
  assert.ok(await exists(CHROMIUM), `${CHROMIUM} is still missing after apt-get install`);
}

Deno.test({
  name: "dashboard (browser): every view shows the instance's state and updates live",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await ensureChromium();
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const backend = startEchoBackend("b");
    const deadPort = freePort();
    const proxy = await startTestProxy({
      entryPoints: ["web", "traefik"],
      extraStatic: `[api]\ninsecure = true\ndashboard = true\n[metrics.prometheus]\n`,
      dynamic: `
[http.routers.shop]
rule = "Host(\`shop.test\`)"
service = "shop"
entryPoints = ["web"]
middlewares = ["strip"]
[http.middlewares.strip.stripPrefix]
prefixes = ["/shop"]
[http.services.shop.loadBalancer]
servers = [{ url = "${backend.url}" }]
[http.routers.broken]
rule = "Host(\`broken.test\`) && Pathh(\`/x\`)"
service = "shop"
entryPoints = ["web"]
[http.routers.legacy]
rule = "Host(\`legacy.test\`)"
service = "legacy"
entryPoints = ["web"]
[http.services.legacy.loadBalancer]
servers = [{ url = "http://127.0.0.1:${deadPort}" }]
[http.services.legacy.loadBalancer.healthCheck]
path = "/health"
interval = "100ms"
timeout = "100ms"
`,
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    try {
      const apiRouter = await (await fetch(`${proxy.url("traefik")}/api/http/routers/broken@file`))
        .json();
      assert.equal(apiRouter.status, "disabled");
      const brokenError: string = apiRouter.error[0];
      assert.ok(brokenError.length > 0);
      await new Promise((r) => setTimeout(r, 400)); // the health check marks legacy's server DOWN

      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const consoleErrors: string[] = [];
      page.on("pageerror", (e) => consoleErrors.push(e.message));
      const base = `${proxy.url("traefik")}/dashboard/`;
      const open = async (view: string) => {
        await page.goto(`${base}#/${view}`);
        await page.waitForSelector(`body[data-loaded="${view}"]`, { timeout: 10_000 });
      };
      const shot = (view: string) =>
        page.screenshot({ path: `${ARTIFACTS}dashboard-${view}.png`, fullPage: true });
      const text = (selector: string) => page.locator(selector).innerText();

      // Redirect from /dashboard to /dashboard/.
      await page.goto(`${proxy.url("traefik")}/dashboard`);
      assert.equal(new URL(page.url()).pathname, "/dashboard/");

      await open("overview");
      const overview = await text("[data-view=overview]");
      assert.match(overview, /Routers\s+3\s+1 errors/i, overview);
      assert.match(overview, /web/);
      assert.match(overview, /traefik/);
      assert.match(overview, /file\s+connected/);
      assert.match(overview, /success/);
      await shot("overview");

      await open("routers");
      assert.match(
        await text("[data-router='shop@file']"),
        /enabled[\s\S]*Host\(`shop\.test`\)[\s\S]*strip@file[\s\S]*shop/,
      );
      const broken = await text("[data-router='broken@file']");
      assert.match(broken, /disabled/);
      assert.ok(
        broken.includes(brokenError),
        `router row shows the full error:\n${broken}\nexpected:\n${brokenError}`,
      );
      // Search narrows the list.
      await page.fill("#search", "legacy");
      assert.equal(await page.locator("[data-router]").count(), 1);
      assert.equal(await page.locator("[data-router='legacy@file']").count(), 1);
      await page.fill("#search", "");
      await shot("routers");

      await open("services");
      assert.match(
        await text("[data-service='shop@file']"),
        new RegExp(`UP\\s+${backend.url.replace(/[.]/g, "\\.")}`),
      );
      assert.match(
        await text("[data-service='legacy@file']"),
        new RegExp(`DOWN\\s+http://127\\.0\\.0\\.1:${deadPort}`),
      );
      await shot("services");

      await open("middlewares");
      assert.match(
        await text("[data-middleware='strip@file']"),
        /enabled[\s\S]*stripprefix[\s\S]*\/shop[\s\S]*shop@file/i,
      );
      await shot("middlewares");

      await open("cluster");
      const cluster = await text("[data-view=cluster]");
      assert.match(cluster, /No cluster/);
      assert.match(await text("[data-test=role]"), /manager/);
      await shot("cluster");

      await open("certificates");
      assert.match(await text("[data-view=certificates]"), /no certificates/i);
      // A certificates view appearing later shows up on the next poll, without a reload.
      proxy.server.state.views.certificates = () => [{
        resolver: "le",
        domains: ["shop.test", "www.shop.test"],
        issuer: "Pebble Intermediate CA",
        notAfter: new Date(Date.now() + 20 * 86_400_000 + 60_000).toISOString(),
        state: "backoff",
        failures: 1,
        lastError: "acme: error 429 urn:ietf:params:acme:error:rateLimited: too many orders",
        routers: [],
      }];
      await page.waitForSelector("text=www.shop.test", { timeout: 5000 });
      const certs = await text("[data-view=certificates]");
      assert.match(certs, /Pebble Intermediate CA/);
      assert.match(certs, /\b20\b/);
      assert.match(certs, /rateLimited: too many orders/);
      await shot("certificates");

      // Live update on the routers view: a new router appears without a page reload.
      await open("routers");
      await page.evaluate(() => ((globalThis as unknown as { __marker: number }).__marker = 42));
      await proxy.writeDynamic(
        (await Deno.readTextFile(proxy.dynamicFile)) +
          `\n[http.routers.late]\nrule = "Host(\`late.test\`)"\nservice = "shop"\nentryPoints = ["web"]\n`,
      );
      await page.waitForSelector("[data-router='late@file']", { timeout: 6000 });
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { __marker?: number }).__marker),
        42,
        "no reload happened",
      );
      assert.deepEqual(consoleErrors, []);
    } finally {
      await browser.close();
      await proxy.close();
      await backend.close();
    }
  },
});

Deno.test({
  name:
    "dashboard (browser): the TCP tab shows TCP routers, services, middlewares and counts, as text",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await ensureChromium();
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const deadPort = freePort();
    // Names cannot hold spaces or "/", so the full payload goes in a rule (shown as the rule and in its error).
    const payload = "<img src=x onerror=window.__xss=1>";
    const proxy = await startTestProxy({
      entryPoints: ["web", "db", "traefik"],
      extraStatic: `[api]\ninsecure = true\ndashboard = true\n`,
      dynamic: `
[tcp.routers.pg]
rule = "HostSNI(\`*\`)"
service = "pg"
entryPoints = ["db"]
middlewares = ["office"]
[tcp.routers.broken]
rule = "HostSNI(\`x.test\`)"
service = "pg"
entryPoints = ["db"]
[tcp.routers.pass]
rule = "HostSNI(\`pass.test\`)"
service = "pg"
entryPoints = ["db"]
[tcp.routers.pass.tls]
passthrough = true
[tcp.routers.term]
rule = "HostSNI(\`term.test\`)"
service = "split"
entryPoints = ["db"]
[tcp.routers.term.tls]
[tcp.routers."<u>x<u>"]
rule = "ClientIP(\`${payload}\`)"
service = "pg"
entryPoints = ["db"]
[tcp.services.pg.loadBalancer]
[[tcp.services.pg.loadBalancer.servers]]
address = "127.0.0.1:${deadPort}"
[tcp.services.split.weighted]
services = [{ name = "pg", weight = 3 }]
[tcp.middlewares.office.ipAllowList]
sourceRange = ["10.0.0.0/8"]
`,
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    try {
      const api = async (path: string) =>
        await (await fetch(`${proxy.url("traefik")}/api/${path}`)).json();
      const broken = await api("tcp/routers/broken@file");
      assert.equal(broken.status, "disabled");
      const brokenError: string = broken.error[0];
      assert.match(brokenError, /HostSNI matcher, but the router has no tls/);
      const injected = await api(`tcp/routers/${encodeURIComponent("<u>x<u>@file")}`);
      assert.equal(injected.status, "disabled");
      const injectedError: string = injected.error[0];
      assert.ok(injectedError.includes(payload), injectedError);

      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const consoleErrors: string[] = [];
      page.on("pageerror", (e) => consoleErrors.push(e.message));
      const base = `${proxy.url("traefik")}/dashboard/`;
      const open = async (view: string) => {
        await page.goto(`${base}#/${view}`);
        await page.waitForSelector(`body[data-loaded="${view}"]`, { timeout: 10_000 });
      };
      const text = (selector: string) => page.locator(selector).innerText();

      await open("overview");
      assert.match(
        await text("[data-view=overview] [data-test=tcp-counts-routers]"),
        /TCP routers\s+5\s+2 errors/i,
      );
      assert.match(
        await text("[data-view=overview] [data-test=tcp-counts-services]"),
        /TCP services\s+2\s+0 errors/i,
      );
      assert.match(
        await text("[data-view=overview] [data-test=tcp-counts-middlewares]"),
        /TCP middlewares\s+1\s+0 errors/i,
      );

      // The nav link leads to the tab.
      await page.click("[data-nav=tcp]", { timeout: 5000 });
      await page.waitForSelector(`body[data-loaded="tcp"]`, { timeout: 10_000 });
      assert.match(await text("[data-nav=tcp].active"), /TCP/);
      assert.match(await text("[data-view=tcp] [data-test=tcp-counts-routers]"), /5\s+2 errors/);
      assert.equal(await page.locator("[data-tcp-router]").count(), 5);
      assert.match(
        await text("[data-tcp-router='pg@file']"),
        /enabled\s+pg@file\s+HostSNI\(`\*`\)\s+db\s+office@file\s+pg\s+none\s+-1/,
      );
      const brokenRow = await text("[data-tcp-router='broken@file']");
      assert.match(brokenRow, /disabled/);
      assert.ok(
        brokenRow.includes(brokenError),
        `row shows the error:\n${brokenRow}\nexpected:\n${brokenError}`,
      );
      assert.match(
        await text("[data-tcp-router='pass@file']"),
        /enabled[\s\S]*HostSNI\(`pass\.test`\)[\s\S]*passthrough/,
      );
      assert.match(
        await text("[data-tcp-router='term@file']"),
        /enabled[\s\S]*split\s+terminating/,
      );
      // Markup in a name, a rule and an error is text: no element made from it.
      const injectedRow = await text("[data-tcp-router='<u>x<u>@file']");
      assert.ok(injectedRow.includes("<u>x<u>@file"), injectedRow);
      assert.ok(injectedRow.includes(`ClientIP(\`${payload}\`)`), injectedRow);
      assert.ok(injectedRow.includes(injectedError), injectedRow);
      assert.equal(await page.locator("#view img, #view u").count(), 0);
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss),
        undefined,
      );

      const pgService = await text("[data-tcp-service='pg@file']");
      assert.match(
        pgService,
        new RegExp(`enabled\\s+pg@file\\s+loadbalancer\\s+127\\.0\\.0\\.1:${deadPort}`),
      );
      assert.match(pgService, /pg@file, broken@file, pass@file, <u>x<u>@file/);
      assert.equal(
        await page.locator(`[data-tcp-service='pg@file'] [data-server='127.0.0.1:${deadPort}']`)
          .count(),
        1,
      );
      assert.match(await text("[data-tcp-service='split@file']"), /weighted: pg \(3\)\s+term@file/);
      assert.match(
        await text("[data-tcp-middleware='office@file']"),
        /enabled\s+office@file\s+ipallowlist\s+\{"sourceRange":\["10\.0\.0\.0\/8"\]\}\s+pg@file/,
      );
      await page.screenshot({ path: `${ARTIFACTS}dashboard-tcp.png`, fullPage: true });

      // Search narrows all three tables.
      await page.fill("#search", "pass.test");
      assert.equal(await page.locator("[data-tcp-router]").count(), 1);
      assert.equal(await page.locator("[data-tcp-router='pass@file']").count(), 1);
      assert.equal(await page.locator("[data-tcp-service], [data-tcp-middleware]").count(), 0);
      await page.fill("#search", "");

      // A TCP router added to the file shows up on the next poll, without a reload.
      await page.evaluate(() => ((globalThis as unknown as { __marker: number }).__marker = 7));
      await proxy.writeDynamic(
        (await Deno.readTextFile(proxy.dynamicFile)) +
          `\n[tcp.routers.late]\nrule = "ClientIP(\`10.0.0.0/8\`)"\nservice = "pg"\nentryPoints = ["db"]\n`,
      );
      await page.waitForSelector("[data-tcp-router='late@file']", { timeout: 6000 });
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { __marker?: number }).__marker),
        7,
        "no reload happened",
      );
      assert.deepEqual(consoleErrors, []);
    } finally {
      await browser.close();
      await proxy.close();
    }
  },
});
