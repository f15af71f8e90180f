/**
 * The `exec` DNS-01 provider: runs a program of the operator's, as lego's
 * provider of that name does:
 *
 * - `EXEC_PATH present <fqdn> <value>` and `EXEC_PATH cleanup <fqdn> <value>`;
 * - with `EXEC_MODE=RAW`: `EXEC_PATH present -- <domain> <token> <keyAuth>`.
 *
 * Exit code 0 is success; otherwise the error carries the code and the
 * end of the program's output. The program inherits Portico's environment.
 * `EXEC_PROPAGATION_TIMEOUT` (60 s), `EXEC_POLLING_INTERVAL` (2 s). A run
 * is stopped after `EXEC_TIMEOUT` (a Portico addition, default 2 min), so a
 * hung script cannot hold an order forever.
 *
 * @module
 */

import type { Credentials } from "./credentials.ts";
import { excerpt } from "./http_api.ts";
import { DnsConfigError, type DnsProvider, DnsProviderError, type TxtRecord } from "./types.ts";

/** Settings of {@linkcode ExecProvider}. */
export interface ExecOptions {
  path: string;
  raw: boolean;
  propagationTimeoutMs: number;
  pollingIntervalMs: number;
  timeoutMs: number;
}

/** The provider, from lego's variables. */
export function execFromCredentials(c: Credentials): ExecProvider {
  const path = c.get("EXEC_PATH");
  c.requireAll("exec", path ? [] : ["EXEC_PATH"]);
  const mode = (c.get("EXEC_MODE") ?? "").toUpperCase();
  if (mode !== "" && mode !== "RAW") {
    throw new DnsConfigError(`${c.where}: EXEC_MODE must be empty or RAW`);
  }
  return new ExecProvider({
    path: path!,
    raw: mode === "RAW",
    propagationTimeoutMs: c.duration("EXEC_PROPAGATION_TIMEOUT", 60_000),
    pollingIntervalMs: c.duration("EXEC_POLLING_INTERVAL", 2_000),
    timeoutMs: c.duration("EXEC_TIMEOUT", 120_000),
  });
}

export class ExecProvider implements DnsProvider {
  readonly name = "exec";
  readonly propagationTimeoutMs: number;
  readonly pollingIntervalMs: number;

  constructor(private readonly options: ExecOptions) {
    this.propagationTimeoutMs = options.propagationTimeoutMs;
    this.pollingIntervalMs = options.pollingIntervalMs;
  }

  async #run(action: "present" | "cleanup", record: TxtRecord): Promise<void> {
    const args = this.options.raw
      ? [action, "--", record.domain.replace(/^\*\./, ""), record.token, record.keyAuthorization]
      : [action, record.fqdn, record.value];
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(this.options.path, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      throw new DnsProviderError(
        this.name,
        `cannot run EXEC_PATH "${this.options.path}": ${(err as Error).message}`,
      );
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
    }, this.options.timeoutMs);
    const out = await child.output().finally(() => clearTimeout(timer));
    if (out.success) return;
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new DnsProviderError(
      this.name,
      `"${this.options.path} ${action}" ${
        out.signal ? `was stopped by ${out.signal}` : `exited with code ${out.code}`
      }${text.trim() ? `: ${excerpt(text.slice(-600))}` : ""}`,
      out.code,
    );
  }

  async present(record: TxtRecord): Promise<undefined> {
    await this.#run("present", record);
    return undefined;
  }

  async cleanUp(record: TxtRecord): Promise<void> {
    await this.#run("cleanup", record);
  }
}
