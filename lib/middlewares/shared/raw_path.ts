/**
 * Splitting a request target as the path middlewares need it: they rewrite
 * the path and leave the query exactly as received.
 *
 * @module
 */

/** Splits `pathAndQuery` into the path and the query including its `?` (or ""). */
export function splitPathQuery(pathAndQuery: string): { path: string; query: string } {
  const q = pathAndQuery.indexOf("?");
  return q === -1
    ? { path: pathAndQuery, query: "" }
    : { path: pathAndQuery.slice(0, q), query: pathAndQuery.slice(q) };
}
