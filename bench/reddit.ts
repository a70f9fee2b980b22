// A deterministic generator of Reddit comments shaped like the Pushshift dumps of 2019–2021
// (RC_YYYY-MM: one JSON object a line, 1 to 1.5 KB, keys in alphabetical order), so that
// benchmarks store realistic documents without shipping a dump. As a CLI,
// `node dist/bench/reddit.js --count N [--seed S] [--start F]` writes N NDJSON lines to stdout:
// documents F to F + N - 1 of the seed's stream (F defaults to 0).
//
// The stream imitates the dumps' quirks: [deleted] authors (whose account fields are then
// absent or null), [deleted] and [removed] bodies, heavy-tailed body lengths and scores,
// markdown with HTML-escaped quotes (`&gt;`), emoji and other non-ASCII text, Zipf-like
// subreddit, thread and author popularity, and a few fields present only sometimes
// (author_cakeday, body_sha1, media_metadata). A seed's choices come from one mulberry32 stream
// (authors and subreddits are fixed, the same for every seed), so the i-th document depends only
// on the seed and i.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../storage/sim-file-system.js';

/** One comment as a dump line holds it; `id` is base36, 7 characters, increasing. */
export interface RedditComment {
  [field: string]: unknown;
  id: string;
}

type Random = ReturnType<typeof mulberry32>;

// ---- limits and shape of the stream ----

const MONTH_START_UTC_S = 1_590_969_600; // 2020-06-01T00:00:00Z, as in RC_2020-06.
// Real months hold ~150 million comments; a benchmark stores far fewer, so the clock runs
// slower: a million comments span about a month.
const COMMENT_INTERVAL_S_MEAN = 2.6;
const CREATED_JITTER_S_MAX = 3; // The dumps are ordered by id, so created_utc wobbles a little.
const COMMENT_ID_FIRST = parseInt('fs00000', 36); // Comment ids of mid-2020 have 7 characters.
const COMMENT_ID_GAP_MAX = 4; // Other comments took the ids in between.
const LINK_ID_FIRST = parseInt('gt0000', 36); // Link ids of mid-2020 have 6 characters.
const SUBREDDIT_COUNT = 500;
const AUTHOR_COUNT = 100_000;
const THREAD_POOL_SIZE = 2_000; // Threads open at once.
const THREAD_RECENT_PARENTS_MAX = 16; // Comments of a thread a reply can answer.
const THREAD_COMMENTS_MEAN = 25; // A new thread replaces an old one every this many comments.
const SLUG_LENGTH_CHARS_MAX = 50; // Reddit cuts permalink slugs near 50 characters.
const BODY_LENGTH_CHARS_MAX = 10_000; // Reddit's limit on a comment.
// Field names alone take about 790 bytes a line, so these give a mean line near 1,250 bytes.
const BODY_LENGTH_CHARS_MEDIAN = 34;
const BODY_LENGTH_LOG_SIGMA = 1.25; // Log-normal spread: most bodies short, a long tail.
const CHARS_PER_WORD_MEAN = 5.5; // Of the vocabulary below, with the space.
const SCORE_MAX = 60_000;
const SCORE_TAIL_ALPHA = 1.2; // P(score ≥ k) ≈ k^-1.2 for upvoted comments.
const CLI_LINES_PER_WRITE = 512;

// Probabilities, per comment unless stated.
const P_TOP_LEVEL = 0.35;
const P_AUTHOR_DELETED = 0.055;
const P_BODY_REMOVED_GIVEN_DELETED = 0.45; // The rest of deleted authors' bodies read [deleted].
const P_AUTOMODERATOR = 0.012; // Only on top-level comments.
const P_BY_SUBMITTER = 0.08;
const P_EDITED = 0.035;
const P_NEGATIVE_SCORE = 0.12;
const P_CONTROVERSIAL = 0.035;
const P_DISTINGUISHED = 0.002;
const P_AWARDED = 0.004;
const P_GIPHY = 0.004;
const P_ESSAY = 0.003; // Of text bodies: 2,000 to 8,000 characters.
const P_BODY_SHA1 = 0.3; // Only some ingestion runs recorded it.
const P_FLAIR_PER_MILLE = 130; // Per author and subreddit.

// ---- vocabulary (fixed; the seed changes only the choices) ----

const WORDS = (
  'the be to of and a in that have I it for not on with he as you do at this but his by from they we ' +
  'say her she or an will my one all would there their what so up out if about who get which go me ' +
  'when make can like time no just him know take people into year your good some could them see ' +
  'other than then now look only come its over think also back after use two how our work first ' +
  'well way even new want because any these give day most us game actually really pretty literally ' +
  'probably honestly basically thing guy team season player money car house dog cat kids job boss ' +
  'wife husband phone internet reddit post comment sub mod upvote downvote karma lol lmao tbh imo ' +
  'imho OP ELI5 TIL source government election vote policy tax price market stock crypto ' +
  'bitcoin vaccine mask covid lockdown city country world movie show episode character book song ' +
  'album build PC GPU console update patch bug server meta nerf buff damn wow yeah yep nope okay sure'
).split(' ');
const WORDS_CAPITALIZED = WORDS.map((word) => word.charAt(0).toUpperCase() + word.slice(1));
const TITLE_WORDS = WORDS.filter((word) => /^[a-z]+$/i.test(word));
// Words beyond plain ASCII, and the ones the API HTML-escapes (`&`, `<`, `>` arrive as entities).
const UNUSUAL_WORDS = ['café', 'naïve', 'über', 'jalapeño', 'résumé', '—', '…', 'it’s', 'don’t', '“this”',
  '日本', 'Москва', 'São Paulo', 'Zürich', 'ಠ_ಠ', '¯\\\\\\_(ツ)\\_/¯', '½', '€20', '°C', 'R&amp;D', 'AT&amp;T',
  '&lt;3', '-&gt;'];
const EMOJI = ['😂', '🤣', '❤️', '👍', '🙄', '😭', '🔥', '💯', '🤔', '😅', '🙏', '👀', '🇺🇸', '🤷‍♂️'];
const REACTIONS = ['lol', 'This.', 'Thank you!', 'Same', 'F', 'Username checks out', 'Nice', 'Wow',
  'Source?', 'Yes', 'No.', '😂😂😂', 'ಠ_ಠ', 'Take my upvote', 'What', 'Agreed', 'Happy cake day!',
  'r/oddlysatisfying', '/s', 'Underrated comment', '🤣', 'Came here to say this'];
const EDIT_NOTES = ['typo', 'thanks for the gold, kind stranger!', 'wow this blew up', 'a word', 'formatting'];
const SENTENCE_ENDS = ['.', '.', '.', '.', '?', '!', '...', '!!'];
const NAME_ADJECTIVES = ['Sad', 'Happy', 'Fancy', 'Pretend', 'Mental', 'Sweet', 'Lazy', 'Angry',
  'Quiet', 'Brave', 'Silly', 'Grumpy', 'Cosmic', 'Rusty', 'Salty', 'Spicy', 'Wild', 'Tiny', 'Giant',
  'Sleepy', 'Curious', 'Frosty', 'Golden', 'Jolly', 'Lucky', 'Nervous', 'Odd', 'Proud', 'Shiny'];
const NAME_NOUNS = ['Potato', 'Ostrich', 'Bear', 'Panda', 'Toaster', 'Wizard', 'Pickle', 'Otter',
  'Penguin', 'Badger', 'Falcon', 'Walrus', 'Cactus', 'Noodle', 'Pancake', 'Goose', 'Llama', 'Moose',
  'Raccoon', 'Turnip', 'Waffle', 'Yeti', 'Zebra', 'Koala', 'Lobster', 'Mango', 'Narwhal', 'Squid'];
// The most commented subreddits of 2020, most popular first; the rest of the 500 are made up.
const SUBREDDITS_REAL = ['AskReddit', 'politics', 'memes', 'teenagers', 'wallstreetbets', 'nba',
  'PublicFreakout', 'news', 'worldnews', 'nfl', 'unpopularopinion', 'soccer', 'gaming', 'funny',
  'relationship_advice', 'AmItheAsshole', 'Conservative', 'CoronavirusUS', 'Coronavirus', 'pics',
  'leagueoflegends', 'ACTrade', 'AnimalCrossing', 'interestingasfuck', 'HydroHomies', 'hockey',
  'PoliticalCompassMemes', 'movies', 'FortNiteBR', 'Minecraft', 'dankmemes', 'aww', 'videos',
  'todayilearned', 'CFB', 'Genshin_Impact', 'gonewild', 'CryptoCurrency', 'canada', 'ukpolitics',
  'de', 'europe', 'australia', 'Showerthoughts', 'explainlikeimfive', 'science', 'technology',
  'Overwatch', 'DestinyTheGame', 'buildapc', 'pcmasterrace', 'apexlegends', 'anime', 'television',
  'MMA', 'formula1', 'SquaredCircle', 'baseball', 'chess', 'Music', 'books', 'personalfinance',
  'india', 'unitedkingdom', 'mildlyinteresting', 'Tinder', 'NoStupidQuestions', 'TwoXChromosomes'];
const SUBREDDIT_HEADS = ['Ask', 'True', 'Old', 'Bad', 'Tech', 'Home', 'Mech', 'Cat', 'Dog', 'Food',
  'Board', 'Bike', 'Car', 'Fit', 'Art', 'Photo', 'Movie', 'Book', 'Space', 'History', 'Travel',
  'Garden', 'Coffee', 'Beer', 'Retro', 'Indie', 'Linux', 'Lego', 'Knitting', 'Fishing', 'Vinyl'];
const SUBREDDIT_TAILS = ['Science', 'Help', 'Deals', 'Tips', 'Pics', 'Memes', 'Discussion', 'Builds',
  'Hub', 'Gifs', 'Questions', 'Advice', 'Stories', 'irl', 'Circlejerk', 'Nerds', 'Talk', 'Porn',
  'HQ', 'Lovers', 'Collectors', '_Exchange', 'Academy'];

interface FlairStyle { text: string; richtext: unknown[] | null; css: string | null }
const FLAIRS: FlairStyle[] = [
  { text: 'Verified', richtext: null, css: 'verified' },
  { text: 'Chicago Bears', richtext: null, css: 'bears' },
  { text: 'PC', richtext: null, css: null },
  { text: 'Level 42', richtext: null, css: 'lvl' },
  { text: 'Lawful Good', richtext: null, css: null },
  { text: 'Lakers', richtext: null, css: 'Lakers1' },
  { text: 'Moderate', richtext: null, css: null },
  { text: ':flag-ca: Canada', css: null, richtext: [
    { a: ':flag-ca:', e: 'emoji', u: 'https://emoji.redditmedia.com/7u0k2lqcdxc41_t5_2qh1i/flag-ca' },
    { e: 'text', t: ' Canada' }] },
  { text: 'Top 1% Commenter', css: null, richtext: [{ e: 'text', t: 'Top 1% Commenter' }] },
  { text: 'Arsenal', css: 'arsenal', richtext: [{ e: 'text', t: 'Arsenal' }] },
  { text: 'Xbox: GamerTag ✔', css: null, richtext: [{ e: 'text', t: 'Xbox: GamerTag ✔' }] },
];
const FLAIR_COLORS = ['', '', '#ff4500', '#0079d3', '#edeff1', 'transparent'];

// ---- small helpers: leaves that compute and return ----

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** An integer in [min, max], both inclusive. */
function between(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** A Pareto-distributed number ≥ 1 with P(x ≥ k) = k^-alpha. */
function pareto(random: Random, alpha: number): number {
  return Math.pow(1 - random(), -1 / alpha);
}

/** An index in [0, count) with P(i) ∝ 1 / (i + 1), drawn without a table. */
function zipfIndex(random: Random, count: number): number {
  return Math.min(count - 1, Math.floor(Math.exp(random() * Math.log(count + 1))) - 1);
}

/** A standard normal number (Box–Muller; the second value is dropped for simplicity). */
function normal(random: Random): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** A 32-bit mix of two integers, for properties that must not consume the stream. */
function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  return (h ^ (h >>> 15)) >>> 0;
}

function randomBase36(random: Random, length: number): string {
  let text = '';
  while (text.length < length) text += Math.floor(random() * 36).toString(36);
  return text;
}

// ---- subreddits, authors and threads ----

interface Subreddit { index: number; name: string; id: string; prefixed: string }

/** The 500 subreddits, most popular first; the same for every seed. */
function makeSubreddits(): Subreddit[] {
  const random = mulberry32(0x5eed5ab);
  const names = new Set(SUBREDDITS_REAL);
  while (names.size < SUBREDDIT_COUNT) {
    const name = pick(random, SUBREDDIT_HEADS) + pick(random, SUBREDDIT_TAILS);
    names.add(random() < 0.3 ? name.toLowerCase() : name);
  }
  return [...names].map((name, index) => {
    // Older subreddits, which are the popular ones, have shorter ids.
    const idNumber = index < 150
      ? between(random, parseInt('2qh00', 36), parseInt('2uzzz', 36))
      : between(random, parseInt('30000', 36), parseInt('4zzzzz', 36));
    return { index, name, id: 't5_' + idNumber.toString(36), prefixed: 'r/' + name };
  });
}

const SUBREDDITS = makeSubreddits();

type AuthorKind = 'user' | 'deleted' | 'automoderator';

interface Author {
  kind: AuthorKind;
  index: number; // -1 for the two special authors.
  name: string;
  fullname: string;
  createdUtc: number | null; // null for some suspended accounts, as in the dumps.
  premium: boolean;
  cakeMonthDay: number; // month * 100 + day of account creation (UTC); -1 if unknown.
}

const DELETED: Author = {
  kind: 'deleted', index: -1, name: '[deleted]', fullname: '', createdUtc: null, premium: false, cakeMonthDay: -1,
};
const AUTOMODERATOR: Author = {
  kind: 'automoderator', index: -1, name: 'AutoModerator', fullname: 't2_6l4z3', createdUtc: 1_325_741_068,
  premium: true, cakeMonthDay: 105,
};

function monthDay(utcSeconds: number): number {
  const date = new Date(utcSeconds * 1000);
  return (date.getUTCMonth() + 1) * 100 + date.getUTCDate();
}

let monthDayCachedDay = -1;
let monthDayCached = -1;

/** monthDay for comment times, which arrive in order: one Date a day, not one a comment. */
function monthDayOfComment(utcSeconds: number): number {
  const day = Math.floor(utcSeconds / 86_400);
  if (day !== monthDayCachedDay) {
    monthDayCachedDay = day;
    monthDayCached = monthDay(utcSeconds);
  }
  return monthDayCached;
}

function authorName(random: Random): string {
  const style = random();
  const digits = String(between(random, 0, 9999));
  if (style < 0.3) {
    const separator = random() < 0.5 ? '_' : '-';
    return pick(random, NAME_ADJECTIVES) + separator + pick(random, NAME_NOUNS) + separator + digits;
  }
  if (style < 0.6) {
    return (pick(random, TITLE_WORDS) + pick(random, TITLE_WORDS)).toLowerCase() + digits.slice(0, 2);
  }
  if (style < 0.66) return 'throwaway' + digits;
  if (style < 0.85) {
    return pick(random, NAME_NOUNS) + pick(random, NAME_ADJECTIVES) + (random() < 0.5 ? digits : '');
  }
  return randomBase36(random, between(random, 5, 14));
}

/** The author with popularity rank `index`; the same for every seed, drawn from its own stream. */
function makeAuthor(index: number): Author {
  const random = mulberry32(mix(index, 0xa17e0));
  const name = authorName(random);
  const age = random() * random(); // Most accounts are young.
  const createdUtc = MONTH_START_UTC_S - 86_400 - Math.floor(age * (MONTH_START_UTC_S - 1_120_000_000));
  // Account ids grow with creation time, so old accounts have short ones.
  const idNumber = Math.floor((createdUtc - 1_118_000_000) * 650) + between(random, 0, 999);
  const known = random() >= 0.005;
  return {
    kind: 'user', index, name, fullname: 't2_' + idNumber.toString(36), createdUtc: known ? createdUtc : null,
    premium: random() < 0.08, cakeMonthDay: known ? monthDay(createdUtc) : -1,
  };
}

interface Thread {
  linkId: string;
  subreddit: Subreddit;
  slug: string;
  submitter: number; // Author index.
  recentParents: string[]; // A ring of the thread's latest comments as `t1_<id>`: the parents a reply can pick.
  recentNext: number;
  locked: boolean;
}

function makeSlug(random: Random): string {
  const count = between(random, 3, 14);
  let slug = pick(random, TITLE_WORDS).toLowerCase();
  for (let i = 1; i < count; i++) {
    const word = pick(random, TITLE_WORDS).toLowerCase();
    if (slug.length + 1 + word.length > SLUG_LENGTH_CHARS_MAX) break;
    slug += '_' + word;
  }
  return slug;
}

// ---- bodies ----

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function link(random: Random): string {
  const u = random();
  const url = u < 0.4 ? 'https://www.youtube.com/watch?v=' + randomBase36(random, 11)
    : u < 0.7 ? `https://en.wikipedia.org/wiki/${capitalize(pick(random, TITLE_WORDS))}_(${pick(random, TITLE_WORDS)})`
    : 'https://i.imgur.com/' + randomBase36(random, 7) + '.jpg';
  return random() < 0.6 ? '[' + pick(random, WORDS) + ' ' + pick(random, WORDS) + '](' + url + ')' : url;
}

function word(random: Random): string {
  const u = random();
  // One draw both decides the kind of word and, for plain words, picks it.
  if (u < 0.955) return WORDS[Math.floor((u / 0.955) * WORDS.length)]!;
  if (u < 0.97) return pick(random, UNUSUAL_WORDS);
  if (u < 0.98) return '"' + pick(random, WORDS) + ' ' + pick(random, WORDS) + '"';
  if (u < 0.986) return '**' + pick(random, WORDS) + '**';
  if (u < 0.991) return '*' + pick(random, WORDS) + '*';
  if (u < 0.995) return link(random);
  return pick(random, EMOJI);
}

// NB: bodies are built as arrays and joined, so that JSON.stringify meets flat strings rather
// than ropes of hundreds of pieces.
function sentence(random: Random, count: number): string {
  const words: string[] = [pick(random, WORDS_CAPITALIZED)];
  for (let i = 1; i < count; i++) words.push(word(random));
  const text = words.join(' ') + pick(random, SENTENCE_ENDS);
  return random() < 0.05 ? text + ' ' + pick(random, EMOJI) : text;
}

function sentenceWords(random: Random): number {
  return between(random, 3, 18);
}

function list(random: Random): string {
  const count = between(random, 2, 6);
  const ordered = random() < 0.5;
  const items: string[] = [];
  for (let i = 1; i <= count; i++) items.push((ordered ? i + '. ' : '* ') + sentence(random, sentenceWords(random)));
  return items.join('\n');
}

/** Log-normal around BODY_LENGTH_CHARS_MEDIAN plus a few essays of several KB, within Reddit's limit. */
function bodyLengthTarget(random: Random): number {
  const length = random() < P_ESSAY
    ? between(random, 2_000, 8_000)
    : BODY_LENGTH_CHARS_MEDIAN * Math.exp(BODY_LENGTH_LOG_SIGMA * normal(random));
  return Math.min(BODY_LENGTH_CHARS_MAX, Math.max(1, Math.round(length)));
}

/** Markdown prose as the API serves it: `>` is escaped to `&gt;`, paragraphs split by blank lines. */
function textBody(random: Random): string {
  const target = bodyLengthTarget(random);
  if (target < 16 && random() < 0.7) return pick(random, REACTIONS);
  const parts: string[] = random() < 0.07 ? ['&gt; ', sentence(random, sentenceWords(random)), '\n\n'] : [];
  let length = 0;
  while (length < target) {
    if (length > 0) parts.push(random() < 0.2 ? '\n\n' : random() < 0.02 ? '\n' : ' ');
    const wordsLeft = Math.ceil((target - length) / CHARS_PER_WORD_MEAN);
    const piece = wordsLeft > 30 && random() < 0.05 ? '\n\n' + list(random) + '\n\n'
      : sentence(random, Math.max(1, Math.min(wordsLeft, sentenceWords(random))));
    parts.push(piece);
    length += piece.length + 1;
  }
  const body = parts.join('');
  return body.length > BODY_LENGTH_CHARS_MAX ? body.slice(0, BODY_LENGTH_CHARS_MAX) : body;
}

function automoderatorBody(random: Random, subreddit: Subreddit): string {
  const notice = random() < 0.5
    ? 'Your submission has been automatically removed because your account is too new. ' +
      'Please wait a few days before posting.'
    : `**Please read the rules of r/${subreddit.name} before commenting.** Comments that break them will be removed.`;
  return notice + '\n\n*I am a bot, and this action was performed automatically. Please [contact the moderators ' +
    `of this subreddit](/message/compose/?to=/r/${subreddit.name}) if you have any questions or concerns.*`;
}

function giphyMetadata(key: string): Record<string, unknown> {
  return {
    ['giphy|' + key]: {
      e: 'AnimatedImage', ext: 'https://giphy.com/gifs/' + key, id: 'giphy|' + key, m: 'image/gif',
      s: {
        gif: 'https://giphy.com/embed/' + key, mp4: `https://media0.giphy.com/media/${key}/giphy.mp4`, x: 480, y: 270,
      },
      status: 'valid', t: 'giphy',
    },
  };
}

// ---- awards and flair ----

interface AwardKind {
  id: string;
  name: string;
  coins: number;
  premiumDays: number;
  icon: string; // Without the `_<size>.png` ending.
  gildingKey: string | null; // Silver, gold and platinum also count in `gildings`.
}

const GOLD_ICONS = 'https://www.redditstatic.com/gold/awards/icon/';
const SILVER: AwardKind = {
  id: 'gid_1', name: 'Silver', coins: 100, premiumDays: 0, icon: GOLD_ICONS + 'silver', gildingKey: 'gid_1',
};
// Weighted by how often each was given in 2020: silver most, platinum least.
const AWARDS: AwardKind[] = [
  SILVER,
  SILVER,
  { id: 'gid_2', name: 'Gold', coins: 500, premiumDays: 7, icon: GOLD_ICONS + 'gold', gildingKey: 'gid_2' },
  { id: 'award_5f123e3d-4f48-42f4-9c11-e98b566d5897', name: 'Wholesome', coins: 150, premiumDays: 0,
    icon: 'https://i.redd.it/award_images/t5_22cerq/5izbv4fn0md41_Wholesome', gildingKey: null },
  { id: 'award_f44611f1-b89e-46dc-97fe-892280b13b82', name: 'Helpful', coins: 150, premiumDays: 0,
    icon: 'https://i.redd.it/award_images/t5_22cerq/klvxk1wggfd41_Helpful', gildingKey: null },
  { id: 'gid_3', name: 'Platinum', coins: 1800, premiumDays: 31, icon: GOLD_ICONS + 'platinum', gildingKey: 'gid_3' },
];

function awardObject(award: AwardKind, count: number): Record<string, unknown> {
  const sizes = [16, 32, 48, 64, 128];
  const resized = sizes.map((size) => ({ height: size, url: `${award.icon}_${size}.png`, width: size }));
  const icon = award.icon + '_512.png';
  return {
    award_sub_type: 'GLOBAL', award_type: 'global', awardings_required_to_grant_benefits: null,
    coin_price: award.coins, coin_reward: 0, count, days_of_drip_extension: 0, days_of_premium: award.premiumDays,
    description: `Shows the ${award.name} Award.`, end_date: null, giver_coin_reward: null, icon_format: null,
    icon_height: 512, icon_url: icon, icon_width: 512, id: award.id, is_enabled: true, is_new: false,
    name: award.name, penny_donate: null, penny_price: null, resized_icons: resized, resized_static_icons: resized,
    start_date: null, static_icon_height: 512, static_icon_url: icon, static_icon_width: 512,
    subreddit_coin_reward: 0, subreddit_id: null, tiers_by_required_awardings: null,
  };
}

interface Flair {
  backgroundColor: string | null;
  cssClass: string | null;
  richtext: unknown[];
  templateId: string | null;
  text: string | null;
  textColor: string | null;
  type: 'text' | 'richtext';
}

const NO_FLAIR: Flair = {
  backgroundColor: null, cssClass: null, richtext: [], templateId: null, text: null, textColor: null, type: 'text',
};

function hex(value: number, length: number): string {
  return value.toString(16).padStart(8, '0').slice(0, length);
}

/** An author's flair in a subreddit: a fixed function of the pair, so it is the same every time. */
function flairOf(authorIndex: number, subredditIndex: number): Flair {
  const h = mix(authorIndex, subredditIndex);
  if (h % 1000 >= P_FLAIR_PER_MILLE) return NO_FLAIR;
  const style = FLAIRS[(h >>> 10) % FLAIRS.length]!;
  const templated = (h & 0x100000) !== 0; // Old CSS-class flairs have no template.
  // Shaped like the version-1 UUIDs Reddit issued in 2020 (`-11ea-`).
  const templateId = templated
    ? `${hex(mix(h, 1), 8)}-${hex(mix(h, 2), 4)}-11ea-${hex(mix(h, 3), 4)}-${hex(mix(h, 4), 8)}${hex(mix(h, 5), 4)}`
    : null;
  return {
    backgroundColor: FLAIR_COLORS[(h >>> 4) % FLAIR_COLORS.length]!,
    cssClass: style.css, richtext: style.richtext ?? [], templateId, text: style.text,
    textColor: (h & 0x200000) !== 0 ? 'light' : 'dark', type: style.richtext === null ? 'text' : 'richtext',
  };
}

// ---- one comment ----

/** The choices behind one comment, made in a fixed order from the stream. */
interface Draft {
  id: string;
  thread: Thread;
  parentId: string;
  author: Author;
  createdUtc: number;
  edited: false | number;
  body: string;
  giphyKey: string | null;
  score: number;
  controversiality: 0 | 1;
  collapsedReason: string | null;
  awards: AwardKind[];
  distinguished: boolean;
  stickied: boolean;
}

interface Reception {
  score: number;
  controversiality: 0 | 1;
  collapsedReason: string | null;
  awards: AwardKind[];
}

function receptionOf(random: Random, author: Author): Reception {
  if (author.kind === 'automoderator') return { score: 1, controversiality: 0, collapsedReason: null, awards: [] };
  const magnitude = Math.min(SCORE_MAX, Math.floor(pareto(random, SCORE_TAIL_ALPHA)));
  let score = random() < P_NEGATIVE_SCORE ? 1 - Math.min(magnitude, 500) : magnitude;
  const awards: AwardKind[] = [];
  if (author.kind === 'user' && random() < P_AWARDED) {
    do awards.push(pick(random, AWARDS)); while (random() < 0.25);
    score = Math.max(score, between(random, 10, 3000)); // Awarded comments are seen, so upvoted.
  }
  const controversiality = random() < P_CONTROVERSIAL ? 1 : 0;
  return { score, controversiality, collapsedReason: score <= -5 ? 'comment score below threshold' : null, awards };
}

function editedOf(random: Random, author: Author, createdUtc: number): false | number {
  if (author.kind !== 'user' || random() >= P_EDITED) return false;
  return createdUtc + Math.min(30 * 86_400, Math.floor(30 + 120 * pareto(random, 0.8)));
}

interface Body {
  body: string;
  giphyKey: string | null; // Set when the body embeds a GIF, which then has media_metadata.
}

function bodyOf(random: Random, author: Author, subreddit: Subreddit, edited: boolean): Body {
  if (author.kind === 'deleted') {
    return { body: random() < P_BODY_REMOVED_GIVEN_DELETED ? '[removed]' : '[deleted]', giphyKey: null };
  }
  if (author.kind === 'automoderator') return { body: automoderatorBody(random, subreddit), giphyKey: null };
  if (random() < P_GIPHY) {
    const key = randomBase36(random, between(random, 13, 18));
    const caption = random() < 0.5 ? sentence(random, sentenceWords(random)) + '\n\n' : '';
    return { body: caption + `![gif](giphy|${key})`, giphyKey: key };
  }
  const body = textBody(random);
  const note = edited && random() < 0.4 ? '\n\nEdit: ' + pick(random, EDIT_NOTES) : '';
  return { body: body + note, giphyKey: null };
}

// ---- the document, field by field in the dumps' (alphabetical) order ----

function addAuthorFields(doc: Record<string, unknown>, draft: Draft): void {
  const author = draft.author;
  doc.author = author.name;
  if (author.kind === 'deleted') {
    // The dumps keep the flair fields of a deleted account as nulls and drop the account's own.
    doc.author_flair_background_color = null;
    doc.author_flair_css_class = null;
    doc.author_flair_template_id = null;
    doc.author_flair_text = null;
    doc.author_flair_text_color = null;
    return;
  }
  if (author.cakeMonthDay === monthDayOfComment(draft.createdUtc)) doc.author_cakeday = true;
  doc.author_created_utc = author.createdUtc;
  const flair = author.kind === 'user' ? flairOf(author.index, draft.thread.subreddit.index) : NO_FLAIR;
  doc.author_flair_background_color = flair.backgroundColor;
  doc.author_flair_css_class = flair.cssClass;
  doc.author_flair_richtext = flair.richtext;
  doc.author_flair_template_id = flair.templateId;
  doc.author_flair_text = flair.text;
  doc.author_flair_text_color = flair.textColor;
  doc.author_flair_type = flair.type;
  doc.author_fullname = author.fullname;
  doc.author_patreon_flair = false;
  doc.author_premium = author.premium;
}

function awardings(awards: AwardKind[]): unknown[] {
  const counts = new Map<AwardKind, number>();
  for (const award of awards) counts.set(award, (counts.get(award) ?? 0) + 1);
  return [...counts].map(([award, count]) => awardObject(award, count));
}

function gildingsOf(awards: AwardKind[]): Record<string, number> {
  const gildings: Record<string, number> = {};
  for (const award of awards) {
    if (award.gildingKey !== null) gildings[award.gildingKey] = (gildings[award.gildingKey] ?? 0) + 1;
  }
  return gildings;
}

/** all_awardings through edited. */
function addHeadFields(doc: Record<string, unknown>, draft: Draft, random: Random): void {
  doc.all_awardings = draft.awards.length === 0 ? [] : awardings(draft.awards);
  doc.archived = random() < 0.001;
  doc.associated_award = null;
  addAuthorFields(doc, draft);
  doc.awarders = [];
  doc.body = draft.body;
  if (random() < P_BODY_SHA1) doc.body_sha1 = createHash('sha1').update(draft.body).digest('hex');
  doc.can_gild = draft.author.kind === 'user';
  doc.collapsed = draft.collapsedReason !== null || random() < 0.004;
  doc.collapsed_because_crowd_control = null;
  doc.collapsed_reason = draft.collapsedReason;
  doc.comment_type = null;
  doc.controversiality = draft.controversiality;
  doc.created_utc = draft.createdUtc;
  doc.distinguished = draft.distinguished ? 'moderator' : null;
  doc.edited = draft.edited;
}

/** gilded through treatment_tags. */
function addTailFields(doc: Record<string, unknown>, draft: Draft, random: Random): void {
  const gildings = draft.awards.length === 0 ? {} : gildingsOf(draft.awards);
  const thread = draft.thread;
  doc.gilded = gildings.gid_2 ?? 0;
  doc.gildings = gildings;
  doc.id = draft.id;
  doc.is_submitter = draft.author.index >= 0 && draft.author.index === thread.submitter;
  doc.link_id = thread.linkId;
  doc.locked = thread.locked;
  if (draft.giphyKey !== null) doc.media_metadata = giphyMetadata(draft.giphyKey);
  doc.no_follow = draft.score <= 1 || random() < 0.5;
  doc.parent_id = draft.parentId;
  doc.permalink = `/${thread.subreddit.prefixed}/comments/${thread.linkId.slice(3)}/${thread.slug}/${draft.id}/`;
  // Most comments were fetched within a minute; some only by a re-ingest months later.
  const retrievedAfterS = random() < 0.1 ? between(random, 30 * 86_400, 300 * 86_400) : between(random, 1, 60);
  doc.retrieved_on = draft.createdUtc + retrievedAfterS;
  doc.score = draft.score;
  doc.send_replies = draft.author.kind !== 'automoderator' && random() < 0.97;
  doc.stickied = draft.stickied;
  doc.subreddit = thread.subreddit.name;
  doc.subreddit_id = thread.subreddit.id;
  doc.subreddit_name_prefixed = thread.subreddit.prefixed;
  doc.subreddit_type = 'public';
  doc.top_awarded_type = null;
  doc.total_awards_received = draft.awards.length;
  doc.treatment_tags = [];
}

// ---- the stream ----

const AUTHORS: (Author | undefined)[] = []; // Filled lazily; the same for every seed.

function authorAt(index: number): Author {
  return (AUTHORS[index] ??= makeAuthor(index));
}

/**
 * The comment stream of one seed, in id order.
 * Invariant: a t1_ parent is an earlier comment of the same thread.
 */
export class RedditGenerator {
  private readonly random: Random;
  private count = 0;
  private commentIdLast = COMMENT_ID_FIRST;
  private linkIdLast = LINK_ID_FIRST;
  private readonly threads: Thread[] = [];

  constructor(seed: number) {
    assert(Number.isSafeInteger(seed), `seed must be an integer, got ${seed}`);
    this.random = mulberry32(seed);
    for (let i = 0; i < THREAD_POOL_SIZE; i++) this.threads.push(this.openThread());
  }

  /** The i-th call returns the i-th comment (0-based); pure: the same (seed, i) gives the same document. */
  next(): RedditComment {
    const draft = this.draft();
    const doc: Record<string, unknown> = {};
    addHeadFields(doc, draft, this.random);
    addTailFields(doc, draft, this.random);
    return doc as RedditComment;
  }

  private draft(): Draft {
    const random = this.random;
    const thread = this.pickThread();
    this.commentIdLast += between(random, 1, COMMENT_ID_GAP_MAX);
    const id = this.commentIdLast.toString(36);
    const parentId = this.pickParent(thread);
    const topLevel = parentId === thread.linkId;
    const author = this.pickAuthor(thread, topLevel);
    const jitterS = between(random, -CREATED_JITTER_S_MAX, CREATED_JITTER_S_MAX);
    const offsetS = Math.max(0, Math.floor(this.count++ * COMMENT_INTERVAL_S_MEAN) + jitterS);
    const createdUtc = MONTH_START_UTC_S + offsetS;
    const edited = editedOf(random, author, createdUtc);
    const { body, giphyKey } = bodyOf(random, author, thread.subreddit, edited !== false);
    const reception = receptionOf(random, author);
    const automoderator = author.kind === 'automoderator';
    this.remember(thread, id);
    return {
      id, thread, parentId, author, createdUtc, edited, body, giphyKey, ...reception,
      distinguished: automoderator || (author.kind === 'user' && random() < P_DISTINGUISHED),
      stickied: automoderator && random() < 0.7,
    };
  }

  private openThread(): Thread {
    const random = this.random;
    this.linkIdLast += between(random, 1, 6);
    return {
      linkId: 't3_' + this.linkIdLast.toString(36), subreddit: SUBREDDITS[zipfIndex(random, SUBREDDIT_COUNT)]!,
      slug: makeSlug(random), submitter: zipfIndex(random, AUTHOR_COUNT), recentParents: [], recentNext: 0,
      locked: random() < 0.003,
    };
  }

  /** A thread by popularity; now and then a new thread replaces a random one first. */
  private pickThread(): Thread {
    const random = this.random;
    if (random() < 1 / THREAD_COMMENTS_MEAN) this.threads[Math.floor(random() * THREAD_POOL_SIZE)] = this.openThread();
    return this.threads[Math.floor(THREAD_POOL_SIZE * random() ** 3)]!;
  }

  private pickParent(thread: Thread): string {
    const recent = thread.recentParents;
    if (recent.length === 0 || this.random() < P_TOP_LEVEL) return thread.linkId;
    return pick(this.random, recent);
  }

  private pickAuthor(thread: Thread, topLevel: boolean): Author {
    const u = this.random();
    if (u < P_AUTHOR_DELETED) return DELETED;
    if (u < P_AUTHOR_DELETED + P_BY_SUBMITTER) return authorAt(thread.submitter);
    if (topLevel && u >= 1 - P_AUTOMODERATOR) return AUTOMODERATOR;
    return authorAt(zipfIndex(this.random, AUTHOR_COUNT));
  }

  private remember(thread: Thread, id: string): void {
    const parent = 't1_' + id;
    if (thread.recentParents.length < THREAD_RECENT_PARENTS_MAX) thread.recentParents.push(parent);
    else thread.recentParents[thread.recentNext] = parent;
    thread.recentNext = (thread.recentNext + 1) % THREAD_RECENT_PARENTS_MAX;
  }
}

/** The first `count` comments for `seed`. */
export function* redditComments(seed: number, count: number): Generator<RedditComment> {
  const generator = new RedditGenerator(seed);
  for (let i = 0; i < count; i++) yield generator.next();
}

/** NDJSON lines (no trailing newline in each string). */
export function* redditCommentLines(seed: number, count: number): Generator<string> {
  for (const comment of redditComments(seed, count)) yield JSON.stringify(comment);
}

// ---- command line ----

interface CommandLine {
  readonly count: number;
  readonly seed: number;
  readonly start: number;
}

function parseCommandLine(argv: string[]): CommandLine {
  const options = { count: { type: 'string' }, seed: { type: 'string', default: '1' }, start: { type: 'string', default: '0' } } as const;
  const { values } = parseArgs({ args: argv, options });
  const count = Number(values.count);
  const seed = Number(values.seed);
  const start = Number(values.start);
  if (!Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(seed) || !Number.isSafeInteger(start) || start < 0) {
    throw new Error('usage: node dist/bench/reddit.js --count N [--seed S] [--start F]');
  }
  return { count, seed, start };
}

async function writeLines({ count, seed, start }: CommandLine): Promise<void> {
  const out = process.stdout;
  // A closed pipe (`| head`) ends the run quietly, as it does for other Unix tools.
  out.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
  const generator = new RedditGenerator(seed);
  // NB: the stream is one mulberry32 sequence, and a document takes a varying number of draws, so
  // the only way to reach document `start` is through every one before it: they are generated
  // and dropped unserialised (about 95,000 a second on the bench VMs, against 65,000 written).
  for (let i = 0; i < start; i++) generator.next();
  let chunk = '';
  for (let lines = 1; lines <= count; lines++) {
    chunk += JSON.stringify(generator.next()) + '\n';
    if (lines % CLI_LINES_PER_WRITE !== 0) continue;
    if (!out.write(chunk)) await once(out, 'drain');
    chunk = '';
  }
  if (chunk.length > 0 && !out.write(chunk)) await once(out, 'drain');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let options: CommandLine;
  try {
    options = parseCommandLine(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  await writeLines(options);
}
