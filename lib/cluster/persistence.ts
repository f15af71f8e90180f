/**
 * Durable storage of the election's hard state ({term, votedFor}) in the
 * cluster `dataDir`. Raft's safety needs this on disk before a vote is
 * answered, so a save writes a temporary file, fsyncs it, renames it over the
 * old one (atomic on POSIX) and fsyncs the directory so the rename itself
 * survives a power cut.
 *
 * @module
 */
import type { HardState } from "./election.ts";

/** File name of the state inside `dataDir`. */
export const STATE_FILE = "cluster-state.json";

/** The state file exists but cannot be used. Names the file and what was wrong. */
export class StateFileError extends Error {
  constructor(readonly path: string, detail: string, options?: ErrorOptions) {
    super(
      `cluster state file ${path}: ${detail}; expected JSON {"term": <integer >= 0>, "votedFor": <string or null>}. ` +
        `If the file is damaged, stop the node, remove it and rejoin (the node will only vote in newer terms after a full election timeout).`,
      options,
    );
    this.name = "StateFileError";
  }
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * Writes `state` durably to `<dataDir>/cluster-state.json`, creating
 * `dataDir` if needed. Resolves only after file and directory are fsynced.
 *
 * @example
 * ```ts
 * await saveState("./data", { term: 3, votedFor: "n2" });
 * ```
 */
export async function saveState(dataDir: string, state: HardState): Promise<void> {
  validate(state, join(dataDir, STATE_FILE));
  await Deno.mkdir(dataDir, { recursive: true });
  const target = join(dataDir, STATE_FILE);
  const temp = `${target}.tmp-${crypto.randomUUID()}`;
  const body = new TextEncoder().encode(
    JSON.stringify({ term: state.term, votedFor: state.votedFor }) + "\n",
  );
  const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
  try {
    let written = 0;
    while (written < body.length) written += await file.write(body.subarray(written));
    await file.sync();
  } catch (e) {
    file.close();
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
  file.close();
  try {
    await Deno.rename(temp, target);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
  await syncDir(dataDir);
}

async function syncDir(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch (e) {
    // Some platforms (Windows) cannot open or fsync a directory; the rename
    // is still atomic there, only its durability across power loss is weaker.
    if (Deno.build.os !== "windows") throw e;
  } finally {
    handle?.close();
  }
}

/**
 * Reads the state saved by {@linkcode saveState}. A missing file (first start)
 * gives `{term: 0, votedFor: null}`; an unreadable or malformed one throws a
 * {@linkcode StateFileError} naming the file.
 */
export async function loadState(dataDir: string): Promise<HardState> {
  const path = join(dataDir, STATE_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { term: 0, votedFor: null };
    throw new StateFileError(path, `cannot read it (${(e as Error).message})`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new StateFileError(path, `not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return validate(parsed, path);
}

function validate(value: unknown, path: string): HardState {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new StateFileError(path, "not a JSON object");
  }
  const { term, votedFor } = value as Record<string, unknown>;
  if (typeof term !== "number" || !Number.isSafeInteger(term) || term < 0) {
    throw new StateFileError(path, `field "term" is ${JSON.stringify(term)}`);
  }
  if (votedFor !== null && (typeof votedFor !== "string" || votedFor === "")) {
    throw new StateFileError(path, `field "votedFor" is ${JSON.stringify(votedFor)}`);
  }
  return { term, votedFor };
}
