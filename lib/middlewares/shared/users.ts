/**
 * Reads the user lines of `basicAuth` and `digestAuth`: the lines of
 * `usersFile` followed by the inline `users` list (so, as in Traefik, an
 * inline user replaces a same-name user of the file), each remembered with
 * where it came from so a bad line can be reported by file and line number.
 *
 * @module
 */

import type { OptionReader } from "../options.ts";

/** One credentials line and its origin, for error messages. */
export interface UserLine {
  text: string;
  /** e.g. `users[1]` or `usersFile "/etc/htpasswd" line 3`. */
  where: string;
}

/**
 * The non-empty, non-comment lines of `usersFile`, then the `users` entries.
 * Throws (via `o.fail`) when the file cannot be read or no user is given.
 */
export function readUserLines(o: OptionReader): UserLine[] {
  const lines: UserLine[] = [];
  const file = o.string("usersFile", { default: "" });
  if (file !== "") {
    let content: string;
    try {
      content = Deno.readTextFileSync(file);
    } catch (err) {
      return o.fail("usersFile", `cannot read ${JSON.stringify(file)}: ${(err as Error).message}`);
    }
    content.split(/\r?\n/).forEach((raw, i) => {
      const text = raw.trim();
      if (text === "" || text.startsWith("#")) return;
      lines.push({ text, where: `usersFile ${JSON.stringify(file)} line ${i + 1}` });
    });
  }
  o.stringList("users", { default: [] }).forEach((text, i) => {
    lines.push({ text: text.trim(), where: `users[${i}]` });
  });
  if (lines.length === 0) o.fail("users", 'no users given: set users = ["name:hash"] or usersFile');
  return lines;
}
