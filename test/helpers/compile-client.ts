// Compiles a generated client and the program written against it, strictly, as a user's
// TypeScript project would: the generated-client tests use it to hold the contract's types to
// real use (a call that should type-check does; a misuse does not).

import * as path from 'node:path';
import ts from 'typescript';

/** Compiles `entry` (and what it imports) in its directory; returns the diagnostics as text (none: it compiled and was emitted). */
export function compileClient(directory: string, entry = 'client.ts', options: ts.CompilerOptions = {}): string[] {
  const compilerOptions: ts.CompilerOptions = {
    strict: true,
    noUnusedLocals: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    types: [],
    skipLibCheck: true,
    outDir: directory,
    ...options,
  };
  const program = ts.createProgram([path.join(directory, entry)], compilerOptions);
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...program.emit().diagnostics];
  return diagnostics.map((d) => `${d.file ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}
