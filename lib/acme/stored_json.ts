/**
 * Decoding JSON values the ACME layer stored in the KV (journal entries,
 * retry states): errors name the key and the field. Pure.
 *
 * @module
 */

/**
 * A stored JSON object and a checker for its fields; both throw naming
 * `where` (the key) and, for a field, the field.
 */
export function storedObject(where: string, text: string): {
  v: Record<string, unknown>;
  need: (field: string, ok: boolean) => void;
} {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${where}: not valid JSON`);
  }
  if (typeof v !== "object" || v === null) throw new Error(`${where}: expected an object`);
  const need = (field: string, ok: boolean) => {
    if (!ok) throw new Error(`${where}: field "${field}" is missing or of the wrong type`);
  };
  return { v, need };
}
