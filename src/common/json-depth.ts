/** What {@link scanJsonNesting} found. */
export interface JsonNesting {
  /** The deepest nesting of objects and arrays (0 for a scalar or an empty body). */
  depth: number;
  /** Byte offset of the first `{` or `[` that went deeper than the limit; `-1` when none did. */
  firstPastLimit: number;
}

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const OPEN_BRACE = 0x7b; // {
const OPEN_BRACKET = 0x5b; // [
const CLOSE_BRACE = 0x7d; // }
const CLOSE_BRACKET = 0x5d; // ]

/**
 * How deeply a JSON text nests objects and arrays, from its UTF-8 bytes, without parsing it: one pass, constant
 * memory, no recursion. String contents are skipped (a backslash escapes the next byte, so `\"` does not end a
 * string); in UTF-8 the structural characters never occur inside a multi-byte sequence, so scanning bytes is exact.
 *
 * For valid JSON the result is exact. For invalid JSON it never exceeds what `JSON.parse` could build before it
 * fails: up to the first error the two read the same strings and brackets. Unbalanced closers are ignored (the
 * parser reports them).
 */
export function scanJsonNesting(bytes: Uint8Array, limit: number): JsonNesting {
  let depth = 0;
  let deepest = 0;
  let firstPastLimit = -1;
  let inString = false;
  const length = bytes.length;
  for (let i = 0; i < length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (depth > limit && firstPastLimit < 0) firstPastLimit = i;
      }
    } else if ((b === CLOSE_BRACE || b === CLOSE_BRACKET) && depth > 0) {
      depth--;
    }
  }
  return { depth: deepest, firstPastLimit };
}
