// Builds a document's JSON text from its stored fields: each value is already JSON text, so a
// read concatenates and never parses or re-serialises a value.

/** `{"name":value,...}` from [name, JSON text] pairs in document order. */
export function assemble(fields: readonly (readonly [string, Buffer])[]): string {
  let text = '{';
  for (let i = 0; i < fields.length; i++) {
    const [name, value] = fields[i]!;
    if (i > 0) text += ',';
    text += JSON.stringify(name) + ':' + value.toString('utf8');
  }
  return text + '}';
}

/** `"name":` as UTF-8, made once per field (a query assembles many documents of few fields). */
const NAME_PREFIXES = new WeakMap<object, Buffer>();

/**
 * `{"name":value,...}` as UTF-8 bytes, from the fields (each an object that stands for its name,
 * kept as the key of its cached `"name":` prefix) and their JSON texts, field i's at
 * values[slots[i]]: one allocation, no string.
 */
export function assembleBytes(fields: readonly { readonly name: string }[], values: readonly (Buffer | undefined)[], slots: readonly number[], missing: (name: string) => Buffer): Buffer {
  let length = 1 + Math.max(1, fields.length);
  const prefixes: Buffer[] = new Array<Buffer>(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    let prefix = NAME_PREFIXES.get(field);
    if (prefix === undefined) NAME_PREFIXES.set(field, (prefix = Buffer.from(`${JSON.stringify(field.name)}:`, 'utf8')));
    prefixes[i] = prefix;
    length += prefix.length + (values[slots[i]!] ?? missing(field.name)).length;
  }
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  out[at++] = 0x7b; // {
  for (let i = 0; i < fields.length; i++) {
    if (i > 0) out[at++] = 0x2c; // ,
    at += prefixes[i]!.copy(out, at);
    at += values[slots[i]!]!.copy(out, at);
  }
  out[at++] = 0x7d; // }
  return at === length ? out : out.subarray(0, at);
}
