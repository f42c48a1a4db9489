import fc from 'fast-check';
import { scanJsonNesting } from './json-depth';

const scan = (text: string, limit = 64) => scanJsonNesting(Buffer.from(text, 'utf8'), limit);

/** Reference: the nesting depth of a parsed value, recursively. */
function depthOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf));
  if (value !== null && typeof value === 'object')
    return 1 + Math.max(0, ...Object.values(value).map(depthOf));
  return 0;
}

describe('scanJsonNesting', () => {
  it.each([
    ['', 0],
    ['42', 0],
    ['"text"', 0],
    ['null', 0],
    ['{}', 1],
    ['[]', 1],
    ['[1, 2, 3]', 1],
    ['{"a": [1, {"b": []}]}', 4],
    ['[[], [[]], []]', 3],
    ['{"a":{"b":{"c":{}}},"d":[]}', 4],
  ])('%j nests %i deep', (text, depth) => {
    expect(scan(text).depth).toBe(depth);
  });

  it('does not count brackets inside strings', () => {
    expect(scan('["[[[[{{{{", "]]]]}}}}"]').depth).toBe(1);
    expect(scan('{"[[[": "{{{"}').depth).toBe(1);
    expect(scan(JSON.stringify({ k: '['.repeat(1000) })).depth).toBe(1);
  });

  it('does not end a string at an escaped quote', () => {
    // the string is  a"[[[  : the escaped quote keeps the scanner inside it
    expect(scan(String.raw`["a\"[[["]`).depth).toBe(1);
    expect(scan(String.raw`{"\"": "\"[{"}`).depth).toBe(1);
    expect(scan(JSON.stringify(['"'.repeat(50) + '[['])).depth).toBe(1);
  });

  it('ends a string after an escaped backslash', () => {
    // the string is  a\  and the brackets after it are structure
    expect(scan(String.raw`["a\\", [[]]]`).depth).toBe(3);
    expect(scan(String.raw`["\\\\", ["\\"]]`).depth).toBe(2);
  });

  it('skips other escapes (\\uXXXX, \\n) without losing its place', () => {
    expect(scan(String.raw`["\u005b\u005b\n", ["\u0022"]]`).depth).toBe(2);
  });

  it('handles multi-byte UTF-8 in strings and keys', () => {
    expect(scan('{"ключ": ["日本語 [", {"emoji 😀": "]]"}]}').depth).toBe(3);
  });

  it('exactly at the limit: no position past it', () => {
    const text = '['.repeat(64) + ']'.repeat(64);
    expect(scan(text, 64)).toEqual({ depth: 64, firstPastLimit: -1 });
  });

  it('one past the limit: the offset of the bracket that went past it', () => {
    const text = '['.repeat(65) + ']'.repeat(65);
    expect(scan(text, 64)).toEqual({ depth: 65, firstPastLimit: 64 });
    const objects = '{"a":'.repeat(65) + '1' + '}'.repeat(65);
    expect(scan(objects, 64)).toEqual({ depth: 65, firstPastLimit: 64 * 5 });
  });

  it('reports the whole depth of a very deep body, in one pass', () => {
    const levels = 1_000_000;
    const bytes = Buffer.alloc(2 * levels, 0x5b);
    bytes.fill(0x5d, levels);
    expect(scanJsonNesting(bytes, 64)).toEqual({ depth: levels, firstPastLimit: 64 });
  });

  it('reports the first place past the limit even when a later branch is deeper', () => {
    const text = `[${'['.repeat(3)}${']'.repeat(3)}, ${'['.repeat(5)}${']'.repeat(5)}]`;
    expect(scan(text, 3)).toEqual({ depth: 6, firstPastLimit: 3 });
  });

  it('depth that goes up and down many times stays bounded', () => {
    expect(scan('[[]]'.repeat(10_000), 2)).toEqual({ depth: 2, firstPastLimit: -1 });
  });

  it('ignores unbalanced closers and an unterminated string (JSON.parse rejects those)', () => {
    expect(scan(']]]]]][[').depth).toBe(2);
    expect(scan('["abc').depth).toBe(1);
    expect(scan('"[[[[[[[[').depth).toBe(0);
  });

  it('agrees with the parsed value for any JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (value) => {
        const text = JSON.stringify(value);
        expect(scan(text, 1000).depth).toBe(depthOf(JSON.parse(text)));
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with the parsed value for JSON with unicode strings and whitespace', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 6, stringUnit: 'binary' }),
        fc.integer({ min: 0, max: 4 }),
        (value, indent) => {
          const text = JSON.stringify(value, null, indent);
          const limit = 3;
          const result = scan(text, limit);
          const depth = depthOf(JSON.parse(text));
          expect(result.depth).toBe(depth);
          expect(result.firstPastLimit >= 0).toBe(depth > limit);
        },
      ),
      { numRuns: 300 },
    );
  });
});
