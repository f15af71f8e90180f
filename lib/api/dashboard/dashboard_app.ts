/**
 * The dashboard's static assets as a Hono app behind `dashboard@internal`
 * (and `api@internal`, as Traefik serves the dashboard from its API too).
 * `/` and `/dashboard` redirect to `/dashboard/`.
 *
 * @module
 */

import { Hono } from "hono";
import type { Context } from "hono";
import { INDEX_HTML } from "./assets_html.ts";
import { APP_CSS } from "./assets_css.ts";
import { APP_JS } from "./assets_js.ts";

const ASSETS: Record<string, { body: string; type: string }> = {
  "": { body: INDEX_HTML, type: "text/html; charset=utf-8" },
  "index.html": { body: INDEX_HTML, type: "text/html; charset=utf-8" },
  "app.css": { body: APP_CSS, type: "text/css; charset=utf-8" },
  "app.js": { body: APP_JS, type: "text/javascript; charset=utf-8" },
};

/** Keeps the page and its script in step after an upgrade, and out of shared caches. */
const CACHE = "no-cache";
/** Everything the page loads is same-origin; nothing inline, nothing from a CDN. */
const CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

function redirect(c: Context): Response {
  const url = new URL(c.req.url);
  return new Response(null, { status: 302, headers: { location: `/dashboard/${url.search}` } });
}

/** Builds the dashboard app. */
export function dashboardApp(): Hono {
  const app = new Hono();
  app.get("/", redirect);
  app.get("/dashboard", redirect);
  app.get("/dashboard/:file{.*}", (c) => {
    const asset = ASSETS[c.req.param("file")];
    if (!asset) return c.text("404 page not found", 404);
    return new Response(c.req.method === "HEAD" ? null : asset.body, {
      headers: {
        "content-type": asset.type,
        "cache-control": CACHE,
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
      },
    });
  });
  app.all("*", (c) => c.text("404 page not found", 404));
  return app;
}
