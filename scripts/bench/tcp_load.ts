/**
 * The TCP scenario's tools (issue 19): builds the C echo backend and load
 * generator (scripts/bench/tcp_echo.c, tcp_load.c) with `gcc -O2`, cached by
 * source hash under `.portico-cache/bench/`; installs gcc and nginx's stream
 * module from Debian when missing; runs the load generator pinned to the
 * load core and parses its JSON line into the shape the report uses for wrk
 * (req/s = messages or connections per second).
 *
 * @module
 */

import { NGINX_STREAM_MODULE } from "./configs.ts";
import { logTail, type Proc, run, sleep, spawnGroup } from "./procs.ts";
import type { WrkResult } from "./wrk.ts";

/** The C programs of the TCP scenario. */
export type TcpTool = "tcp_echo" | "tcp_load";

const CFLAGS = ["-O2", "-Wall", "-Wextra"];

async function hasCommand(name: string): Promise<boolean> {
  return (await run(["bash", "-c", `command -v ${name}`])).code === 0;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Installs what the TCP scenario needs and lacks, as scripts/install_deps.sh
 * does for the peers: gcc (and libc headers) and nginx's stream module.
 */
export async function ensureTcpTools(): Promise<void> {
  const need: string[] = [];
  if (!(await hasCommand("gcc"))) need.push("gcc", "libc6-dev");
  if (!exists(NGINX_STREAM_MODULE)) need.push("libnginx-mod-stream");
  if (need.length === 0) return;
  console.log(`installing Debian packages: ${need.join(" ")}`);
  const sudo = Deno.uid() === 0 ? [] : ["sudo"];
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const update = await run([...sudo, "apt-get", "update", "-qq"], { env });
  if (update.code !== 0) throw new Error(`apt-get update failed: ${update.stderr.trim()}`);
  const install = await run(
    [...sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", ...need],
    { env },
  );
  if (install.code !== 0) {
    throw new Error(`installing ${need.join(" ")} failed: ${install.stderr.trim()}`);
  }
  // The package may start Debian's nginx; the bench starts its own on free ports.
  await run([...sudo, "service", "nginx", "stop"]).catch(() => {});
}

/** Compiles `tool` once per source (and flags) and returns the binary's path. */
export async function buildTool(repo: string, tool: TcpTool): Promise<string> {
  const source = `${repo}/scripts/bench/${tool}.c`;
  const text = await Deno.readFile(source);
  const salt = new TextEncoder().encode(`\0${CFLAGS.join(" ")}`);
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new Uint8Array([...text, ...salt])),
  );
  const hash = [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const dir = `${repo}/.portico-cache/bench`;
  const binary = `${dir}/${tool}-${hash}`;
  if (exists(binary)) return binary;
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${binary}.${Deno.pid}.tmp`;
  const out = await run(["gcc", ...CFLAGS, "-o", tmp, source]);
  if (out.code !== 0) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`gcc ${tool}.c failed: ${out.stderr.trim()}`);
  }
  await Deno.rename(tmp, binary);
  return binary;
}

/** Starts the echo backend on `port`, pinned to `cpu`. */
export function startEcho(binary: string, port: number, cpu: number, logFile: string): Proc {
  return spawnGroup("tcp echo", [binary, String(port)], { cpu, logFile });
}

/** One run of tcp_load, as printed (see tcp_load.c). */
export interface TcpLoadOutput {
  mode: "echo" | "connect";
  connections: number;
  messageBytes: number;
  durationSec: number;
  completed: number;
  perSec: number;
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
  bytesSent: number;
  bytesReceived: number;
  drained: number;
  errors: number;
  connectErrors: number;
  mismatches: number;
  incomplete: number;
}

/**
 * A tcp_load run in the report's shape: requestsPerSec is messages (echo) or
 * connections (connect) per second, requests how many completed in the
 * window, socketErrors the failed connections and messages still unanswered
 * when the drain ended; `tcp` keeps the full output, MB/s and the byte counts.
 */
export interface TcpLoadResult extends WrkResult {
  tcp: TcpLoadOutput;
}

/** Parses tcp_load's last stdout line. */
export function parseTcpLoadOutput(stdout: string): TcpLoadResult {
  const line = stdout.trim().split("\n").pop() ?? "";
  let tcp: TcpLoadOutput;
  try {
    tcp = JSON.parse(line);
  } catch {
    throw new Error(`tcp_load: unexpected output: ${stdout.trim() || "(none)"}`);
  }
  return {
    requestsPerSec: tcp.perSec,
    p50Ms: tcp.p50Ms,
    p99Ms: tcp.p99Ms,
    requests: tcp.completed,
    socketErrors: tcp.errors + tcp.connectErrors + tcp.incomplete,
    non2xx: tcp.mismatches,
    tcp,
  };
}

export interface TcpLoadOptions {
  mode: "echo" | "connect";
  port: number;
  connections: number;
  durationSec: number;
  /** Core the load generator runs on. */
  cpu: number;
  /** Message size; tcp_load's default (100 KB echo, 64 B connect) when absent. */
  messageBytes?: number;
}

/** The command line (printed in the report so a run can be repeated by hand). */
export function tcpLoadCommand(binary: string, o: TcpLoadOptions): string[] {
  return [
    "taskset",
    "-c",
    String(o.cpu),
    binary,
    o.mode,
    "127.0.0.1",
    String(o.port),
    String(o.connections),
    String(o.durationSec),
    ...(o.messageBytes ? [String(o.messageBytes)] : []),
  ];
}

/**
 * Runs tcp_load once. Bytes that came back different from what was sent are
 * an error, not a figure: the row fails with it.
 */
export async function runTcpLoad(binary: string, o: TcpLoadOptions): Promise<TcpLoadResult> {
  const out = await run([
    "bash",
    "-c",
    'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$@"',
    "bash",
    ...tcpLoadCommand(binary, o),
  ]);
  if (out.code !== 0) {
    throw new Error(
      `tcp_load failed (exit ${out.code}): ${out.stderr.trim() || out.stdout.trim()}`,
    );
  }
  const result = parseTcpLoadOutput(out.stdout);
  if (result.tcp.mismatches > 0) {
    throw new Error(
      `tcp_load ${o.mode}: ${result.tcp.mismatches} echo(es) came back with other bytes than sent`,
    );
  }
  return result;
}

/** Whether a round's echoes all came back whole: bytes received equal bytes sent. */
export function echoedWhole(r: TcpLoadOutput): boolean {
  return r.bytesSent === r.bytesReceived && r.mismatches === 0 && r.incomplete === 0;
}

/**
 * One echo round trip on a fresh connection, within `timeoutMs`: undefined
 * when the bytes came back, else what went wrong.
 */
export async function echoOnce(port: number, timeoutMs = 1000): Promise<string | undefined> {
  const probe = new TextEncoder().encode(`portico-bench-probe-${Date.now()}\n`);
  let conn: Deno.Conn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      resolve(`no echo within ${timeoutMs} ms`);
      try {
        conn?.close();
      } catch {
        // Closed already.
      }
    }, timeoutMs);
  });
  const exchange = (async () => {
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(probe);
      const got = new Uint8Array(probe.length);
      let n = 0;
      while (n < got.length) {
        const k = await conn.read(got.subarray(n));
        if (k === null) return `connection closed after ${n} of ${probe.length} echoed bytes`;
        n += k;
      }
      return got.every((b, i) => b === probe[i]) ? undefined : "the echo differs from the probe";
    } catch (err) {
      return (err as Error).message;
    }
  })();
  try {
    return await Promise.race([exchange, timeout]);
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // Closed already.
    }
  }
}

/**
 * Waits until an echo comes back through `port`, the process exits, or
 * `timeoutMs` passes; returns undefined when ready, else an error naming the
 * last failure and the tails of the process's log and of `moreLogs` (nginx
 * writes its startup errors to its own file).
 */
export async function waitEchoReady(
  proc: Proc | undefined,
  port: number,
  timeoutMs = 20_000,
  moreLogs: string[] = [],
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | undefined;
  proc?.exited.then((code) => (exited = code));
  let last = "never tried";
  while (Date.now() < deadline && exited === undefined) {
    const err = await echoOnce(port);
    if (err === undefined) return undefined;
    last = err;
    await sleep(100);
  }
  const why = exited !== undefined ? `exited with code ${exited}` : `no echo through port ${port}`;
  const tails = [...(proc ? [proc.logFile] : []), ...moreLogs]
    .map((f) => logTail(f, 5)).filter((t) => t && t !== "(no log)");
  const log = tails.length ? `; log: ${tails.join(" | ").replaceAll("\n", " | ")}` : "";
  return `${why} (last: ${last})${log}`;
}
