/**
 * Structured logging: one line per event, as text or JSON, with the level,
 * time and module. Values of fields whose names look secret are masked, so a
 * password passed by mistake never reaches the log.
 *
 * @module
 */

export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";
const ORDER: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40 };

const SECRET_FIELD = /pass(word)?|secret|token|private|key$|authorization|credential/i;

export interface LoggerOptions {
  level: LogLevel;
  format: "common" | "json";
  /** Where lines go; defaults to stderr. */
  write?: (line: string) => void;
}

export type Fields = Record<string, unknown>;

function mask(fields: Fields | undefined): Fields | undefined {
  if (!fields) return undefined;
  const out: Fields = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = SECRET_FIELD.test(k) && v !== undefined && v !== "" ? "***" : v instanceof Error ? v.message : v;
  }
  return out;
}

const encoder = new TextEncoder();
const stderrWrite = (line: string) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/** A writer appending lines to `path` (created with mode 0640), for `[log] filePath`. */
export function fileWriter(path: string): (line: string) => void {
  const file = Deno.openSync(path, { append: true, create: true, mode: 0o640 });
  return (line: string) => {
    const bytes = encoder.encode(line + "\n");
    for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
  };
}

/**
 * @example
 * ```ts
 * const log = new Logger({ level: "INFO", format: "json" }).child("router");
 * log.info("config applied", { generation: 3 });
 * ```
 */
export class Logger {
  private readonly write: (line: string) => void;
  constructor(private readonly options: LoggerOptions, private readonly module = "portico") {
    this.write = options.write ?? stderrWrite;
  }

  child(module: string): Logger {
    return new Logger({ ...this.options, write: this.write }, module);
  }

  /** Writes a line another isolate's logger already formatted (and masked). */
  writeLine(line: string): void {
    this.write(line);
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= ORDER[this.options.level];
  }

  log(level: LogLevel, message: string, fields?: Fields): void {
    if (!this.enabled(level)) return;
    const time = new Date().toISOString();
    const masked = mask(fields);
    if (this.options.format === "json") {
      this.write(JSON.stringify({ level: level.toLowerCase(), time, module: this.module, msg: message, ...masked }));
    } else {
      const extra = masked
        ? Object.entries(masked).map(([k, v]) => ` ${k}=${typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v)}`).join("")
        : "";
      this.write(`${time} ${level} [${this.module}] ${message}${extra}`);
    }
  }

  debug(message: string, fields?: Fields): void {
    this.log("DEBUG", message, fields);
  }
  info(message: string, fields?: Fields): void {
    this.log("INFO", message, fields);
  }
  warn(message: string, fields?: Fields): void {
    this.log("WARN", message, fields);
  }
  error(message: string, fields?: Fields): void {
    this.log("ERROR", message, fields);
  }
}

/**
 * A warning for something that keeps failing (an exporter whose receiver is
 * down): logged at most once per `intervalMs`, so a steady outage is one
 * line every so often, not one per attempt.
 */
export function warnAtMostEvery(log: Logger, intervalMs: number, message: string): (error: string) => void {
  let last = -Infinity;
  return (error) => {
    const now = performance.now();
    if (now - last < intervalMs) return;
    last = now;
    log.warn(message, { error });
  };
}
