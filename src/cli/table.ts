/** A plain-text table: header, then rows; columns padded to their widest cell; `right[i]` right-aligns column i. */
export function formatTable(header: string[], rows: string[][], right: boolean[] = []): string {
  const clean = (s: string): string => s.replace(/\s+/g, ' ');
  const all = [header, ...rows.map((r) => r.map(clean))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((cell, i) => (right[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
