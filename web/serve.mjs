// A tiny static server for the demo page and its tests: web/ at `/`, and model folders at
// `/models/NAME` (given as NAME=DIR pairs; nothing is copied). 127.0.0.1 only.
//   node web/serve.mjs [--port N] NAME=DIR...
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

/** Serves `root` and `models` ({name: dir}); resolves to the listening server. */
export function serve(root, models, port = 0) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    let rel = decodeURIComponent(url.pathname);
    let base = root;
    const m = rel.match(/^\/models\/([^/]+)(\/.*)?$/);
    if (m) {
      base = models[m[1]];
      rel = m[2] || '/';
    }
    const file = base && path.join(base, path.normalize(rel).replace(/^(\.\.[/\\])+/, ''));
    if (!file || !file.startsWith(path.resolve(base))) {
      res.writeHead(404).end('not found');
      return;
    }
    let target = file;
    if (fs.existsSync(target) && fs.statSync(target).isDirectory()) target = path.join(target, 'index.html');
    fs.stat(target, (err, st) => {
      if (err || !st.isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(target)] || 'application/octet-stream',
        'content-length': st.size,
        'cache-control': 'no-store',
      });
      fs.createReadStream(target).pipe(res);
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  let port = 8080;
  const models = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = Number(args[++i]);
    else {
      const [name, dir] = args[i].split('=');
      models[name] = path.resolve(dir);
    }
  }
  const root = path.dirname(fileURLToPath(import.meta.url));
  const s = await serve(root, models, port);
  console.log(`serving ${root} on http://127.0.0.1:${s.address().port}/ (models: ${Object.keys(models).join(', ') || 'none'})`);
}
