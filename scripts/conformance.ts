/**
 * @module
 * `deno task conformance`: the Traefik v3 rule vectors over real HTTP. Prints failures,
 * the requests that only make sense inside Go, and `N passed, N failed`; exits 1 on any
 * failure or when the shared vectors file is missing.
 */

import { formatReport, loadVectors, runConformance, VECTORS_URL } from "./conformance_lib.ts";

const vectors = await loadVectors();
if (!vectors) {
  console.error(`conformance vectors not found at ${VECTORS_URL.pathname}`);
  Deno.exit(1);
}
const report = await runConformance(vectors);
console.log(formatReport(report));
if (report.failed > 0) Deno.exit(1);
