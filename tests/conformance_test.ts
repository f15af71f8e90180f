/**
 * @module
 * The Traefik v3 rule vectors over real HTTP, inside `deno test` (logic in
 * scripts/conformance_lib.ts). Skipped with a message when shared/ is not beside the repo.
 */

import assert from "node:assert/strict";
import {
  formatReport,
  loadVectors,
  runConformance,
  VECTORS_URL,
} from "../scripts/conformance_lib.ts";

const vectors = await loadVectors();
if (!vectors) console.warn(`skipping conformance: ${VECTORS_URL.pathname} not found`);

Deno.test({
  name: "Traefik v3 rule vectors pass over real HTTP",
  ignore: !vectors,
  async fn() {
    const report = await runConformance(vectors!);
    const text = formatReport(report);
    assert.equal(report.failed, 0, text);
    // Guard against a harness that silently skips requests: 256 in the file, 5 noted.
    assert.equal(report.requestsPassed, 251, text);
    assert.equal(report.notReproducible.length, 5, text);
  },
});
