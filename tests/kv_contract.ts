/**
 * The behaviour every {@link KVStore} backend must show, written once and run
 * against memory, etcd, Redis and Consul. Each backend's test file calls
 * {@link kvContract} with a harness that starts its server and opens clients.
 *
 * All steps run inside one `Deno.test` so the server process is started and
 * stopped inside a single test (Deno's resource sanitizer checks per test).
 *
 * @module
 */

import assert from "node:assert/strict";
import { KVError, type KVStore, type KVWatchEvent } from "../lib/kv/types.ts";

/** How a backend's test file plugs into the shared suite. */
export interface KVContractHarness {
  name: string;
  /** Starts the server once for the whole suite. */
  start(): Promise<void>;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
  /** Opens a new client of the running server. */
  open(): Promise<KVStore>;
  /** Restarts the server (stop + start on the same address); omit when there is no server. */
  restart?(): Promise<void>;
  /** The TTL used in lease tests: the smallest the backend honours. */
  leaseTtlMs: number;
  /** Extra time a lease may outlive its TTL on this backend (default `leaseTtlMs * 2`). */
  leaseGraceMs?: number;
  /**
   * True when a watch may merge changes that happen between two reads of the
   * store (Consul's blocking queries, Redis's read-on-notify); the view must
   * still converge to the store's contents.
   */
  coalescesWatchEvents?: boolean;
  /** Only for backends whose npm client leaks timers or sockets after close; say why at the call site. */
  sanitize?: boolean;
}

/** Applies watch events to a map, like a provider's view of the tree. */
export class WatchView {
  readonly values = new Map<string, string>();
  readonly events: KVWatchEvent[] = [];
  resets = 0;
  lastRevision = 0;

  apply = (events: KVWatchEvent[]): void => {
    for (const e of events) {
      this.events.push(e);
      if (e.kind === "reset") {
        this.resets++;
        this.values.clear();
        for (const entry of e.entries) this.values.set(entry.key, entry.value);
      } else if (e.kind === "put") this.values.set(e.key, e.value);
      else this.values.delete(e.key);
      this.lastRevision = e.revision;
    }
  };

  snapshot(): Record<string, string> {
    return Object.fromEntries([...this.values].sort(([a], [b]) => (a < b ? -1 : 1)));
  }
}

/** Polls `check` until it returns true or `timeoutMs` passes, then fails with `what`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

let counter = 0;
function uniquePrefix(name: string): string {
  return `contract/${name}-${Date.now().toString(36)}-${counter++}/`;
}

async function contents(store: KVStore, prefix: string): Promise<Record<string, string>> {
  const { entries } = await store.list(prefix);
  return Object.fromEntries(entries.map((e) => [e.key, e.value]));
}

/** Registers the shared behavioural suite for one backend. */
export function kvContract(h: KVContractHarness): void {
  Deno.test({
    name: `kv contract: ${h.name}`,
    sanitizeOps: h.sanitize ?? true,
    sanitizeResources: h.sanitize ?? true,
    async fn(t) {
      await h.start();
      const store = await h.open();
      const others: KVStore[] = [];
      const open = async () => {
        const s = await h.open();
        others.push(s);
        return s;
      };
      try {
        await t.step("put, get, list and delete", async () => {
          const p = uniquePrefix("basic");
          assert.equal(await store.get(`${p}missing`), undefined);
          await store.put(`${p}b`, "2");
          await store.put(`${p}a`, "1");
          await store.put(`${p}c/d`, "");
          await store.put(`${p.slice(0, -1)}x`, "outside"); // shares the text but not the "/"
          const a = await store.get(`${p}a`);
          assert.equal(a?.value, "1");
          assert.equal(a?.key, `${p}a`);
          const listed = await store.list(p);
          assert.deepEqual(listed.entries.map((e) => [e.key, e.value]), [
            [`${p}a`, "1"],
            [`${p}b`, "2"],
            [`${p}c/d`, ""],
          ]);
          for (const e of listed.entries) assert.ok(e.revision <= listed.revision);
          await store.put(`${p}a`, "1b");
          const a2 = await store.get(`${p}a`);
          assert.equal(a2?.value, "1b");
          assert.ok(a2!.revision > a!.revision, "a put must raise the key's revision");
          await store.delete(`${p}a`);
          await store.delete(`${p}never-existed`);
          assert.equal(await store.get(`${p}a`), undefined);
          assert.deepEqual(await contents(store, p), { [`${p}b`]: "2", [`${p}c/d`]: "" });
          await store.delete(`${p.slice(0, -1)}x`);
        });

        await t.step("deletePrefix removes only that prefix and counts", async () => {
          const p = uniquePrefix("delprefix");
          for (const k of ["x/1", "x/2", "x/3/4", "xy", "z"]) await store.put(`${p}${k}`, k);
          assert.equal(await store.deletePrefix(`${p}x/`), 3);
          assert.deepEqual(await contents(store, p), { [`${p}xy`]: "xy", [`${p}z`]: "z" });
          assert.equal(await store.deletePrefix(`${p}nothing/`), 0);
          assert.equal(await store.deletePrefix(p), 2);
          assert.deepEqual(await contents(store, p), {});
        });

        await t.step("compareAndSet succeeds and fails on the current value", async () => {
          const k = `${uniquePrefix("cas")}leader`;
          const cases: [string | undefined, string, boolean, string | undefined][] = [
            [undefined, "n1", true, "n1"], // create when absent
            [undefined, "n2", false, "n1"], // create-only fails when present
            ["n9", "n2", false, "n1"], // wrong expected value
            ["n1", "n2", true, "n2"], // right expected value
            ["n1", "n3", false, "n2"], // stale expectation
          ];
          for (const [expected, value, ok, after] of cases) {
            assert.equal(
              await store.compareAndSet(k, expected, value),
              ok,
              `cas(${expected} -> ${value})`,
            );
            assert.equal((await store.get(k))?.value, after);
          }
          await store.delete(k);
        });

        await t.step("transaction applies all or nothing", async () => {
          const p = uniquePrefix("txn");
          await store.put(`${p}fence`, "node1:3");
          await store.put(`${p}old`, "x");
          // One of two conditions fails: nothing changes.
          const failed = await store.transaction(
            [{ key: `${p}fence`, kind: "equals", value: "node1:3" }, {
              key: `${p}old`,
              kind: "absent",
            }],
            [{ kind: "put", key: `${p}cert`, value: "c" }, { kind: "delete", key: `${p}old` }],
          );
          assert.equal(failed, false);
          assert.deepEqual(await contents(store, p), {
            [`${p}fence`]: "node1:3",
            [`${p}old`]: "x",
          });
          // Every condition holds: every operation applies.
          const ok = await store.transaction(
            [{ key: `${p}fence`, kind: "equals", value: "node1:3" }, {
              key: `${p}new`,
              kind: "absent",
            }],
            [
              { kind: "put", key: `${p}cert`, value: "c" },
              { kind: "put", key: `${p}new`, value: "n" },
              { kind: "delete", key: `${p}old` },
            ],
          );
          assert.equal(ok, true);
          assert.deepEqual(await contents(store, p), {
            [`${p}cert`]: "c",
            [`${p}fence`]: "node1:3",
            [`${p}new`]: "n",
          });
          // A deposed writer's fencing token no longer matches.
          await store.put(`${p}fence`, "node2:4");
          assert.equal(
            await store.transaction([{ key: `${p}fence`, kind: "equals", value: "node1:3" }], [{
              kind: "put",
              key: `${p}cert`,
              value: "stale",
            }]),
            false,
          );
          assert.equal((await store.get(`${p}cert`))?.value, "c");
          await store.deletePrefix(p);
        });

        await t.step("bad input is a KVError naming the backend and key", async () => {
          const p = uniquePrefix("bad");
          await assert.rejects(() => store.put("", "v"), (e: Error) => {
            assert.ok(e instanceof KVError);
            assert.match(e.message, new RegExp(store.kind));
            return true;
          });
          await assert.rejects(
            () => store.put(`${p}k`, 5 as unknown as string),
            (e: Error) => e instanceof KVError && e.message.includes(`${p}k`),
          );
          await assert.rejects(
            () =>
              store.transaction([{ key: `${p}c`, kind: "bogus" } as never], [{
                kind: "put",
                key: `${p}k`,
                value: "v",
              }]),
            (e: Error) => e instanceof KVError && e.message.includes(`${p}c`),
          );
          await assert.rejects(() => store.grantLease(-1), KVError);
          assert.equal(await store.get(`${p}k`), undefined);
        });

        await t.step("watch starts with a reset and sees puts and deletes in order", async () => {
          const p = uniquePrefix("watch");
          await store.put(`${p}pre`, "0");
          const view = new WatchView();
          const w = store.watch(p, { onEvents: view.apply });
          try {
            await waitFor("initial reset", () => view.resets === 1);
            assert.deepEqual(view.snapshot(), { [`${p}pre`]: "0" });
            // One write at a time, each seen before the next: polling backends
            // (Consul) may merge writes that land between two polls.
            const writes: [string, string | null][] = [
              [`${p}a`, "1"],
              [`${p.slice(0, -1)}-sibling`, "not mine"],
              [`${p}a`, "2"],
              [`${p}pre`, null],
              [`${p}b`, "3"],
            ];
            for (const [key, value] of writes) {
              if (value === null) await store.delete(key);
              else await store.put(key, value);
              if (!key.startsWith(p)) continue;
              await waitFor(
                `watch to see ${key}=${value}`,
                () => value === null ? !view.values.has(key) : view.values.get(key) === value,
              );
            }
            const changes = view.events.filter((e) => e.kind !== "reset");
            assert.deepEqual(
              changes.map((e) => [e.kind, e.key, e.kind === "put" ? e.value : null]),
              [
                ["put", `${p}a`, "1"],
                ["put", `${p}a`, "2"],
                ["delete", `${p}pre`, null],
                ["put", `${p}b`, "3"],
              ],
            );
            if (!h.coalescesWatchEvents) {
              // A burst without waiting: a stream-based watch still delivers every step.
              const before = view.events.length;
              await store.put(`${p}burst`, "x");
              await store.put(`${p}burst`, "y");
              await store.delete(`${p}burst`);
              await store.put(`${p}burst`, "z");
              await waitFor("burst", () => view.values.get(`${p}burst`) === "z");
              assert.deepEqual(
                view.events.slice(before).map((e) => e.kind === "put" ? e.value : e.kind),
                ["x", "y", "delete", "z"],
              );
            }
            for (let i = 1; i < view.events.length; i++) {
              assert.ok(
                view.events[i].revision >= view.events[i - 1].revision,
                "revisions ordered",
              );
            }
            assert.deepEqual(view.snapshot(), await contents(store, p));
          } finally {
            await w.close();
          }
          await store.delete(`${p.slice(0, -1)}-sibling`);
          await store.deletePrefix(p);
        });

        await t.step("watch sees every key of a multi-key transaction", async () => {
          const p = uniquePrefix("txnwatch");
          const view = new WatchView();
          const w = store.watch(p, { onEvents: view.apply });
          try {
            await waitFor("initial reset", () => view.resets === 1);
            const ok = await store.transaction([], [
              { kind: "put", key: `${p}a`, value: "1" },
              { kind: "put", key: `${p}b`, value: "2" },
              { kind: "put", key: `${p}c`, value: "3" },
            ]);
            assert.equal(ok, true);
            await waitFor("all three keys", () => view.values.size === 3);
            assert.deepEqual(view.snapshot(), { [`${p}a`]: "1", [`${p}b`]: "2", [`${p}c`]: "3" });
          } finally {
            await w.close();
          }
          await store.deletePrefix(p);
        });

        await t.step("watch from a revision delivers what changed since", async () => {
          const p = uniquePrefix("resume");
          await store.put(`${p}keep`, "k");
          await store.put(`${p}gone`, "g");
          const { revision, entries } = await store.list(p);
          const view = new WatchView();
          for (const e of entries) view.values.set(e.key, e.value);
          await store.put(`${p}new`, "n");
          await store.delete(`${p}gone`);
          const w = store.watch(p, { fromRevision: revision, onEvents: view.apply });
          try {
            const expected = { [`${p}keep`]: "k", [`${p}new`]: "n" };
            await waitFor(
              "resumed view",
              () => JSON.stringify(view.snapshot()) === JSON.stringify(expected),
            );
          } finally {
            await w.close();
          }
          await store.deletePrefix(p);
        });

        await t.step("revoking a lease removes its keys", async () => {
          const p = uniquePrefix("revoke");
          const lease = await store.grantLease(h.leaseTtlMs);
          assert.ok(lease.id.length > 0);
          await store.put(`${p}owned`, "mine", { lease });
          assert.equal(
            await store.transaction([{ key: `${p}txn`, kind: "absent" }], [{
              kind: "put",
              key: `${p}txn`,
              value: "t",
              lease,
            }]),
            true,
          );
          await store.put(`${p}free`, "stays");
          assert.equal((await store.get(`${p}owned`))?.value, "mine");
          await lease.revoke();
          await waitFor(
            "revoked keys gone",
            async () => (await store.list(p)).entries.length === 1,
          );
          assert.deepEqual(await contents(store, p), { [`${p}free`]: "stays" });
          await store.deletePrefix(p);
        });

        await t.step("a live lease is kept alive past its TTL", async () => {
          const p = uniquePrefix("keepalive");
          const lease = await store.grantLease(h.leaseTtlMs);
          await store.put(`${p}k`, "v", { lease });
          await new Promise((r) => setTimeout(r, h.leaseTtlMs * 1.6));
          assert.equal((await store.get(`${p}k`))?.value, "v");
          await lease.revoke();
        });

        await t.step("a dead holder's lease expires and its keys go", async () => {
          const p = uniquePrefix("expire");
          const holder = await open();
          const lease = await holder.grantLease(h.leaseTtlMs);
          await holder.put(`${p}leader`, "holder", { lease });
          const view = new WatchView();
          const w = store.watch(p, { onEvents: view.apply });
          try {
            await waitFor("leader seen", () => view.values.get(`${p}leader`) === "holder");
            const closedAt = Date.now();
            await holder.close(); // stops keep-alives without revoking
            const limit = h.leaseTtlMs + (h.leaseGraceMs ?? h.leaseTtlMs * 2) + 1000;
            await waitFor("lease expiry", () => !view.values.has(`${p}leader`), limit);
            assert.ok(Date.now() - closedAt >= h.leaseTtlMs * 0.5, "expired too early");
            assert.equal(await store.get(`${p}leader`), undefined);
          } finally {
            await w.close();
          }
        });

        if (h.restart) {
          await t.step("watch survives a server restart", async () => {
            const p = uniquePrefix("restart");
            await store.put(`${p}before`, "1");
            const view = new WatchView();
            const states: string[] = [];
            const w = store.watch(p, {
              onEvents: view.apply,
              onState: (s) => states.push(s),
            });
            try {
              await waitFor("initial view", () => view.values.get(`${p}before`) === "1");
              await h.restart!();
              // Written right after the restart, while the watch is still reconnecting.
              const writer = await open();
              await writer.put(`${p}after`, "2");
              await writer.put(`${p}before`, "1b");
              const expected = await contents(writer, p);
              assert.equal(expected[`${p}after`], "2");
              await waitFor(
                "watch view to match the store after restart",
                () => JSON.stringify(view.snapshot()) === JSON.stringify(expected),
                15000,
              );
              // And it keeps following changes afterwards.
              await store.put(`${p}later`, "3");
              await waitFor(
                "post-restart change",
                () => view.values.get(`${p}later`) === "3",
                10000,
              );
            } finally {
              await w.close();
            }
            await store.deletePrefix(p);
          });
        }
      } finally {
        for (const s of others) await s.close().catch(() => {});
        await store.close();
        await h.stop();
      }
    },
  });
}
