// Compiles a generated client and the program written against it, strictly, as a user's
// TypeScript project would: the generated-client tests use it to hold the contract's types to
// real use (a call that should type-check does; a misuse does not).

import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Test } from 'tap';
import ts from 'typescript';
import { buildApp } from '../../server/app.js';

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

/**
 * Starts a server on 127.0.0.1 with its data under `directory`, closed with the test, and runs
 * the compiled program's `run(baseUrl)` against it: what the program saw, for the test to check.
 */
export async function runCompiledClient(t: Test, directory: string): Promise<Record<string, any>> {
  const app = await buildApp({ config: { dataDirectory: path.join(directory, 'data') } });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  await app.docket.opened;
  const { port } = app.server.address() as AddressInfo;
  const program = (await import(pathToFileURL(path.join(directory, 'client.js')).href)) as { run(baseUrl: string): Promise<Record<string, any>> };
  return program.run(`http://127.0.0.1:${port}`);
}
