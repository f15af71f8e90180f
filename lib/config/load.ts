/**
 * The I/O shell around the validators: reads TOML files and directories,
 * turns read and syntax errors into {@linkcode ConfigError}s that name the
 * file (and line and column), and merges a directory of dynamic files,
 * refusing names defined twice.
 *
 * @module
 */

import { parse, TomlError } from "smol-toml";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { validateStatic, type ValidateStaticOptions } from "./static.ts";
import { emptyDynamicConfig, validateDynamic } from "./dynamic.ts";
import type { DynamicConfig, StaticConfig } from "./types.ts";

/** Static file names looked for in the working directory, in order. */
export const STATIC_FILE_NAMES = ["portico.toml", "traefik.toml"] as const;

/**
 * Parses TOML text. A syntax error becomes a {@linkcode ConfigError} naming
 * `source`, the line and the column.
 *
 * @example
 * ```ts
 * parseToml("a = \n", "x.toml"); // throws: x.toml: line 1, column 4: invalid TOML: invalid value
 * ```
 */
export function parseToml(text: string, source: string): Record<string, unknown> {
  try {
    return parse(text) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) {
      // smol-toml's message repeats the position and adds a code excerpt; keep the reason only.
      const reason = error.message.split("\n")[0].replace(/^Invalid TOML document:\s*/, "");
      throw new ConfigError([{
        source,
        path: "",
        message: `line ${error.line}, column ${error.column}: invalid TOML: ${reason}`,
      }]);
    }
    throw error;
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError([{ source: path, path: "", message: describeReadError(error) }]);
  }
}

function describeReadError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "file not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied reading the file";
  if (error instanceof Deno.errors.IsADirectory) return "expected a file, found a directory";
  return `cannot read: ${error instanceof Error ? error.message : String(error)}`;
}

/**
 * Reads, parses and validates a static configuration file.
 *
 * @example
 * ```ts
 * const config = await loadStaticFile("portico.toml");
 * ```
 */
export async function loadStaticFile(
  path: string,
  options: ValidateStaticOptions & {
    /** Rewrites the raw tree before validation (command-line and environment overrides). */
    transform?: (raw: Record<string, unknown>) => Record<string, unknown>;
  } = {},
): Promise<StaticConfig> {
  const text = await readText(path);
  const raw = parseToml(text, path);
  return validateStatic(options.transform ? options.transform(raw) : raw, path, options);
}

/**
 * The static file to use: `explicit` when given (even if it does not exist,
 * so loading it reports the missing file), else `./portico.toml`, else
 * `./traefik.toml`, else undefined.
 */
export async function findStaticConfigFile(explicit?: string): Promise<string | undefined> {
  if (explicit !== undefined && explicit !== "") return explicit;
  for (const name of STATIC_FILE_NAMES) {
    try {
      if ((await Deno.stat(name)).isFile) return name;
    } catch {
      // Absent or unreadable: try the next name.
    }
  }
  return undefined;
}

/** Reads, parses and validates one dynamic configuration file. An empty file is an empty config. */
export async function loadDynamicFile(path: string): Promise<DynamicConfig> {
  const text = await readText(path);
  return validateDynamic(parseToml(text, path), path);
}

/** Every `*.toml` file under `dir`, recursively (as Traefik's file provider reads), sorted. */
export async function listTomlFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (current: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(current));
    } catch (error) {
      const message = error instanceof Deno.errors.NotFound
        ? "directory not found"
        : error instanceof Deno.errors.NotADirectory
        ? "expected a directory, found a file"
        : describeReadError(error);
      throw new ConfigError([{ source: current, path: "", message }]);
    }
    for (const entry of entries) {
      const path = `${current.replace(/\/+$/, "")}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if ((entry.isFile || entry.isSymlink) && entry.name.endsWith(".toml")) files.push(path);
    }
  };
  await walk(dir);
  return files.sort();
}

/**
 * Reads and validates every `*.toml` file in `dir` (sorted, subdirectories
 * included) and merges them. Every file's issues are reported together. A
 * router, service, middleware, TLS option or TLS store defined in two files
 * is an error naming both.
 */
export async function loadDynamicDirectory(dir: string): Promise<DynamicConfig> {
  const files = await listTomlFiles(dir);
  const parts: { source: string; config: DynamicConfig }[] = [];
  const issues: ConfigIssue[] = [];
  for (const file of files) {
    try {
      parts.push({ source: file, config: await loadDynamicFile(file) });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...error.issues);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return mergeDynamicConfigs(parts);
}

/**
 * Merges dynamic configurations from several sources of one provider.
 * Throws a {@linkcode ConfigError} when a name is defined in more than one.
 */
export function mergeDynamicConfigs(
  parts: readonly { source: string; config: DynamicConfig }[],
): DynamicConfig {
  const merged = emptyDynamicConfig();
  const issues: ConfigIssue[] = [];
  const origin = new Map<string, string>();
  const take = <T>(
    section: string,
    from: Record<string, T>,
    into: Record<string, T>,
    source: string,
  ) => {
    for (const [name, value] of Object.entries(from)) {
      const key = `${section}.${name}`;
      const first = origin.get(key);
      if (first !== undefined) {
        issues.push({ source, path: key, message: `already defined in ${first}` });
        continue;
      }
      origin.set(key, source);
      into[name] = value;
    }
  };
  for (const { source, config } of parts) {
    take("http.routers", config.http.routers, merged.http.routers, source);
    take("http.services", config.http.services, merged.http.services, source);
    take("http.middlewares", config.http.middlewares, merged.http.middlewares, source);
    take("http.serversTransports", config.http.serversTransports, merged.http.serversTransports, source);
    const tcp = config.tcp, into = merged.tcp!;
    if (tcp) {
      take("tcp.routers", tcp.routers, into.routers, source);
      take("tcp.services", tcp.services, into.services, source);
      take("tcp.middlewares", tcp.middlewares, into.middlewares, source);
      take("tcp.serversTransports", tcp.serversTransports, into.serversTransports, source);
    }
    take("tls.options", config.tls.options, merged.tls.options, source);
    take("tls.stores", config.tls.stores, merged.tls.stores, source);
    merged.tls.certificates.push(...config.tls.certificates);
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return merged;
}

/**
 * Loads what a `[providers.file]` section points at: one file or a directory.
 */
export function loadFileProviderConfig(
  provider: { filename?: string; directory?: string },
): Promise<DynamicConfig> {
  if (provider.filename !== undefined) return loadDynamicFile(provider.filename);
  if (provider.directory !== undefined) return loadDynamicDirectory(provider.directory);
  return Promise.resolve(emptyDynamicConfig());
}
