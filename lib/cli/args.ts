/**
 * Command-line parsing: a command word and `--key=value` / `--key value`
 * flags, with Traefik's dotted keys kept as written.
 *
 * @module
 */

export interface ParsedArgs {
  command: string;
  flags: Map<string, string>;
  positional: string[];
}

const BOOLEAN_FLAGS = new Set(["help", "h", "keep", "dry-run", "dryRun"]);

export function parseArgs(argv: string[]): ParsedArgs {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("-")) {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    if (eq !== -1) {
      flags.set(body.slice(0, eq), body.slice(eq + 1));
    } else if (BOOLEAN_FLAGS.has(body) || i + 1 >= argv.length || argv[i + 1].startsWith("-")) {
      flags.set(body, "true");
    } else {
      flags.set(body, argv[++i]);
    }
  }
  const command = positional.length ? positional.shift()! : "serve";
  return { command, flags, positional };
}
