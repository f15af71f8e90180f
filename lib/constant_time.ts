/**
 * The one constant-time byte comparison, for secrets (passwords, digests,
 * MACs, the cluster key): its time depends only on the lengths, which are
 * not secret here (hashes and MACs have fixed sizes).
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";

/** True when `a` and `b` hold the same bytes; never short-circuits on content. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
