/**
 * A small subset of Go's `http.DetectContentType` (the WHATWG sniffing
 * table): HTML, XML, PDF, common images, archives, fonts, then text versus
 * binary. A pure function over the first bytes of a body.
 *
 * @module
 */

const HTML_TAGS = [
  "<!DOCTYPE HTML",
  "<HTML",
  "<HEAD",
  "<SCRIPT",
  "<IFRAME",
  "<H1",
  "<DIV",
  "<FONT",
  "<TABLE",
  "<A",
  "<STYLE",
  "<TITLE",
  "<B",
  "<BODY",
  "<BR",
  "<P",
  "<!--",
];

const MAGIC: [number[] | string, string, number?][] = [
  ["%PDF-", "application/pdf"],
  ["%!PS-Adobe-", "application/postscript"],
  [[0xfe, 0xff], "text/plain; charset=utf-16be"],
  [[0xff, 0xfe], "text/plain; charset=utf-16le"],
  [[0xef, 0xbb, 0xbf], "text/plain; charset=utf-8"],
  ["GIF87a", "image/gif"],
  ["GIF89a", "image/gif"],
  [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "image/png"],
  [[0xff, 0xd8, 0xff], "image/jpeg"],
  ["BM", "image/bmp"],
  [[0x00, 0x00, 0x01, 0x00], "image/x-icon"],
  ["OggS\x00", "application/ogg"],
  ["ID3", "audio/mpeg"],
  [[0x1f, 0x8b, 0x08], "application/x-gzip"],
  ["PK\x03\x04", "application/zip"],
  ["Rar!\x1a\x07", "application/x-rar-compressed"],
  ["\x00asm", "application/wasm"],
  ["wOFF", "font/woff"],
  ["wOF2", "font/woff2"],
];

function startsWith(data: Uint8Array, sig: number[] | string, at = 0): boolean {
  const bytes = typeof sig === "string" ? [...sig].map((c) => c.charCodeAt(0)) : sig;
  if (data.length < at + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (data[at + i] !== bytes[i]) return false;
  return true;
}

const isWs = (b: number) => b === 0x09 || b === 0x0a || b === 0x0c || b === 0x0d || b === 0x20;

/**
 * The media type of a body from its first (up to 512) bytes.
 *
 * @example
 * ```ts
 * sniffContentType(new TextEncoder().encode("<html><body>hi")); // "text/html; charset=utf-8"
 * ```
 */
export function sniffContentType(data: Uint8Array): string {
  data = data.subarray(0, 512);
  for (const [sig, type] of MAGIC) if (startsWith(data, sig)) return type;
  if (startsWith(data, "RIFF") && startsWith(data, "WEBPVP", 8)) return "image/webp";
  if (startsWith(data, "ftyp", 4)) return "video/mp4";
  let i = 0;
  while (i < data.length && isWs(data[i])) i++;
  const rest = data.subarray(i);
  const upper = new TextDecoder().decode(rest.subarray(0, 16)).toUpperCase();
  for (const tag of HTML_TAGS) {
    if (!upper.startsWith(tag)) continue;
    const next = rest[tag.length];
    if (tag === "<!--" || next === 0x20 || next === 0x3e) return "text/html; charset=utf-8";
  }
  if (upper.startsWith("<?XML")) return "text/xml; charset=utf-8";
  for (const b of data) {
    if (b <= 0x08 || b === 0x0b || (b >= 0x0e && b <= 0x1a) || (b >= 0x1c && b <= 0x1f)) {
      return "application/octet-stream";
    }
  }
  return "text/plain; charset=utf-8";
}
