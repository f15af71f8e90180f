/**
 * Relays one TCP connection to its backend, bytes both ways, untouched.
 *
 * Half-close is honoured: when one side stops writing (FIN), the other
 * side is told the same (`closeWrite`) and may go on sending, as a client
 * that shuts down its sending half and still reads the answer expects.
 * `terminationDelay` bounds how long the second direction may stay open
 * after the first has finished (below 0: as long as it likes), as in
 * Traefik. Each direction awaits its write before its next read, so a slow
 * reader slows the sender down (backpressure) instead of filling memory.
 *
 * @module
 */

import { closeQuietly, writeAll } from "../engine/socket.ts";

/** Bytes carried each way, counted as they flow (for metrics of long-lived connections). */
export interface RelayTally {
  /** Client → backend. */
  bytesIn: number;
  /** Backend → client. */
  bytesOut: number;
}

const BUFFER = 32 * 1024;
/** Buffers of finished relays, reused: two fresh 32 KB arrays per connection kept the GC busy at high connection rates. */
const spare: Uint8Array[] = [];
const SPARE_MAX = 256;

/** Copies `from` into `to` until EOF or an error; true when it ended by EOF. */
async function copy(from: Deno.Conn, to: Deno.Conn, count: (n: number) => void): Promise<boolean> {
  const buf = spare.pop() ?? new Uint8Array(BUFFER);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return true;
      await writeAll(to, buf.subarray(0, n));
      count(n);
    }
  } catch {
    return false;
  } finally {
    if (spare.length < SPARE_MAX) spare.push(buf);
  }
}

function closeWrite(conn: Deno.Conn): boolean {
  try {
    // deno-lint-ignore no-explicit-any
    const c = conn as any;
    if (typeof c.closeWrite !== "function") return false;
    void Promise.resolve(c.closeWrite()).catch(() => {});
    return true;
  } catch {
    return false;
  }
}

/**
 * Pipes `client` and `backend` together until both directions end, then
 * closes both. Bytes are added to `tally` as they go.
 */
export async function relayTcp(
  client: Deno.Conn,
  backend: Deno.Conn,
  terminationDelay: number,
  tally: RelayTally,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let firstDone = false;
  const finished = (clean: boolean, to: Deno.Conn) => {
    // The second direction to finish needs no half-close: both sockets close next.
    if (firstDone && clean) return;
    // A reset on one side, or a side that cannot half-close, ends the whole relay.
    if (!clean || !closeWrite(to)) {
      closeQuietly(client);
      closeQuietly(backend);
      return;
    }
    firstDone = true;
    if (terminationDelay >= 0) {
      timer = setTimeout(() => {
        closeQuietly(client);
        closeQuietly(backend);
      }, terminationDelay);
    }
  };
  await Promise.all([
    copy(client, backend, (n) => tally.bytesIn += n).then((clean) => finished(clean, backend)),
    copy(backend, client, (n) => tally.bytesOut += n).then((clean) => finished(clean, client)),
  ]);
  clearTimeout(timer);
  closeQuietly(client);
  closeQuietly(backend);
}
