/** Bounded waits: each settles with the promise or at the deadline, and leaves no timer behind (the op sanitizer checks). */

import assert from "node:assert/strict";
import { orAfter, settleWithin, withDeadline } from "../lib/deadline.ts";

const never = new Promise<never>(() => {});
const later = <T>(ms: number, value: T) => new Promise<T>((r) => setTimeout(() => r(value), ms));

Deno.test("settleWithin: true when the promise settles first, rejected or not; false at the deadline", async () => {
  assert.equal(await settleWithin(Promise.resolve(1), 1000), true);
  assert.equal(await settleWithin(Promise.reject(new Error("x")), 1000), true);
  assert.equal(await settleWithin(undefined, 1000), true);
  assert.equal(await settleWithin(never, 5), false);
});

Deno.test("orAfter: the value, the fallback at the deadline, and a rejection passed on", async () => {
  assert.equal(await orAfter(later(1, "value"), 1000, "late"), "value");
  assert.equal(await orAfter(never, 5, "late"), "late");
  await assert.rejects(orAfter(Promise.reject(new Error("boom")), 1000, "late"), /boom/);
});

Deno.test("withDeadline: the value, the timeout's own error, and no deadline at 0", async () => {
  assert.equal(await withDeadline(later(1, 7), 1000, () => new Error("timed out")), 7);
  let released = false;
  await assert.rejects(
    withDeadline(never, 5, () => {
      released = true;
      return new RangeError("dial timed out");
    }),
    (err: Error) => err instanceof RangeError && err.message === "dial timed out",
  );
  assert.equal(released, true);
  assert.equal(await withDeadline(later(20, "slow"), 0, () => new Error("no deadline expected")), "slow");
});
