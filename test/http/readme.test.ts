// The README's curl tour, run against a live server, so the README cannot drift from the code.
// The tour is the part of README.md between `<!-- tour -->` and `<!-- /tour -->`: each command
// starts with `curl ` or `printf ` (continued with a trailing backslash) and is followed at once
// by the output it prints, as `# ` lines; a blank line ends the output (`# ` lines after one are
// prose). Output must match exactly, except that `…` stands for any
// text (generated ids, parser messages). 127.0.0.1:8080 is replaced by the test server's address.
// The configuration table must name every flag and environment variable server/config.ts has.

import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { buildApp } from '../../server/app.js';
import { DEFAULTS, SETTINGS } from '../../server/config.js';

const run = promisify(execFile);
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

interface Step {
  readonly command: string;
  readonly expected: string;
}

function tourSteps(text: string): Step[] {
  const start = text.indexOf('<!-- tour -->');
  const end = text.indexOf('<!-- /tour -->');
  if (start < 0 || end < start) throw new Error('README.md has no <!-- tour --> ... <!-- /tour --> section');
  const steps: { command: string[]; expected: string[] }[] = [];
  let continued = false;
  let output = false;
  for (const line of text.slice(start, end).split('\n')) {
    if (continued) {
      steps.at(-1)!.command.push(line);
      continued = line.endsWith('\\');
      output = !continued;
    } else if (/^(curl|printf) /.test(line)) {
      steps.push({ command: [line], expected: [] });
      continued = line.endsWith('\\');
      output = !continued;
    } else if (output && line.startsWith('# ')) {
      steps.at(-1)!.expected.push(line.slice(2));
    } else {
      output = false;
    }
  }
  return steps.map((s) => ({ command: s.command.join('\n'), expected: s.expected.join('\n') }));
}

function pattern(expected: string): RegExp {
  const escaped = expected.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('[^]*?')}$`);
}

t.test('the README curl tour prints what the README says', async (t) => {
  const steps = tourSteps(README);
  t.ok(steps.length >= 12, `the tour has ${steps.length} commands`);
  const app = await buildApp({ config: { dataDirectory: t.testdir() } });
  t.teardown(() => app.close());
  await app.docket.opened;
  const address = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('http://', '');
  for (const step of steps) {
    const command = step.command.replaceAll('127.0.0.1:8080', address);
    const { stdout } = await run('bash', ['-c', `set -o pipefail; ${command}`]);
    t.match(stdout.replace(/\n$/, ''), pattern(step.expected), step.command);
  }
});

t.test('the README configuration table lists every setting with its default', async (t) => {
  for (const setting of SETTINGS) {
    const row = README.split('\n').find((line) => line.startsWith(`| \`${setting.flag}\``));
    t.ok(row, `README has a row for ${setting.flag}`);
    t.match(row ?? '', setting.environment, `${setting.flag} row names ${setting.environment}`);
    t.match(row ?? '', DEFAULTS[setting.key] === '' ? 'none' : String(DEFAULTS[setting.key]), `${setting.flag} row gives the default`);
  }
});
