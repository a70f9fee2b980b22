// Tests of the Reddit-comment generator: determinism, the shape of each line, and the
// statistics a benchmark relies on (mean size, field counts, quirks of the Pushshift dumps).

import t from 'tap';
import { RedditGenerator, redditCommentLines, redditComments, type RedditComment } from '../../bench/reddit.js';

const SAMPLE_COUNT = 10_000;
const lines = [...redditCommentLines(42, SAMPLE_COUNT)];
const docs = lines.map((line) => JSON.parse(line) as RedditComment);

function countWhere(predicate: (doc: RedditComment) => boolean): number {
  return docs.filter(predicate).length;
}

t.test('the same seed gives identical lines, from the class, the object stream and the line stream', async (t) => {
  const again = [...redditCommentLines(42, 2_000)];
  t.strictSame(again, lines.slice(0, 2_000));
  const generator = new RedditGenerator(42);
  const fromClass = Array.from({ length: 500 }, () => JSON.stringify(generator.next()));
  t.strictSame(fromClass, lines.slice(0, 500));
  t.strictSame([...redditComments(42, 3)], docs.slice(0, 3));
});

t.test('different seeds give different lines', async (t) => {
  const one = [...redditCommentLines(1, 200)];
  const two = [...redditCommentLines(2, 200)];
  const same = one.filter((line, i) => line === two[i]).length;
  t.equal(same, 0, 'no line of seed 1 equals the line of seed 2 at the same position');
});

t.test('every line is one JSON object on one line with a unique id', async (t) => {
  t.equal(lines.filter((line) => line.includes('\n')).length, 0, 'no raw newline inside a line');
  t.ok(docs.every((doc) => typeof doc === 'object' && doc !== null && !Array.isArray(doc)), 'every line is an object');
  t.equal(new Set(docs.map((doc) => doc.id)).size, SAMPLE_COUNT);
});

t.test('ids are 7-character base36 and strictly increasing', async (t) => {
  t.ok(docs.every((doc) => /^[0-9a-z]{7}$/.test(doc.id)), 'every id is 7 base36 digits');
  const outOfOrder = docs.filter((doc, i) => i > 0 && parseInt(doc.id, 36) <= parseInt(docs[i - 1]!.id, 36));
  t.equal(outOfOrder.length, 0, 'no id is at or below the one before');
});

t.test('the mean line is between 800 and 1,400 bytes and some lines are several KB', async (t) => {
  const sizes = lines.map((line) => Buffer.byteLength(line, 'utf8'));
  const mean = sizes.reduce((sum, size) => sum + size, 0) / sizes.length;
  t.ok(mean >= 800 && mean <= 1_400, `mean ${mean.toFixed(0)} bytes`);
  t.ok(sizes.filter((size) => size >= 4_000).length >= 3, 'a few lines of 4 KB or more');
  const median = [...sizes].sort((a, b) => a - b)[sizes.length >> 1]!;
  t.ok(median < mean, `median ${median} is below the mean: the tail is long`);
});

t.test('every document has between 20 and 70 fields, and the field set varies', async (t) => {
  const counts = docs.map((doc) => Object.keys(doc).length);
  t.ok(counts.every((count) => count >= 20 && count <= 70), `from ${Math.min(...counts)} to ${Math.max(...counts)}`);
  t.ok(new Set(counts).size >= 3, 'at least three different field counts');
});

t.test('fields appear in alphabetical order, as in the dumps', async (t) => {
  const unsorted = docs.filter((doc) => {
    const keys = Object.keys(doc);
    return keys.some((key, i) => i > 0 && keys[i - 1]! >= key);
  });
  t.equal(unsorted.length, 0, 'no document has keys out of order');
});

t.test('some authors and bodies are [deleted] and some bodies are [removed]', async (t) => {
  const deletedAuthors = docs.filter((doc) => doc.author === '[deleted]');
  t.ok(deletedAuthors.length >= 100, `${deletedAuthors.length} deleted authors`);
  t.ok(countWhere((doc) => doc.body === '[deleted]') >= 50, 'some [deleted] bodies');
  t.ok(countWhere((doc) => doc.body === '[removed]') >= 50, 'some [removed] bodies');
  t.ok(deletedAuthors.every((doc) => !('author_fullname' in doc) && doc.author_flair_text === null),
    'a deleted author has no author_fullname and null flair');
  t.ok(countWhere((doc) => doc.author !== '[deleted]' && typeof doc.author_fullname === 'string') > SAMPLE_COUNT / 2,
    'most authors have a t2_ fullname');
});

t.test('edited is false or a whole number greater than created_utc', async (t) => {
  const bad = docs.filter((doc) => doc.edited !== false &&
    !(Number.isInteger(doc.edited) && (doc.edited as number) > (doc.created_utc as number)));
  t.equal(bad.length, 0, 'no other value of edited');
  t.ok(countWhere((doc) => doc.edited !== false) > 0, 'some comments are edited');
});

t.test('parent_id is the link or an earlier comment of the same thread', async (t) => {
  const linkOf = new Map<string, unknown>();
  const bad: string[] = [];
  let replies = 0;
  for (const doc of docs) {
    const parent = doc.parent_id as string;
    const ok = parent.startsWith('t3_') ? parent === doc.link_id
      : parent.startsWith('t1_') && linkOf.get(parent.slice(3)) === doc.link_id;
    if (!ok) bad.push(`${doc.id} -> ${parent}`);
    if (parent.startsWith('t1_')) replies++;
    linkOf.set(doc.id, doc.link_id);
  }
  t.strictSame(bad, [], 'every t1_ parent was generated earlier in the same thread');
  t.ok(replies > SAMPLE_COUNT / 4 && replies < SAMPLE_COUNT, `${replies} replies`);
});

t.test('created_utc rises through the stream with only a few seconds of wobble', async (t) => {
  const created = docs.map((doc) => doc.created_utc as number);
  t.ok(created.every((time, i) => Number.isInteger(time) && (i === 0 || time >= created[i - 1]! - 6)),
    'no time is more than 6 s before the one before');
  t.ok(created[created.length - 1]! > created[0]! + 3_600, 'ten thousand comments span hours');
});

t.test('bodies hold markdown, newlines, double quotes, emoji and other non-ASCII text', async (t) => {
  const bodies = docs.map((doc) => doc.body as string);
  t.ok(bodies.some((body) => body.includes('&gt; ')), 'an escaped quote');
  t.ok(bodies.some((body) => body.includes('**')), 'bold');
  t.ok(bodies.some((body) => /\]\(https:\/\//.test(body)), 'a link');
  t.ok(bodies.filter((body) => body.includes('\n')).length > 100, 'newlines');
  t.ok(bodies.some((body) => body.includes('"')), 'double quotes');
  t.ok(bodies.some((body) => /\p{Extended_Pictographic}/u.test(body)), 'emoji');
  t.ok(bodies.filter((body) => /[^\x00-\x7f]/.test(body)).length > 100, 'non-ASCII');
});

t.test('subreddit popularity is heavily skewed across hundreds of subreddits', async (t) => {
  const counts = new Map<unknown, number>();
  for (const doc of docs) counts.set(doc.subreddit, (counts.get(doc.subreddit) ?? 0) + 1);
  const sorted = [...counts.values()].sort((a, b) => b - a);
  t.ok(counts.size >= 200, `${counts.size} subreddits`);
  t.ok(sorted[0]! > 20 * sorted[Math.floor(sorted.length / 2)]!, 'the top one has 20 times the median');
  t.ok(docs.every((doc) => doc.subreddit_name_prefixed === 'r/' + (doc.subreddit as string)), 'prefixed names match');
  t.ok(docs.every((doc) => (doc.permalink as string).endsWith(`/${doc.id}/`)), 'permalinks end with the id');
});

t.test('scores are heavy-tailed and can be negative', async (t) => {
  const scores = docs.map((doc) => doc.score as number);
  t.ok(scores.every(Number.isInteger), 'scores are integers');
  t.ok(scores.filter((score) => score < 0).length > 100, 'negative scores');
  t.ok(scores.filter((score) => score === 1).length > SAMPLE_COUNT / 4, 'many at the default of 1');
  t.ok(Math.max(...scores) >= 1_000, 'a few in the thousands');
});
