/**
 * Text that must be UTF-8 (a request body, a config file): where it is not. Decoded leniently, a
 * bad byte becomes U+FFFD, and a path, a token or a reason means something else than was sent.
 */

/**
 * Where the first byte that is no part of valid UTF-8 is, in bytes that are not valid UTF-8. The
 * lenient decoder writes one U+FFFD per bad sequence and re-encodes everything before the first
 * one unchanged; a U+FFFD the client really sent (EF BF BD) is passed over.
 */
export function firstInvalidUtf8Byte(bytes: Buffer): number {
  const text = bytes.toString('utf8');
  let offset = 0;
  let from = 0;
  for (let at = text.indexOf('\uFFFD'); at !== -1; at = text.indexOf('\uFFFD', at + 1)) {
    offset += Buffer.byteLength(text.slice(from, at));
    if (!bytes.subarray(offset, offset + 3).equals(REPLACEMENT_CHARACTER)) return offset;
    offset += REPLACEMENT_CHARACTER.length;
    from = at + 1;
  }
  return bytes.length;
}

const REPLACEMENT_CHARACTER = Buffer.from('\uFFFD');
