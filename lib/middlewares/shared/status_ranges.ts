/**
 * Traefik's HTTP status code blocks (`types.NewHTTPCodeRanges`), used by
 * `errors.status`, `errors.statusRewrites` and `retry.status`: "503",
 * "500-599", and lists of them. Bounds are inclusive and read as plain
 * integers, as Traefik reads them: a block such as "400-999" or one that
 * matches nothing ("599-500") loads. A comma inside a block separates
 * blocks too, the form KV stores and labels deliver. Pure.
 *
 * @module
 */

/** An inclusive range of statuses. */
export type StatusRange = readonly [number, number];

/**
 * Parses status blocks; `fail(index, message)` reports a bad block.
 *
 * @example
 * ```ts
 * parseStatusRanges(["500-599", "404"], (i, m) => { throw new Error(`${i}: ${m}`); });
 * // [[500, 599], [404, 404]]
 * ```
 */
export function parseStatusRanges(
  blocks: readonly string[],
  fail: (index: number, message: string) => never,
): StatusRange[] {
  const out: StatusRange[] = [];
  blocks.forEach((block, i) => {
    for (const item of block.split(",")) {
      const m = /^\s*(\d{1,9})\s*(?:-\s*(\d{1,9})\s*)?$/.exec(item);
      if (!m) {
        fail(
          i,
          `expected a status such as "404" or a range such as "500-599", found ${
            JSON.stringify(item)
          }`,
        );
      }
      const low = Number(m![1]);
      out.push([low, m![2] === undefined ? low : Number(m![2])]);
    }
  });
  return out;
}

/** Whether `status` is in one of `ranges`. */
export function inRanges(ranges: readonly StatusRange[], status: number): boolean {
  for (const [lo, hi] of ranges) if (status >= lo && status <= hi) return true;
  return false;
}
