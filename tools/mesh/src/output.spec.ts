import { clip, formatTable, oneOf, printable } from './output';

describe('output helpers', () => {
  it('pads table columns to the widest cell', () => {
    expect(
      formatTable(
        ['A', 'LONG'],
        [
          ['1234', 'x'],
          ['1', 'yy'],
        ],
      ),
    ).toEqual(['A     LONG', '1234  x', '1     yy']);
  });

  it('clips long cells and escapes control characters', () => {
    expect(clip('abcdef', 4)).toBe('abc…');
    expect(clip('abc', 4)).toBe('abc');
    expect(printable('a\u001b[31mb\tc')).toBe('a\\u001b[31mb\tc');
  });

  it('lists alternatives in prose', () => {
    expect(oneOf(['a'])).toBe('a');
    expect(oneOf(['a', 'b', 'c'])).toBe('a, b or c');
  });
});
