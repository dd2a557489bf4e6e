// Headless Chromium checks of the demo page through its URL contract, against Hugging Face's
// goldens in ../shared: every tiny model of fixtures/tiny (classification, 1e-4), a few short
// SST-2 sentences on models/minilm-sst2 (1e-4), the shortest SQuAD question on
// models/distilminilm-squad (same span, score within 1e-3 relative), the two shortest sentences of
// fixtures/embeddings.hf.jsonl on the f32 all-MiniLM-L6-v2 (EMBED_MODEL_DIR, from
// scripts/fetch-models.sh; 1e-5 as natively), the other tasks on fixtures/tiny2 (NER with two
// aggregations, fill-mask, zero-shot, rerank: transformers' JSON, scores within 1e-4), and a
// missing model's error.
// Prints each check, the page's timings, and a closing "N passed, N failed" line.
//   node web/test.mjs SHARED_DIR [CHROMIUM] [EMBED_MODEL_DIR]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { serve } from './serve.mjs';

const shared = path.resolve(process.argv[2] || '../shared');
const chromium = process.argv[3] || '/usr/bin/chromium';
const embedDir = process.argv[4];
const here = path.dirname(fileURLToPath(import.meta.url));
const jsonl = (p) => fs.readFileSync(path.join(shared, p), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const PAGE_TIMEOUT_MS = Number(process.env.WGFORMER_WEB_TIMEOUT_MS || 300000);

if (!fs.existsSync(path.join(here, 'pkg', 'wgformer_bg.wasm'))) {
  console.error('web tests: FAILED: web/pkg is missing; run bash web/build.sh first');
  process.exit(1);
}

// Model folders by name: every tiny model and the task models, served where they lie.
const tinyRows = jsonl('fixtures/tiny/tiny-pipeline.hf.jsonl');
const models = {};
for (const r of tinyRows) models[r.model] = path.join(shared, 'fixtures/tiny', r.model);
for (const m of fs.readdirSync(path.join(shared, 'models'))) models[m] = path.join(shared, 'models', m);
const taskRows = jsonl('fixtures/tiny2/tiny-tasks.hf.jsonl');
for (const r of taskRows) models[r.model] = path.join(shared, 'fixtures/tiny2', r.model);
if (embedDir) {
  if (!fs.existsSync(path.join(embedDir, 'config.json'))) {
    console.error(`web tests: FAILED: no model at ${embedDir} (run scripts/fetch-models.sh)`);
    process.exit(1);
  }
  models['all-MiniLM-L6-v2'] = path.resolve(embedDir);
}

const server = await serve(here, models);
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: [
    '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run',
  ],
});

let passed = 0;
let failed = 0;
const timings = [];
function check(name, ok, why) {
  if (ok) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failed++;
    console.log(`not ok - ${name}: ${why}`);
  }
}

/** Opens the page with `query`, waits for <pre id="result">, returns {result, timings, adapter}. */
async function runPage(query) {
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  page.on('pageerror', (e) => logs.push(String(e)));
  try {
    await page.goto(`${origin}/?${new URLSearchParams(query)}`);
    await page.waitForSelector('#result[data-state]', { timeout: PAGE_TIMEOUT_MS });
    return await page.evaluate(() => ({
      result: JSON.parse(document.getElementById('result').textContent),
      timings: JSON.parse(document.getElementById('timings').dataset.timings || '{}'),
      adapter: document.getElementById('adapter').textContent,
    }));
  } catch (e) {
    return { result: { error: `page did not answer: ${e.message}; console: ${logs.slice(-5).join(' | ')}` }, timings: {} };
  } finally {
    await page.close();
  }
}

/** Labels in order with scores within `tol`; labels whose scores tie within `tol` may swap. */
function sameLabels(got, want, tol) {
  if (!Array.isArray(got) || got.length !== want.length) return `got ${JSON.stringify(got)}`;
  for (let i = 0; i < want.length; i++) {
    const g = got.find((x) => x.label === want[i].label);
    if (!g) return `label ${want[i].label} missing from ${JSON.stringify(got)}`;
    if (Math.abs(g.score - want[i].score) > tol) return `${want[i].label}: ${g.score} vs ${want[i].score}`;
    if (got[i].label !== want[i].label && Math.abs(got[i].score - want[i].score) > tol) {
      return `order: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`;
    }
  }
  return null;
}

const byModel = new Map();
for (const r of tinyRows) byModel.set(r.model, [...(byModel.get(r.model) || []), r]);
let adapterShown = false;
for (const [model, rows] of byModel) {
  const q = [['model', `/models/${model}`], ['task', 'classify'], ['top_k', 'all']];
  for (const r of rows) q.push(['text', r.text], ['text_pair', r.text_pair ?? '']);
  const page = await runPage(q);
  if (!adapterShown && page.adapter) {
    console.log(page.adapter);
    adapterShown = true;
  }
  if (!Array.isArray(page.result)) {
    check(`${model}: classification`, false, JSON.stringify(page.result));
    continue;
  }
  rows.forEach((r, i) => {
    const why = sameLabels(page.result[i], r.hf, 1e-4);
    check(`${model}: ${JSON.stringify(r.text).slice(0, 40)}${r.text_pair ? ' + pair' : ''}`, !why, why);
  });
  timings.push({ model, ...page.timings });
}

// The shortest SST-2 sentences: the software adapter is slow.
if (models['minilm-sst2']) {
  const rows = jsonl('fixtures/sst2-visible.hf.jsonl').sort((a, b) => a.sentence.length - b.sentence.length).slice(0, 4);
  const q = [['model', '/models/minilm-sst2'], ['task', 'classify'], ['top_k', 'all'], ['repeat', '2']];
  for (const r of rows) q.push(['text', r.sentence]);
  const page = await runPage(q);
  rows.forEach((r, i) => {
    const got = Array.isArray(page.result) ? page.result[i] : page.result;
    const why = sameLabels(got, r.hf, 1e-4);
    check(`minilm-sst2: ${JSON.stringify(r.sentence)}`, !why, why);
  });
  timings.push({ model: 'minilm-sst2', texts: rows.length, ...page.timings });
}

if (models['distilminilm-squad']) {
  const r = jsonl('fixtures/squad-visible.hf.jsonl').sort((a, b) => a.context.length - b.context.length)[0];
  const page = await runPage([['model', '/models/distilminilm-squad'], ['task', 'qa'], ['question', r.question], ['context', r.context], ['repeat', '2']]);
  const g = page.result;
  const ok = g && g.answer === r.answer && g.start === r.start && g.end === r.end && Math.abs(g.score - r.score) <= 1e-3 * r.score;
  check(`distilminilm-squad: ${JSON.stringify(r.question)}`, ok, `got ${JSON.stringify(g)}, want ${JSON.stringify({ answer: r.answer, score: r.score, start: r.start, end: r.end })}`);
  timings.push({ model: 'distilminilm-squad', ...page.timings });
}

if (models['all-MiniLM-L6-v2']) {
  const rows = jsonl('fixtures/embeddings.hf.jsonl').filter((r) => r.sentence).sort((a, b) => a.sentence.length - b.sentence.length).slice(0, 2);
  const q = [['model', '/models/all-MiniLM-L6-v2'], ['task', 'embed']];
  for (const r of rows) q.push(['text', r.sentence]);
  const page = await runPage(q);
  rows.forEach((r, i) => {
    const got = Array.isArray(page.result) ? page.result[i] : null;
    let worst = Infinity;
    if (Array.isArray(got) && got.length === r.embedding.length) {
      worst = Math.max(...got.map((x, k) => Math.abs(x - r.embedding[k])));
    }
    check(`all-MiniLM-L6-v2 embedding: ${JSON.stringify(r.sentence)}`, worst < 1e-5, `max |diff| ${worst} (${JSON.stringify(got ?? page.result).slice(0, 200)})`);
  });
  timings.push({ model: 'all-MiniLM-L6-v2', texts: rows.length, ...page.timings });
}

/** Equal JSON, numbers under a `score`/`scores` key within `tol`. */
function sameJson(got, want, tol, scores = false) {
  if (Array.isArray(want)) {
    return Array.isArray(got) && got.length === want.length && want.every((w, i) => sameJson(got[i], w, tol, scores));
  }
  if (want && typeof want === 'object') {
    return got && typeof got === 'object' && Object.keys(want).length === Object.keys(got).length &&
      Object.keys(want).every((k) => sameJson(got[k], want[k], tol, k === 'score' || k === 'scores'));
  }
  if (typeof want === 'number' && scores) return typeof got === 'number' && Math.abs(got - want) <= tol;
  return got === want;
}

/** The first rows of `task` on `model` whose args match `pick`, run through the page at once. */
async function taskCheck(task, model, pageTask, pick, query, n = 2) {
  const rows = taskRows.filter((r) => r.task === task && r.model === model && pick(r) && !(r.hf && r.hf.error)).slice(0, n);
  if (rows.length === 0) {
    check(`${model}: ${pageTask} rows`, false, 'no fixture rows');
    return;
  }
  const q = [['model', `/models/${model}`], ['task', pageTask], ...query(rows[0])];
  for (const r of rows) q.push(['text', r.inputs.text]);
  const page = await runPage(q);
  rows.forEach((r, i) => {
    const got = Array.isArray(page.result) ? page.result[i] : page.result;
    check(`${model} ${pageTask} ${JSON.stringify(r.args)}: ${JSON.stringify(r.inputs.text).slice(0, 40)}`,
      sameJson(got, r.hf, 1e-4), `got ${JSON.stringify(got).slice(0, 300)}, want ${JSON.stringify(r.hf).slice(0, 300)}`);
  });
  timings.push({ model, task: pageTask, ...page.timings });
}

for (const agg of ['none', 'simple']) {
  await taskCheck('token-classification', 'tiny-bert-ner', 'ner', (r) => r.args.aggregation_strategy === agg,
    () => [['aggregation_strategy', agg]]);
}
await taskCheck('fill-mask', 'tiny-roberta-mlm', 'fill-mask', (r) => r.args.top_k === 5, () => [['top_k', '5']]);
await taskCheck('zero-shot-classification', 'tiny-bert-nli', 'zero-shot',
  (r) => r.args.multi_label === false && !r.args.hypothesis_template,
  (r) => [['labels', r.inputs.candidate_labels.join(',')]], 1);
{
  // Rerank: one query's documents, best first, with the pipeline's scores.
  const rows = taskRows.filter((r) => r.model === 'tiny-bert-cross' && r.inputs.text_pair);
  const query = rows[0].inputs.text;
  const docs = rows.filter((r) => r.inputs.text === query);
  const q = [['model', '/models/tiny-bert-cross'], ['task', 'rerank'], ['query', query]];
  for (const r of docs) q.push(['text', r.inputs.text_pair]);
  const page = await runPage(q);
  const want = docs.map((r, i) => ({ index: i, score: r.hf.pipeline[0].score, text: r.inputs.text_pair }))
    .sort((a, b) => b.score - a.score);
  const ok = Array.isArray(page.result) && page.result.length === want.length &&
    page.result.every((g, k) => Math.abs(g.score - want.find((w) => w.index === g.index).score) <= 1e-4 &&
      g.text === docs[g.index].inputs.text_pair && (k === 0 || page.result[k - 1].score >= g.score));
  check(`tiny-bert-cross rerank: ${docs.length} documents`, ok, `got ${JSON.stringify(page.result).slice(0, 300)}, want ${JSON.stringify(want).slice(0, 300)}`);
}

{
  // Calls made without awaiting the previous one are queued, each with its own answer.
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  const got = await page.evaluate(async () => {
    const { open, loadModel } = await import('./wgformer.js');
    const engine = await open();
    const m = await loadModel(engine, '/models/tiny-bert', 'classify');
    // Same length: one graph, so the calls really contend for it.
    const texts = ['a gorgeous movie', 'a boring film', 'the dull plot', 'one more line'];
    const all = await Promise.all(texts.map((t) => m.pipeline.classify([t], [], 'all')));
    const alone = [];
    for (const t of texts) alone.push(await m.pipeline.classify([t], [], 'all'));
    return { all, alone };
  }).catch((e) => ({ error: String(e) }));
  await page.close();
  check('overlapping calls on one model take turns on its graph, each with its own answer',
    !got.error && JSON.stringify(got.all) === JSON.stringify(got.alone), JSON.stringify(got).slice(0, 300));
}

{
  const page = await runPage([['model', '/models/no-such-model'], ['task', 'classify'], ['text', 'hello']]);
  const e = page.result && page.result.error;
  check('a missing model shows the error', typeof e === 'string' && e.includes('404') && e.includes('config.json'), JSON.stringify(page.result));
}

await browser.close();
server.close();
console.log('timings (ms, SwiftShader): ' + JSON.stringify(timings));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
