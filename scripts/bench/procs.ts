/**
 * Process handling for the benchmark: every server runs in its own process
 * group pinned to one core, with its output in a log file, and is killed as
 * a group so nothing is left running (nginx workers included).
 *
 * @module
 */

/** A server the harness started. */
export interface Proc {
  readonly name: string;
  /** PID of the process group leader (= its process group id). */
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code once the leader has exited. */
  readonly exited: Promise<number>;
  /** SIGTERM to the group, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<Proc>();

export interface SpawnOptions {
  /** The core to pin to (`taskset -c`). */
  cpu: number;
  logFile: string;
  env?: Record<string, string>;
  cwd?: string;
}

/**
 * Starts `cmd` in a new session (its own process group), pinned to a core,
 * with a raised file-descriptor limit for 1,000-connection runs. `setsid`,
 * `bash -c exec` and `taskset` all exec in place, so the PID is the server's.
 */
export function spawnGroup(name: string, cmd: string[], options: SpawnOptions): Proc {
  const child = new Deno.Command("setsid", {
    args: [
      "bash",
      "-c",
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$@" >>"$BENCH_LOG" 2>&1 </dev/null',
      "bash",
      "taskset",
      "-c",
      String(options.cpu),
      ...cmd,
    ],
    env: { ...options.env, BENCH_LOG: options.logFile },
    cwd: options.cwd,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const pid = child.pid;
  const exited = child.status.then((s) => s.code);
  let done = false;
  exited.then(() => (done = true));
  const proc: Proc = {
    name,
    pid,
    logFile: options.logFile,
    exited,
    async stop(graceMs = 3000) {
      if (!running.has(proc)) return;
      running.delete(proc);
      killGroup(pid, "SIGTERM");
      const deadline = Date.now() + graceMs;
      while (groupMembers(pid).length > 0 && Date.now() < deadline) await sleep(50);
      if (groupMembers(pid).length > 0) killGroup(pid, "SIGKILL");
      if (!done) await exited;
    },
  };
  running.add(proc);
  return proc;
}

function killGroup(pgid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

/** Stops every process the harness started and has not stopped yet. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(1500)));
}

/** Kills every started group at once, synchronously (for a signal handler). */
export function killAllNow(): void {
  for (const p of running) killGroup(p.pid, "SIGKILL");
  running.clear();
}

/** PIDs whose process group is `pgid`, read from /proc. */
export function groupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // comm may hold spaces and parentheses; fields resume after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z" && Number(fields[2]) === pgid) pids.push(Number(entry.name));
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

/**
 * A memory field of `/proc/PID/status`. RssFile is mostly the Deno binary's
 * pages (shared with every other Deno process, but counted in VmRSS);
 * RssAnon is the process's own heap.
 */
export type MemoryField = "VmRSS" | "VmHWM" | "RssAnon" | "RssFile";

/** A `/proc/PID/status` field in kB, or 0 when unavailable. */
export function statusKb(pid: number, field: MemoryField): number {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Sum of a memory field over every process in the group, in MB. */
export function groupMemoryMb(pgid: number, field: MemoryField): number {
  let kb = 0;
  for (const pid of groupMembers(pgid)) kb += statusKb(pid, field);
  return kb / 1024;
}

/** Samples the group's RSS every `intervalMs` until stopped; returns the peak in MB. */
export function sampleRss(pgid: number, intervalMs = 200): { stop(): number } {
  let peak = groupMemoryMb(pgid, "VmRSS");
  const timer = setInterval(() => {
    peak = Math.max(peak, groupMemoryMb(pgid, "VmRSS"));
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, groupMemoryMb(pgid, "VmRSS"));
    },
  };
}

/** A free TCP port on 127.0.0.1 (the OS picks it; we release it right away). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export interface ProbeOptions {
  port: number;
  host: string;
  path?: string;
  /** PEM CA to trust for an HTTPS probe; plain HTTP when absent. */
  caCert?: string;
}

/** Sends one GET and returns the status code (0 when the connection failed). */
export async function probe(options: ProbeOptions): Promise<number> {
  let conn: Deno.Conn | undefined;
  try {
    conn = options.caCert
      ? await Deno.connectTls({
        hostname: "127.0.0.1",
        port: options.port,
        caCerts: [options.caCert],
      })
      : await Deno.connect({ hostname: "127.0.0.1", port: options.port });
    const request = `GET ${
      options.path ?? "/"
    } HTTP/1.1\r\nHost: ${options.host}\r\nConnection: close\r\n\r\n`;
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(64);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  } finally {
    try {
      conn?.close();
    } catch {
      // Closed by the peer already.
    }
  }
}

/**
 * Waits until a probe gets `expect`, or the process exits, or `timeoutMs`
 * passes; returns the last status seen (0 = never connected).
 */
export async function waitReady(
  proc: Proc,
  options: ProbeOptions,
  timeoutMs = 20_000,
  expect = 200,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  proc.exited.then(() => (exited = true));
  let status = 0;
  let answeringSince = 0;
  while (Date.now() < deadline && !exited) {
    status = await probe(options);
    if (status === expect) return status;
    // A server that answers, but not with `expect`, is up: give a reload 2 s, then report.
    if (status !== 0) {
      answeringSince ||= Date.now();
      if (Date.now() - answeringSince > 2000) break;
    }
    await sleep(status === 0 ? 50 : 200);
  }
  return status;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs a command to completion and returns its stdout (stderr folded in on failure). */
export async function run(
  cmd: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<
  { code: number; stdout: string; stderr: string }
> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: options.env,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The last `lines` lines of a log file, for error messages. */
export function logTail(file: string, lines = 15): string {
  try {
    return Deno.readTextFileSync(file).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Clock ticks per second of the `/proc/PID/stat` CPU fields (`getconf CLK_TCK`; 100 on Linux). */
let clockTicks = 0;
function ticksPerSecond(): number {
  if (!clockTicks) {
    try {
      const out = new Deno.Command("getconf", {
        args: ["CLK_TCK"],
        stdout: "piped",
        stderr: "null",
      })
        .outputSync();
      clockTicks = Number(new TextDecoder().decode(out.stdout).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * utime + stime + cutime + cstime, in clock ticks, from the text of a
 * `/proc/PID/stat` (fields 14–17; `comm` may hold spaces, so fields are
 * counted after its closing parenthesis).
 */
export function statCpuTicks(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // f[0] is field 3 (state), so field N is f[N - 3].
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}

/**
 * CPU seconds used so far by every process of the group (all threads, and
 * children they reaped), for CPU per request: read before and after a round.
 */
export function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  for (const pid of groupMembers(pgid)) {
    try {
      ticks += statCpuTicks(Deno.readTextFileSync(`/proc/${pid}/stat`));
    } catch {
      // Exited while we looked.
    }
  }
  return ticks / ticksPerSecond();
}

/** CPU ticks per thread (`pid/tid comm` → ticks) of every process in the group. */
export function groupThreadTicks(pgid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of groupMembers(pgid)) {
    try {
      for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
        const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        out.set(`${pid}/${t.name} ${comm}`, Number(f[11]) + Number(f[12]));
      }
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

/**
 * Established TCP connections whose local port is `port`, per process of the
 * group (matched through the socket inodes in `/proc/PID/fd`). Threads of
 * one process share their descriptors, so this tells processes apart only.
 */
export function connectionsPerProcess(pgid: number, port: number): Map<number, number> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] local address:port, f[3] state (01 = ESTABLISHED), f[9] inode.
      if (f.length > 9 && f[3] === "01" && f[1].endsWith(`:${hexPort}`)) inodes.add(f[9]);
    }
  }
  const out = new Map<number, number>();
  for (const pid of groupMembers(pgid)) {
    let n = 0;
    try {
      for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
        try {
          const m = Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`).match(/^socket:\[(\d+)\]$/);
          if (m && inodes.has(m[1])) n++;
        } catch {
          // Closed while we looked.
        }
      }
    } catch {
      continue;
    }
    out.set(pid, n);
  }
  return out;
}
