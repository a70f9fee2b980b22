// The fast-check scaffolding the model-based tests share: run a property over random scenarios
// with shrinking bounded in time, and format a failure as a title with the seed and the path,
// the command that replays it, the test's own lines (the shrunk scenario) and the error.

import fc from 'fast-check';

export interface PropertyCheck<T> {
  readonly arbitrary: fc.Arbitrary<T>;
  /** Runs one scenario; it fails by throwing. */
  readonly run: (scenario: T) => Promise<void>;
  readonly numRuns: number;
  readonly seed: number;
  /** A counterexample path to replay (from an earlier failure's report). */
  readonly path?: string | undefined;
  /** Seconds of shrinking after the first failure (0: report the first failing case as it is). */
  readonly shrinkSeconds: number;
  /** With a path: once the replayed case passes (the bug is fixed), skip the cases after it. */
  readonly replayOnce?: boolean;
}

export interface PropertyFailure<T> {
  readonly seed: number;
  readonly path: string | null;
  readonly numShrinks: number;
  /** The shrunk scenario (undefined only if fast-check reports none). */
  readonly counterexample: T | undefined;
  readonly error: string;
}

/** Runs the property; undefined if every run passes, else the (shrunk) failing case. */
export async function checkProperty<T>({ arbitrary, run, numRuns, seed, path, shrinkSeconds, replayOnce = false }: PropertyCheck<T>): Promise<PropertyFailure<T> | undefined> {
  // Shrinking stops shrinkSeconds after the first failure (candidates then count as passing),
  // so the smallest case found so far is reported well within tap's timeout.
  let failedAt: number | undefined;
  let replayed = false;
  const property = fc.asyncProperty(arbitrary, async (scenario) => {
    if (failedAt !== undefined && Date.now() - failedAt > shrinkSeconds * 1000) return;
    if (replayed && failedAt === undefined) return;
    replayed = replayOnce && path !== undefined;
    try {
      await run(scenario);
    } catch (error) {
      failedAt ??= Date.now();
      throw error;
    }
  });
  const details = await fc.check(property, { numRuns, seed, ...(path !== undefined && { path }), endOnFailure: shrinkSeconds === 0 });
  if (!details.failed) return undefined;
  return {
    seed: details.seed,
    path: details.counterexamplePath,
    numShrinks: details.numShrinks,
    counterexample: details.counterexample?.[0],
    error: details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance),
  };
}

export interface Replay {
  /** The test's variables: the replay sets `${prefix}_SEED`, `${prefix}_PATH` and `${prefix}_RUNS=1`. */
  readonly envPrefix: string;
  /** Variables that shape generation: repeated as set now, since a path replays only under them. */
  readonly keepEnv: readonly string[];
  /** Settings the replay adds before the seed, such as `X_SHRINK_SECONDS=0`. */
  readonly extraEnv?: readonly string[];
  readonly testFile: string;
}

/**
 * One message: the title with the seed, path and shrinks, the replay command, the test's lines
 * and the error. Line breaks other than \n are escaped, since YAML (and so TAP) would cut there.
 */
export function formatFailure(title: string, failure: PropertyFailure<unknown>, replay: Replay, lines: readonly string[]): string {
  const env = [
    ...replay.keepEnv.filter((name) => process.env[name] !== undefined).map((name) => `${name}=${process.env[name]}`),
    ...(replay.extraEnv ?? []),
  ]
    .map((setting) => `${setting} `)
    .join('');
  const { envPrefix: prefix } = replay;
  return [
    `${title} (seed ${failure.seed}, path ${JSON.stringify(failure.path)}, shrunk ${failure.numShrinks} times)`,
    `replay: ${env}${prefix}_SEED=${failure.seed} ${prefix}_PATH='${failure.path ?? ''}' ${prefix}_RUNS=1 npx tap ${replay.testFile}`,
    ...lines,
    `error: ${failure.error}`,
  ]
    .join('\n')
    .replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `work`, or the error `expired()` makes if it takes more than `ms` (a hang, in a model test). */
export async function timeLimit<T>(work: Promise<T>, ms: number, expired: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(expired()), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
