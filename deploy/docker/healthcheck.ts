/**
 * Docker HEALTHCHECK for Portico: exits 0 when `/ping` on the API
 * entrypoint answers 200, 1 otherwise (503 while draining, or no answer).
 * The image has no curl; this runs with `--allow-net=127.0.0.1:8080` only.
 *
 * @module
 */

const url = Deno.args[0] ?? "http://127.0.0.1:8080/ping";
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  await res.body?.cancel();
  if (res.status !== 200) console.error(`portico health: ${url} answered ${res.status}`);
  Deno.exit(res.status === 200 ? 0 : 1);
} catch (err) {
  console.error(`portico health: ${url}: ${(err as Error).message}`);
  Deno.exit(1);
}
