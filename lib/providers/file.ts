/**
 * The file provider: dynamic config from one TOML file or every TOML file in
 * a directory, reloaded when they change.
 *
 * @module
 */

import { loadDynamicDirectory, loadDynamicFile } from "../config/load.ts";
import type { DynamicConfig } from "../config/types.ts";
import type { Provider, ProviderListener } from "./types.ts";

export interface FileProviderOptions {
  filename?: string;
  directory?: string;
  watch: boolean;
  /**
   * Quiet period after the last file event before the files are read, in ms:
   * editors write in several steps, and a file read mid-write is not the
   * user's config. (Throttling and dedupe of configs happen downstream.)
   */
  settleMs?: number;
}

export class FileProvider implements Provider {
  readonly name = "file";
  private watcher?: Deno.FsWatcher;
  private timer?: ReturnType<typeof setTimeout>;

  constructor(private readonly options: FileProviderOptions) {
    if (!options.filename === !options.directory) {
      throw new Error("providers.file: set exactly one of filename or directory");
    }
  }

  private async read(): Promise<DynamicConfig> {
    return this.options.filename
      ? await loadDynamicFile(this.options.filename)
      : await loadDynamicDirectory(this.options.directory!);
  }

  private async emit(listener: ProviderListener): Promise<void> {
    try {
      listener.onConfig(this.name, await this.read());
    } catch (err) {
      listener.onError(this.name, err as Error);
    }
  }

  async start(listener: ProviderListener): Promise<void> {
    await this.emit(listener);
    if (!this.options.watch) return;
    // Watch the directory holding the file: editors often replace the file
    // (rename over it), which a watch on the file itself would lose.
    const target = this.options.directory ?? dirname(this.options.filename!);
    this.watcher = Deno.watchFs(target, { recursive: false });
    const settle = this.options.settleMs ?? 100;
    (async () => {
      try {
        for await (const event of this.watcher!) {
          if (this.options.filename && !event.paths.some((p) => sameFile(p, this.options.filename!))) continue;
          clearTimeout(this.timer);
          this.timer = setTimeout(() => this.emit(listener), settle);
        }
      } catch {
        // The watcher was closed.
      }
    })();
  }

  stop(): Promise<void> {
    clearTimeout(this.timer);
    try {
      this.watcher?.close();
    } catch {
      // already closed
    }
    return Promise.resolve();
  }
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? (i === 0 ? "/" : ".") : path.slice(0, i);
}

function sameFile(eventPath: string, configured: string): boolean {
  const base = configured.slice(configured.lastIndexOf("/") + 1);
  return eventPath === configured || eventPath.endsWith("/" + base);
}
