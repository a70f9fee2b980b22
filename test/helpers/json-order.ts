// The documented total order of JSON values (docs/DESIGN.md, "Indexes"), written plainly as a
// reference for the index key encoding and the query model: null < false < true < numbers <
// strings (by code point) < arrays (element by element) < objects (member by member).

function rank(v: unknown): number {
  if (v === null) return 0;
  if (v === false) return 1;
  if (v === true) return 2;
  if (typeof v === 'number') return 3;
  if (typeof v === 'string') return 4;
  if (Array.isArray(v)) return 5;
  return 6;
}

function compareStrings(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return Math.sign(x.length - y.length);
}

export function compareJson(a: unknown, b: unknown): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  if (ra === 3) return a === b ? 0 : (a as number) < (b as number) ? -1 : 1;
  if (ra === 4) return compareStrings(a as string, b as string);
  if (ra === 5) {
    const x = a as unknown[];
    const y = b as unknown[];
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const c = compareJson(x[i], y[i]);
      if (c !== 0) return c;
    }
    return Math.sign(x.length - y.length);
  }
  if (ra === 6) {
    const x = Object.entries(a as object);
    const y = Object.entries(b as object);
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const c = compareStrings(x[i]![0], y[i]![0]) || compareJson(x[i]![1], y[i]![1]);
      if (c !== 0) return c;
    }
    return Math.sign(x.length - y.length);
  }
  return 0;
}
