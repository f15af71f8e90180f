/**
 * One header field line (RFC 9112 §5), read the same way for requests and
 * upstream responses: a token name straight before the colon, optional
 * whitespace, a value of visible bytes, HTAB, SP or obs-text. Pure.
 *
 * @module
 */

const LF = 10, SP = 32, HTAB = 9, COLON = 58;

/** RFC 9110 tchar, as a lookup table. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

/** A latin1 string of `buf[from, to)`. Header bytes are octets, not UTF-8. */
export function latin1(buf: Uint8Array, from: number, to: number): string {
  if (to - from < 64) {
    let s = "";
    for (let i = from; i < to; i++) s += String.fromCharCode(buf[i]);
    return s;
  }
  return String.fromCharCode.apply(null, buf.subarray(from, to) as unknown as number[]);
}

/**
 * Where {@linkcode readFieldLine} puts its result; reused, so no object per
 * header. `valueStart`/`valueEnd` locate the trimmed value in the buffer.
 */
export const field = { name: "", value: "", valueStart: 0, valueEnd: 0, next: 0 };

/**
 * Reads the field line starting at `ls` (its CRLF is known to exist: the
 * head's end was found first). Fills {@linkcode field} (the value only when
 * `decodeValue`) and returns
 * undefined, or returns why the line is refused. A bare CR stays inside
 * the value and is refused as an invalid byte.
 */
export function readFieldLine(buf: Uint8Array, ls: number, decodeValue = true): string | undefined {
  let le = ls;
  while (buf[le] !== LF) le++;
  le--;
  const first = buf[ls];
  if (first === SP || first === HTAB) return "obsolete line folding";
  let c = ls;
  let upper = false;
  while (c < le && TCHAR[buf[c]]) {
    if (buf[c] >= 65 && buf[c] <= 90) upper = true;
    c++;
  }
  if (c === ls || c >= le || buf[c] !== COLON) {
    return c < le && (buf[c] === SP || buf[c] === HTAB) ? "whitespace before header colon" : "invalid header line";
  }
  let vs = c + 1, ve = le;
  while (vs < ve && (buf[vs] === SP || buf[vs] === HTAB)) vs++;
  while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
  for (let k = vs; k < ve; k++) {
    const b = buf[k];
    if ((b < 32 && b !== HTAB) || b === 127) return "invalid byte in header value";
  }
  const name = latin1(buf, ls, c);
  field.name = upper ? name.toLowerCase() : name;
  // A caller that copies lines as bytes decodes only the values it reads.
  field.value = decodeValue ? latin1(buf, vs, ve) : "";
  field.valueStart = vs;
  field.valueEnd = ve;
  field.next = le + 2;
  return undefined;
}
