// The demo page. URL contract (a link reproduces a result): `model` (base URL of a model folder),
// `task` (qa | classify | embed | ner | fill-mask | zero-shot | rerank; default from the config),
// `question` + `context`, or `text` (repeatable; `text_pair` repeatable alongside; for rerank the
// documents, with `query`), `top_k` (default 1; fill-mask 5), `aggregation_strategy` (ner,
// default none), `targets` (fill-mask, comma-separated), `labels` (zero-shot, comma-separated),
// `hypothesis_template`, `multi_label` (true), `raw_scores` (rerank: true), `repeat` (extra timed
// runs), `kernels` (auto | gpu | cpu variants). Once loaded it runs the inputs and writes the JSON result into <pre id="result">, or
// {"error": ...} there.

import { open, adapterInfo, loadModel } from './wgformer.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let engine = null;
const loaded = new Map(); // "url task" -> loadModel's answer

function showResult(value, isError) {
  const pre = $('result');
  pre.textContent = JSON.stringify(value);
  pre.className = isError ? 'error' : '';
  pre.dataset.state = isError ? 'error' : 'done';
}

function fail(e) {
  const msg = e instanceof Error ? e.message : String(e);
  showResult({ error: msg }, true);
  $('view').textContent = '';
}

function showProgress(p) {
  $('progress').hidden = p.done;
  $('bar').max = p.total || 1;
  $('bar').value = p.loaded;
  const mb = (n) => (n / 1e6).toFixed(1);
  $('progress-text').textContent = `${p.file ?? ''} ${mb(p.loaded)} / ${mb(p.total)} MB`;
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

// Character offsets count Unicode code points (Python's str), so slice by code points.
function highlight(context, start, end) {
  const cps = [...context];
  const part = (a, b) => escapeHtml(cps.slice(a, b).join(''));
  return `${part(0, start)}<mark>${part(start, end)}</mark>${part(end, cps.length)}`;
}

function render(task, inputs, result) {
  const view = $('view');
  if (task === 'qa') {
    const best = Array.isArray(result) ? result[0] : result;
    view.innerHTML = best
      ? `<p><b>${escapeHtml(best.answer)}</b> (score ${best.score.toFixed(4)})</p><p>${highlight(inputs.context, best.start, best.end)}</p>`
      : '<p>No answer found.</p>';
  } else if (task === 'classify') {
    view.innerHTML = result
      .map((labels, i) => {
        const head = `<p>${escapeHtml(inputs.texts[i])}</p>`;
        if (labels.error) return head + `<p class="error">${escapeHtml(labels.error)}</p>`;
        return head + labels
          .map((l) => `<div class="bar"><span class="name">${escapeHtml(l.label)}</span><span class="fill" style="width:${(l.score * 20).toFixed(2)}rem"></span>${l.score.toFixed(4)}</div>`)
          .join('');
      })
      .join('');
  } else if (task !== 'embed') {
    // NER, fill-mask, zero-shot and rerank: transformers' JSON, one block per input.
    view.innerHTML = `<pre class="json">${escapeHtml(JSON.stringify(result, null, 1))}</pre>`;
  } else {
    const vecs = result.map((v) => (Array.isArray(v) ? v : null));
    const cos = (a, b) => {
      let d = 0, na = 0, nb = 0;
      for (let k = 0; k < a.length; k++) { d += a[k] * b[k]; na += a[k] * a[k]; nb += b[k] * b[k]; }
      return d / Math.sqrt(na * nb);
    };
    const rows = inputs.texts.map((t, i) =>
      `<tr><th>${escapeHtml(t)}</th>${inputs.texts.map((_, j) => `<td>${vecs[i] && vecs[j] ? cos(vecs[i], vecs[j]).toFixed(3) : '—'}</td>`).join('')}</tr>`);
    view.innerHTML = `<p>Cosine similarity of the sentence embeddings (${vecs[0]?.length ?? 0} dimensions)</p><table class="sim">${rows.join('')}</table>`;
  }
}

async function runOnce(m, inputs) {
  const p = m.pipeline;
  if (m.task === 'qa') return JSON.parse(await p.qa(inputs.question, inputs.context, inputs.topK === 'all' ? 1 : Number(inputs.topK) || 1));
  if (m.task === 'classify') return JSON.parse(await p.classify(inputs.texts, inputs.pairs, inputs.topK));
  if (m.task === 'ner') return JSON.parse(await p.ner(inputs.texts, inputs.aggregation));
  if (m.task === 'fill-mask') return JSON.parse(await p.fill(inputs.texts, Number(inputs.topKOr5) || 5, inputs.targets));
  if (m.task === 'zero-shot') return JSON.parse(await p.zero_shot(inputs.texts, inputs.labels, inputs.template, inputs.multiLabel));
  if (m.task === 'rerank') return JSON.parse(await p.rerank(inputs.query, inputs.texts, inputs.rawScores));
  return JSON.parse(await p.embed(inputs.texts));
}

async function run(q) {
  $('result').textContent = '';
  delete $('result').dataset.state;
  const model = q.get('model');
  if (!model) return;
  const inputs = {
    question: q.get('question') ?? '',
    context: q.get('context') ?? '',
    texts: q.getAll('text'),
    pairs: q.getAll('text_pair'),
    topK: q.get('top_k') ?? '1',
    topKOr5: q.get('top_k') ?? '5',
    aggregation: q.get('aggregation_strategy') ?? 'none',
    targets: (q.get('targets') ?? '').split(',').map((t) => t.trim()).filter(Boolean),
    labels: (q.get('labels') ?? '').split(',').map((t) => t.trim()).filter(Boolean),
    template: q.get('hypothesis_template') ?? '',
    multiLabel: q.get('multi_label') === 'true',
    query: q.get('query') ?? '',
    rawScores: q.get('raw_scores') === 'true',
  };
  const key = `${model} ${q.get('task') ?? ''}`;
  let m = loaded.get(key);
  const timings = {};
  if (!m) {
    m = await loadModel(engine, new URL(model, location.href).href, q.get('task') || null, showProgress);
    loaded.set(key, m);
    Object.assign(timings, { download_ms: m.downloadMs, build_ms: m.buildMs, mb: m.bytes / 1e6 });
  }
  if (m.task !== 'qa' && inputs.texts.length === 0) throw new Error('give at least one `text` to run');
  if (m.task === 'qa' && (!inputs.question || !inputs.context)) throw new Error('give a `question` and a `context`');
  let t = performance.now();
  const result = await runOnce(m, inputs);
  timings.first_run_ms = performance.now() - t;
  const repeat = Number(q.get('repeat') ?? 0);
  if (repeat > 0) {
    t = performance.now();
    for (let i = 0; i < repeat; i++) await runOnce(m, inputs);
    timings.run_ms = (performance.now() - t) / repeat;
  }
  const el = $('timings');
  el.dataset.timings = JSON.stringify(timings);
  el.textContent = Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(' · ');
  render(m.task, inputs, result);
  showResult(result, false);
}

function fillForm(q) {
  $('model').value = q.get('model') ?? '';
  $('task').value = q.get('task') ?? '';
  $('question').value = q.get('question') ?? '';
  $('context').value = q.get('context') ?? '';
  $('texts').value = q.getAll('text').join('\n');
  $('labels').value = q.get('labels') ?? '';
  $('query').value = q.get('query') ?? '';
}

$('form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams();
  q.set('model', $('model').value);
  if ($('task').value) q.set('task', $('task').value);
  if ($('question').value) q.set('question', $('question').value);
  if ($('context').value) q.set('context', $('context').value);
  for (const t of $('texts').value.split('\n').filter((t) => t.trim())) q.append('text', t);
  if ($('labels').value) q.set('labels', $('labels').value);
  if ($('query').value) q.set('query', $('query').value);
  history.replaceState(null, '', `?${q}`);
  run(q).catch(fail);
});

async function main() {
  fillForm(params);
  try {
    engine = await open(params.get('kernels') || 'auto');
    const a = adapterInfo(engine);
    $('adapter').textContent = `Adapter: ${a.name} — ${a.describe}; features: ${a.features.join(', ') || 'none'}`;
  } catch (e) {
    $('adapter').textContent = 'No WebGPU.';
    fail(e);
    return;
  }
  try {
    await run(params);
  } catch (e) {
    fail(e);
  }
}

main();
