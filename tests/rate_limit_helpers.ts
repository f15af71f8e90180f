/**
 * Shared by the rateLimit tests over real HTTP: the dynamic config of one
 * router per middleware (routed by path prefix, so `fetch` can keep its
 * connections alive), a load loop shaped like the one in Traefik's
 * ratelimiter tests, a round-robin load over several instances, and a
 * capture of the limiter's log lines.
 *
 * @module
 */

import { configureRateLimitRuntime } from "../lib/middlewares/rate_limit/runtime.ts";

/** TOML for routers `/NAME...` → middleware NAME (a rateLimit with `body`) → the echo backend. */
export function rateLimitRoutes(backendUrl: string, middlewares: Record<string, string>): string {
  let toml = `[http.services.echo.loadBalancer]\nservers = [{ url = "${backendUrl}" }]\n`;
  for (const [name, body] of Object.entries(middlewares)) {
    toml +=
      `[http.routers.${name}]\nrule = "PathPrefix(\`/${name}/\`)"\nservice = "echo"\nmiddlewares = ["${name}"]\n`;
    toml += `[http.middlewares.${name}.rateLimit]\n${body}\n`;
  }
  return toml;
}

/** Status counts of a load run. */
export interface LoadResult {
  served: number;
  refused: number;
  other: Map<number, number>;
  elapsedMs: number;
  /** Served per target, for round-robin runs. */
  servedBy: number[];
}

async function get(url: string): Promise<number> {
  const res = await fetch(url);
  await res.body?.cancel();
  return res.status;
}

function count(result: LoadResult, status: number, target = 0): void {
  if (status === 200) {
    result.served++;
    result.servedBy[target] = (result.servedBy[target] ?? 0) + 1;
  } else if (status === 429) result.refused++;
  else result.other.set(status, (result.other.get(status) ?? 0) + 1);
}

/**
 * Traefik's test loop: one request at a time until `durationMs` has passed;
 * first as fast as possible until `burst` requests were served (when
 * `burst` > 0), then one per tick of a ticker at `incomingLoad` per second
 * that, like Go's, drops the ticks a slow request missed.
 */
export async function tickerLoad(
  url: string,
  o: { durationMs: number; incomingLoad: number; burst: number },
): Promise<LoadResult> {
  const result: LoadResult = {
    served: 0,
    refused: 0,
    other: new Map(),
    elapsedMs: 0,
    servedBy: [],
  };
  const period = 1000 / o.incomingLoad;
  const start = performance.now();
  const end = start + o.durationMs;
  let nextTick = start + period;
  while (performance.now() <= end) {
    count(result, await get(url));
    if (o.burst > 0 && result.served < o.burst) continue;
    const now = performance.now();
    if (now < nextTick) {
      await new Promise((r) => setTimeout(r, nextTick - now));
      nextTick += period;
    } else {
      // One tick was waiting; those after it were dropped.
      nextTick += period * (Math.floor((now - nextTick) / period) + 1);
    }
  }
  result.elapsedMs = performance.now() - start;
  return result;
}

/** `clients` loops sending as fast as they can, each request to the next of `urls` in turn. */
export async function roundRobinLoad(
  urls: string[],
  o: { durationMs: number; clients: number },
): Promise<LoadResult> {
  const result: LoadResult = {
    served: 0,
    refused: 0,
    other: new Map(),
    elapsedMs: 0,
    servedBy: urls.map(() => 0),
  };
  let turn = 0;
  const start = performance.now();
  const end = start + o.durationMs;
  const client = async () => {
    for (let i = 0; i < 100_000 && performance.now() < end; i++) {
      const target = turn++ % urls.length;
      count(result, await get(urls[target]), target);
    }
  };
  await Promise.all(Array.from({ length: o.clients }, client));
  result.elapsedMs = performance.now() - start;
  return result;
}

/** One captured line of the limiter's log. */
export interface CapturedLine {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

/**
 * Copies the limiter's log lines into an array and pins the cluster size
 * (over whatever the servers under test register); call the returned
 * `restore` in `finally`.
 */
export function captureRateLimitRuntime(
  clusterMembers = 1,
): { lines: CapturedLine[]; restore: () => void } {
  const lines: CapturedLine[] = [];
  const restore = configureRateLimitRuntime({
    log: (level, message, fields) => lines.push({ level, message, fields }),
    clusterMembers: () => clusterMembers,
  }, { override: true });
  return { lines, restore };
}

/** Polls `check` every 20 ms until it is true; throws after `ms`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** True when `actual` is within `fraction` of `expected`. */
export function within(actual: number, expected: number, fraction: number): boolean {
  return Math.abs(actual - expected) <= expected * fraction;
}
