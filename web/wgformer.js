// wgformer's JS API: open the browser's WebGPU adapter, download a Hugging Face model folder
// (with progress) and run a task on it. The Rust library (web/pkg/, built by web/build.sh) does
// the work; this module only fetches files and checks that WebGPU exists.
//
//   import { open, loadModel } from './wgformer.js';
//   const engine = await open();                       // throws a clear error without WebGPU
//   const m = await loadModel(engine, '/models/minilm-sst2', null, p => console.log(p));
//   JSON.parse(await m.pipeline.classify(['a fine film'], [], '1'));

import init, { Engine } from './pkg/wgformer.js';

/** Opens WebGPU (the first adapter the browser gives); `kernels`: auto, gpu or cpu variants. */
export async function open(kernels = 'auto') {
  if (!globalThis.navigator || !('gpu' in navigator)) {
    throw new Error(
      'WebGPU is not available in this browser (navigator.gpu is missing): use a recent ' +
        'Chrome or Edge (or a browser with WebGPU enabled), served from https or localhost');
  }
  // The browser's own adapter info names it (wgpu gets only the often empty description).
  const probe = await navigator.gpu.requestAdapter();
  if (!probe) {
    throw new Error('WebGPU gave no adapter: enable hardware acceleration (or WebGPU) in this browser');
  }
  const { vendor, architecture, description } = probe.info || {};
  await init();
  const engine = await Engine.open(kernels);
  browserInfo.set(engine, { vendor, architecture, description });
  return engine;
}

const browserInfo = new WeakMap();

/** The adapter: name, features, limits and the kernels chosen, as an object. */
export function adapterInfo(engine) {
  const a = JSON.parse(engine.adapter());
  const b = browserInfo.get(engine) || {};
  a.browser = b;
  if (!a.name) a.name = [b.vendor, b.architecture].filter(Boolean).join(' ') || 'WebGPU adapter';
  return a;
}

async function fetchFile(url, required, onBytes) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cannot download ${url}: ${e.message}`);
  }
  if (!res.ok) {
    if (!required) return null;
    throw new Error(
      `cannot download ${url}: HTTP ${res.status}` +
        (res.status === 404
          ? '. Give the base URL of a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)'
          : ''));
  }
  const total = Number(res.headers.get('content-length')) || 0;
  const reader = res.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onBytes(got, total);
  }
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * The task a config's architecture implies: qa, classify, ner, fill-mask, or embed for a base
 * model (zero-shot and rerank run on classifiers: name them with `task`).
 */
export function taskOf(config) {
  const arch = (config.architectures || [])[0] || '';
  if (arch.endsWith('ForQuestionAnswering')) return 'qa';
  if (arch.endsWith('ForSequenceClassification')) return 'classify';
  if (arch.endsWith('ForTokenClassification')) return 'ner';
  if (arch.endsWith('ForMaskedLM')) return 'fill-mask';
  return 'embed';
}

/**
 * Downloads the model folder at `baseUrl` and builds `task` (`classify`, `qa`, `embed`, `ner`,
 * `fill-mask`, `zero-shot`, `rerank`; null: from the config). `onProgress({file, loaded, total, done, bytes})` follows the downloads.
 * Resolves to `{pipeline, task, config, bytes, downloadMs, buildMs}`.
 */
export async function loadModel(engine, baseUrl, task, onProgress = () => {}) {
  const base = String(baseUrl).replace(/\/+$/, '');
  const t0 = performance.now();
  const sizes = new Map();
  const progress = (file) => (loaded, total) => {
    sizes.set(file, [loaded, total]);
    let l = 0;
    let t = 0;
    for (const [a, b] of sizes.values()) {
      l += a;
      t += b || a;
    }
    onProgress({ file, loaded: l, total: t, done: false });
  };
  const get = (name, required) => fetchFile(`${base}/${name}`, required, progress(name));
  // config.json first: a wrong URL fails fast, before the weights.
  const configBytes = await get('config.json', true);
  let config;
  try {
    config = JSON.parse(new TextDecoder().decode(configBytes));
  } catch (e) {
    throw new Error(`${base}/config.json is not valid JSON: ${e.message}`);
  }
  task = task || taskOf(config);
  const required = ['model.safetensors', 'tokenizer.json'];
  const optional = ['tokenizer_config.json', 'special_tokens_map.json'];
  if (task === 'embed') optional.push('modules.json', 'sentence_bert_config.json');
  const files = new Map([['config.json', configBytes]]);
  await Promise.all([
    ...required.map(async (n) => files.set(n, await get(n, true))),
    ...optional.map(async (n) => {
      const b = await get(n, false);
      if (b) files.set(n, b);
    }),
  ]);
  if (task === 'embed') {
    // sentence-transformers' pooling settings live in the folder modules.json names.
    let pools = ['1_Pooling'];
    if (files.has('modules.json')) {
      try {
        const mods = JSON.parse(new TextDecoder().decode(files.get('modules.json')));
        pools = mods.filter((m) => String(m.type).endsWith('Pooling')).map((m) => m.path || '1_Pooling');
      } catch {
        // The library reports the broken file with its name.
      }
    }
    for (const p of pools) {
      const name = `${p.replace(/\/+$/, '')}/config.json`;
      const b = await get(name, false);
      if (b) files.set(name, b);
    }
  }
  const t1 = performance.now();
  const names = [...files.keys()];
  const bytes = names.reduce((s, n) => s + files.get(n).length, 0);
  onProgress({ file: null, loaded: bytes, total: bytes, done: true });
  const pipeline = engine.load(base, task, names, names.map((n) => files.get(n)));
  const t2 = performance.now();
  return { pipeline, task, config, bytes, downloadMs: t1 - t0, buildMs: t2 - t1 };
}
