// Seeded simulation of log shipping (test/helpers/replication-sim.ts): a primary and two
// standbys over a faulty simulated transport and simulated disks; the primary dies with crash
// damage, the most advanced standby is promoted, the others (the old primary too) rejoin it.
// Invariants per scenario:
// - each standby's binlog is a dense prefix of the primary's durable log, record for record;
// - after promotion every write acknowledged at remote_flush or remote_apply is there;
// - once faults heal, every node that can follow holds the same documents as the new primary
//   (in even seeds the other standbys follow it by a re-point, ReplicationNode.repoint, in odd
//   ones by a restart);
//   the old primary rejoins exactly when its log is no longer than the new primary's was at
//   promotion (else it is refused: diverged, it needs a checkpoint);
// - no read on a standby saw a write the promoted history lost, and each read showed exactly
//   what that write wrote.
// DOCKET_REPLICATION_SIM_SEEDS (default 200) scenarios; npm run test:replication-long runs more.
// Replay one: DOCKET_REPLICATION_SIM_ONLY=<seed> npx tap test/replication/sim.test.ts

import t from 'tap';
import { runScenario, type ScenarioResult } from '../helpers/replication-sim.js';

const only = process.env['DOCKET_REPLICATION_SIM_ONLY'];
const count = Number(process.env['DOCKET_REPLICATION_SIM_SEEDS'] ?? 200);
const first = Number(process.env['DOCKET_REPLICATION_SIM_FIRST'] ?? 1);
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => first + i);

function check(r: ScenarioResult): string[] {
  const problems: string[] = [];
  const say = (message: string): void => void problems.push(`seed ${r.seed} (${r.level}, k=${r.quorum}): ${message}`);
  for (const [name, log] of r.standbyLogs) {
    const tsns = [...log.keys()].sort((a, b) => a - b);
    tsns.forEach((tsn, i) => tsn !== i + 1 && say(`${name}'s log is not dense from TSN 1 at ${tsn}`));
    for (const [tsn, payload] of log) {
      const ours = r.primaryLog.get(tsn);
      if (!ours) say(`${name} holds TSN ${tsn}, which the primary's durable log lacks`);
      else if (!ours.equals(payload)) say(`${name}'s TSN ${tsn} differs from the primary's`);
    }
  }
  for (const ack of r.acknowledged) {
    if ((ack.level === 'remote_flush' || ack.level === 'remote_apply') && ack.tsn > r.promotedTsn) say(`write TSN ${ack.tsn} acknowledged at ${ack.level} is lost: ${r.promoted} was promoted at TSN ${r.promotedTsn}`);
  }
  const reference = r.finalDocuments.get(r.promoted)!;
  for (const [name, documents] of r.finalDocuments) {
    if (name === r.promoted) continue;
    const a = JSON.stringify([...documents].sort());
    const b = JSON.stringify([...reference].sort());
    if (a !== b) say(`${name}'s documents differ from the new primary's`);
  }
  if (r.oldPrimaryDiverged !== r.oldPrimaryLastTsn > r.promotedTsn) say(`the old primary (log through ${r.oldPrimaryLastTsn}) ${r.oldPrimaryDiverged ? 'was refused' : 'rejoined'}, the new primary promoted at ${r.promotedTsn}`);
  for (const [name, seen] of r.seen) {
    for (const [collection, id, revision, json] of seen) {
      if (revision > r.promotedTsn) say(`${name} showed ${collection}/${id} at revision ${revision}, lost by the promotion at ${r.promotedTsn}`);
      const write = r.committed.get(revision);
      if (!write || write.key !== `${collection}/${id}` || write.json !== json) say(`${name} showed ${collection}/${id} revision ${revision} as ${json}, not what that TSN wrote`);
    }
  }
  return problems;
}

t.test(`${seeds.length} seeded scenarios`, async (t) => {
  const totals = { repointed: 0, acknowledgedRemote: 0, diverged: 0, rejoined: 0, reads: 0, crashes: 0, dropped: 0, corrupted: 0, duplicated: 0, reordered: 0 };
  const problems: string[] = [];
  for (const seed of seeds) {
    const result = await runScenario(seed);
    problems.push(...check(result));
    totals.acknowledgedRemote += result.acknowledged.filter((a) => a.level === 'remote_flush' || a.level === 'remote_apply').length;
    totals.repointed += result.repointed;
    if (result.oldPrimaryDiverged) totals.diverged++;
    else totals.rejoined++;
    for (const seen of result.seen.values()) totals.reads += seen.length;
    totals.crashes += result.standbyCrashes;
    totals.dropped += result.net.dropped;
    totals.corrupted += result.net.corrupted;
    totals.duplicated += result.net.duplicated;
    totals.reordered += result.net.reordered;
  }
  t.same(problems.slice(0, 20), [], 'every invariant holds in every scenario');
  t.comment(JSON.stringify(totals));
  if (seeds.length >= 50) {
    // The sweep reached what it is meant to test (not a count of its own loop).
    t.ok(totals.acknowledgedRemote > 0, 'writes were confirmed at remote_flush / remote_apply');
    t.ok(totals.diverged > 0 && totals.rejoined > 0, 'old primaries both rejoined and were refused for a diverged history');
    t.ok(totals.crashes > 0 && totals.dropped > 0 && totals.corrupted > 0 && totals.duplicated > 0 && totals.reordered > 0, 'standby crashes and every transport fault happened');
    t.ok(totals.reads > 0, 'standbys served reads');
    t.ok(totals.repointed > 0, 'standbys followed the new primary by a re-point, without a restart');
  }
});
