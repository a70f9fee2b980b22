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
