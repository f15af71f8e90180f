/**
 * The local cache of a KV provider's last good snapshot, so an instance that
 * starts while the store is down still serves the configuration it last
 * knew. The cache holds the raw keys, not the decoded config, so it is
 * decoded (and validated) again by the running version's codec.
 *
 * The file is written with mode 0600 (values may hold credentials, such as
 * basic-auth hashes) and atomically: a temporary file is renamed over it, so
 * a crash never leaves half a file.
 *
 * @example
 * ```ts
 * const cache = new KVSnapshotCache("/var/lib/portico/kv-etcd.json");
 * await cache.save({ provider: "etcd", rootKey: "traefik", entries: new Map([["traefik/x", "1"]]) });
 * const saved = await cache.load("traefik");
 * ```
 *
 * @module
 */

/** What the cache holds for one provider. */
export interface CachedSnapshot {
  provider: string;
  rootKey: string;
  /** The keys under `rootKey/` and their values. */
  entries: Map<string, string>;
  /** When it was written. */
  savedAt?: Date;
}

/** The cache file for `provider` in `dir`: `<dir>/kv-<provider>.json`. */
export function cacheFilePath(dir: string, provider: string): string {
  return `${dir.replace(/\/+$/, "") || "/"}/kv-${provider}.json`;
}

/** One provider's cache file. Saves are serialised; only the latest pending one is written. */
export class KVSnapshotCache {
  #writing: Promise<void> = Promise.resolve();
  #next?: CachedSnapshot;

  constructor(readonly path: string) {}

  /**
   * Reads the cache. Undefined when there is no file or it was written for
   * another root key; throws with the path named when the file is unreadable
   * or not a cache.
   */
  async load(rootKey: string): Promise<CachedSnapshot | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw new Error(`KV cache ${this.path}: cannot read: ${(error as Error).message}`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new Error(`KV cache ${this.path}: not valid JSON; delete it and it will be rewritten`);
    }
    const d = data as {
      provider?: unknown;
      rootKey?: unknown;
      entries?: unknown;
      savedAt?: unknown;
    };
    if (
      typeof d !== "object" || d === null || typeof d.rootKey !== "string" ||
      typeof d.entries !== "object" || d.entries === null ||
      !Object.values(d.entries).every((v) => typeof v === "string")
    ) {
      throw new Error(
        `KV cache ${this.path}: expected {"rootKey": "...", "entries": {"key": "value"}}; delete it and it will be rewritten`,
      );
    }
    if (d.rootKey !== rootKey) return undefined;
    return {
      provider: String(d.provider ?? ""),
      rootKey: d.rootKey,
      entries: new Map(Object.entries(d.entries as Record<string, string>)),
      savedAt: typeof d.savedAt === "string" ? new Date(d.savedAt) : undefined,
    };
  }

  /** Writes `snapshot`, after any save in progress. Resolves when it is on disk. */
  save(snapshot: CachedSnapshot): Promise<void> {
    this.#next = snapshot;
    // A failed save must not stop later ones.
    this.#writing = this.#writing.catch(() => {}).then(() => this.#flush());
    return this.#writing;
  }

  async #flush(): Promise<void> {
    const snapshot = this.#next;
    if (snapshot === undefined) return; // a later save already wrote it
    this.#next = undefined;
    const dir = this.path.slice(0, Math.max(0, this.path.lastIndexOf("/"))) || ".";
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const body = JSON.stringify(
      {
        provider: snapshot.provider,
        rootKey: snapshot.rootKey,
        savedAt: (snapshot.savedAt ?? new Date()).toISOString(),
        entries: Object.fromEntries(snapshot.entries),
      },
      null,
      1,
    );
    const tmp = `${this.path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await Deno.writeTextFile(tmp, body, { mode: 0o600 });
      // writeTextFile's mode applies only when creating; make sure of it either way.
      await Deno.chmod(tmp, 0o600);
      await Deno.rename(tmp, this.path);
    } catch (error) {
      await Deno.remove(tmp).catch(() => {});
      throw error;
    }
  }

  /** Resolves once every save asked for so far is on disk (or failed). */
  async settled(): Promise<void> {
    await this.#writing.catch(() => {});
  }
}
