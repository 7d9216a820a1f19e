// Writes, from the npm package vader-sentiment 1.1.3 (Apache-2.0, © 2018 Comcast Cable Communications Management,
// LLC; a JavaScript port of C.J. Hutto's VADER):
//   src/WeakToStrong.Cli/Rewards/vader-lexicon.tsv   the lexicon the package's build uses, as token<TAB>valence lines
//   tests/WeakToStrong.Tests/TestData/vader/vader-sentiment-1.1.3.jsonl   {text, compound, pos, neu, neg} per sentence
//
//   cd tools/vader-fixture && npm ci && node make.js
//
// The sentences: held-out text (samples/sentiment/heldout.txt), the bundled evaluation prompts, responses of the
// earlier AFINN experiment (docs/sentiment/afinn/*.jsonl), and hand-made
// sentences that exercise each of VADER's rules. Every choice below is by file order, not by score.
'use strict';
const fs = require('fs');
const path = require('path');
const vader = require('vader-sentiment');

const root = path.resolve(__dirname, '..', '..');
const pkg = path.join(__dirname, 'node_modules', 'vader-sentiment');
const version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version;
if (version !== '1.1.3') throw new Error(`expected vader-sentiment 1.1.3, found ${version}`);

// The lexicon: vader_lexicon.txt has a few tokens twice; the package's build keeps the last line of each (as the
// original Python VADER did), so this does the same, and then checks the result against the build's own table.
const lexicon = new Map();
for (const line of fs.readFileSync(path.join(pkg, 'vader_lexicon.txt'), 'utf8').split('\n')) {
  if (line.length === 0) continue;
  const fields = line.split('\t');
  lexicon.delete(fields[0]);
  lexicon.set(fields[0], fields[1]);
}
const bundle = fs.readFileSync(path.join(pkg, 'build', 'vaderSentiment.bundle.js'), 'utf8');
const start = bundle.indexOf('lexicon={') + 'lexicon='.length;
const endMarker = '"}:-)":.3}';
const built = Function(`return (${bundle.slice(start, bundle.indexOf(endMarker, start) + endMarker.length)});`)();
if (Object.keys(built).length !== lexicon.size) throw new Error('the build and vader_lexicon.txt differ in size');
for (const [token, valence] of lexicon) {
  if (built[token] !== parseFloat(valence)) throw new Error(`the build and vader_lexicon.txt differ on ${token}`);
}
const sorted = [...lexicon.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
fs.writeFileSync(path.join(root, 'src', 'WeakToStrong.Cli', 'Rewards', 'vader-lexicon.tsv'),
  sorted.map(([t, v]) => `${t}\t${v}\n`).join(''));

// Hand-made sentences, grouped by the rule they exercise.
const rules = [
  // plain lexicon words and neutral text
  'The food was good.', 'The food was bad.', 'The ship sailed at noon.', 'I love this movie and I hate that one.',
  'A wonderful, beautiful film.', 'Terrible, awful, sad.', '', ' ', 'a', 'I', 'Good', 'ok', 'OK fine',
  // boosters and dampeners, at distance 1, 2 and 3, before positive and negative words
  'The food was very good.', 'The food was very bad.', 'The food was extremely very good.',
  'This is really quite a good idea.', 'It was barely good.', 'It was slightly bad.', 'He is kind of nice.',
  'She is sort of happy.', 'It was kinda great.', 'The plot is somewhat predictable but fun.',
  'I am so incredibly happy today.', 'It is marginally better than the last one.', 'The kind man smiled.',
  'What a kind of day.', 'The most beautiful day.', 'Less bad than expected.',
  // negation: not / n't / never / without, at distance 1, 2 and 3; "never so" and "never this"; "least"
  'The food was not good.', 'The food was not very good.', "The food isn't good.", "The food wasn't that bad.",
  'I never said it was good.', 'This was never so good.', 'It is never this bad.', 'Never have I been so happy.',
  'Not a single good thing.', 'Without doubt a great win.', 'Nothing about it was nice.', 'I dont like it.',
  "I can't stand it.", 'He has the least happy face.', 'At least it was fun.', 'It was the very least bad option.',
  'Least happy of all.', 'Nor was it pleasant.', 'None of them were kind.', 'It rarely feels good.',
  'Despite the rain, a lovely day.', 'It is not bad at all.', 'Not not good.', 'I do not love it, not at all.',
  // "but": what comes before counts half, what comes after one and a half times
  'The food was good but the service was terrible.', 'The service was terrible but the food was good.',
  'Good, BUT bad.', 'But it was nice.', 'It was nice, but.', 'Great acting, but a boring plot, but nice music.',
  // ALL CAPS emphasis (only when some words are not all caps) and the booster in caps
  'The food was GOOD.', 'The food was BAD.', 'THE FOOD WAS GOOD.', 'The food was VERY good.',
  'The food was VERY BAD!', 'I LOVE it', 'GREAT', 'NOT good at all', 'The USA is GREAT and the UK is OK.',
  ':)WORD is fine', 'It is :D good',
  // punctuation emphasis: exclamation marks (up to 4) and question marks (2, 3, more)
  'Good!', 'Good!!', 'Good!!!', 'Good!!!!', 'Good!!!!!!!', 'Bad!!!', 'Is it good?', 'Is it good??', 'Is it good???',
  'Is it good?????', 'Really?!?', 'Why so bad?!?!', 'Nice! Great! Lovely!', 'Hello!!!', 'Who???',
  // emoticons, slang and punctuation attached to words
  'I am happy :)', 'That was sad :(', 'Great job <3', 'lol that is funny', 'ugh, this sucks :-(',
  'Well done ;)', 'meh.', 'ok...', '"Good," she said.', '(Wonderful)', 'good,', ',good', 'good.)',
  '--great--', "it's great", "'great'", 'the best!!', '!!!great', '?!?!good', 'good?!?!',
  // idioms and special cases
  'The show was the bomb.', 'That movie is the shit.', 'He is a bad ass.', 'Yeah right, that was great.',
  'It did not cut the mustard.', 'That review was the kiss of death.', 'They live hand to mouth.',
  'This plan will cut the mustard.', 'It is the kiss of death for the plan.', 'I am fed up with it.',
  'I am screwed up.', 'I just can\'t stand it.',
  // repetition: each "united" adds, the compound saturates
  'the United States', 'the United States of the United States',
  'the United States and the United States at the country, and the United States of the United States',
  'great great great great great great great great great great', 'good good good good good',
  // whitespace kinds and odd characters
  'good\tfood\nnice', 'good\u00a0food', 'naïve but lovely', 'café is great', 'Ünited STATES', 'ÉCOLE good',
];

function sentences(text) {
  const out = [];
  for (const para of text.split('\n')) {
    for (const s of para.split(/(?<=[.!?])\s+(?=[A-Z"])/)) {
      if (s.trim().length > 0) out.push(s.trim());
    }
  }
  return out;
}

const heldout = sentences(fs.readFileSync(path.join(root, 'samples', 'sentiment', 'heldout.txt'), 'utf8'));
const prompts = fs.readFileSync(path.join(root, 'samples', 'sentiment', 'prompts.jsonl'), 'utf8')
  .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l).prompt);
const outputsDir = path.join(root, 'docs', 'sentiment', 'afinn');
const outputs = [];
for (const file of fs.readdirSync(outputsDir).filter((f) => f.endsWith('.jsonl') && f !== 'prompts.jsonl').sort()) {
  const lines = fs.readFileSync(path.join(outputsDir, file), 'utf8').split('\n').filter((l) => l.trim());
  for (let i = 0; i < lines.length && i < 100; i += 10) outputs.push(JSON.parse(lines[i]).text);
}

const texts = [];
const seen = new Set();
for (const t of [...rules, ...heldout.slice(0, 120), ...prompts.slice(0, 100), ...outputs]) {
  if (!seen.has(t)) {
    seen.add(t);
    texts.push(t);
  }
}
const dir = path.join(root, 'tests', 'WeakToStrong.Tests', 'TestData', 'vader');
fs.mkdirSync(dir, {recursive: true});
const lines = texts.map((text) => {
  const s = vader.SentimentIntensityAnalyzer.polarity_scores(text);
  return JSON.stringify({text, compound: s.compound, pos: s.pos, neu: s.neu, neg: s.neg});
});
fs.writeFileSync(path.join(dir, `vader-sentiment-${version}.jsonl`), lines.join('\n') + '\n');
console.log(`${lexicon.size} lexicon entries; ${texts.length} sentences (${rules.length} hand-made, ` +
  `${Math.min(120, heldout.length)} held-out, ${Math.min(100, prompts.length)} prompts, ${outputs.length} model outputs)`);
