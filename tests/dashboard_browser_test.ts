/**
 * The dashboard in a real browser: Debian's chromium driven headless by
 * playwright-core (on Deno), against a running instance with a good router,
 * a rejected router, and a service whose server is down. Every view is
 * loaded, its visible content asserted, and a screenshot kept in
 * `test-artifacts/`. Installs chromium with apt-get when it is missing.
 */

import assert from "node:assert/strict";
import { chromium, type Page } from "playwright-core";
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
      proxy.server.state.views.set("certificates", () => ({
        lastError: "acme: error 429 urn:ietf:params:acme:error:rateLimited: too many orders",
        certificates: [{
          domains: ["shop.test", "www.shop.test"],
          issuer: "Pebble Intermediate CA",
          notAfter: Date.now() + 20 * 86_400_000 + 60_000,
          renewal: "scheduled",
        }],
      }));
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
