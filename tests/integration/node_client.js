// node_client.js: @grpc/grpc-js + @grpc/proto-loader against the real
// `vectron serve` (ephemeral ports, a temporary data directory): create,
// upsert, search, a streaming search, error statuses, then SIGTERM.
// Usage (via node_client.sh): node node_client.js VECTRON_BINARY VECTRON_PROTO
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [bin, protoPath] = process.argv.slice(2);
const def = loader.loadSync(protoPath, { keepCase: true, defaults: false, enums: String });
const Vectron = grpc.loadPackageDefinition(def).vectron.v1.VectronService;
const failures = [];
function check(name, cond, detail) {
  console.log((cond ? 'ok   ' : 'FAIL ') + name + (!cond && detail !== undefined ? ' ' + JSON.stringify(detail) : ''));
  if (!cond) failures.push(name);
}
const call = (c, method, req, timeoutMs = 60000) =>
  new Promise((resolve) => c[method](req, { deadline: Date.now() + timeoutMs }, (err, rep) => resolve({ err, rep })));
function stream(c, req) {
  return new Promise((resolve) => {
    const got = [];
    const s = c.SearchStream(req, { deadline: Date.now() + 60000 });
    s.on('data', (m) => got.push(m));
    s.on('error', (err) => resolve({ err, got }));
    s.on('end', () => resolve({ err: null, got }));
  });
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-it-node-'));
  let log = '';
  const srv = spawn(bin, ['serve', '--data-dir', path.join(dir, 'data'), '--rest-port', '0', '--grpc-port', '0',
    '--shards', '2', '--threads', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  srv.stderr.on('data', (b) => { log += b; });
  const exited = new Promise((resolve) => srv.on('exit', (code, sig) => resolve(sig || code)));
  const timer = setTimeout(() => { console.log('FAIL no start line within 60 s; log:\n' + log); process.exit(1); }, 60000);
  const line = await new Promise((resolve) => readline.createInterface({ input: srv.stdout }).once('line', resolve));
  clearTimeout(timer);
  const m = /gRPC on ([\d.]+):(\d+)/.exec(line);
  if (!m) { console.log('FAIL start line ' + line + '\n' + log); process.exit(1); }
  const c = new Vectron(`127.0.0.1:${m[2]}`, grpc.credentials.createInsecure());

  let r = await call(c, 'CreateCollection', { name: 'node', dimension: 3, distance: 'COSINE' });
  check('create', !r.err && r.rep.name === 'node' && r.rep.shard_count === 2 && r.rep.distance === 'COSINE', r.err || r.rep);
  const points = [];
  for (let i = 0; i < 50; i++)
    points.push({ id: 'n' + i, vector: [Math.cos(i / 10), Math.sin(i / 10), 0.1], payload: JSON.stringify({ i }) });
  r = await call(c, 'Upsert', { collection: 'node', points });
  check('upsert', !r.err && r.rep.upserted === 50 && r.rep.created === 50, r.err || r.rep);
  r = await call(c, 'Search', { collection: 'node', vector: [Math.cos(0.7), Math.sin(0.7), 0.1], top_k: 3 });
  check('search', !r.err && r.rep.results.length === 3 && r.rep.results[0].id === 'n7' &&
    Math.abs(r.rep.results[0].score - 1) < 1e-4 && JSON.parse(r.rep.results[0].payload).i === 7, r.err || r.rep);
  const s = await stream(c, { collection: 'node', vector: [1, 0, 0.1], top_k: 2, exact: true });
  const last = s.got[s.got.length - 1] || {};
  check('streaming search', !s.err && s.got.length >= 2 && last.shards_done === 2 && last.shards_total === 2 &&
    last.results[0].id === 'n0', s.err || s.got);
  r = await call(c, 'Search', { collection: 'missing', vector: [1, 0, 0] });
  check('NOT_FOUND', r.err && r.err.code === grpc.status.NOT_FOUND && /missing/.test(r.err.details), r.err);
  r = await call(c, 'Search', { collection: 'node', vector: [1, 0] });
  check('INVALID_ARGUMENT', r.err && r.err.code === grpc.status.INVALID_ARGUMENT && /vector/.test(r.err.details), r.err);
  r = await call(c, 'CreateCollection', { name: 'node', dimension: 3, distance: 'DOT' });
  check('ALREADY_EXISTS', r.err && r.err.code === grpc.status.ALREADY_EXISTS, r.err);
  const s2 = await stream(c, { collection: 'node', vector: [1, 0, 0.1], top_k: 0 });
  check('stream error status', s2.err && s2.err.code === grpc.status.INVALID_ARGUMENT && /top_k/.test(s2.err.details), s2.err);
  r = await call(c, 'Health', {});
  check('health', !r.err && r.rep.status === 'ok', r.err || r.rep);

  c.close();
  srv.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 60000))]);
  check('SIGTERM exit 0', code === 0, code);
  if (code === 'timeout') srv.kill('SIGKILL');
  if (failures.length) console.log('server log:\n' + log);
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(failures.length ? `FAILED: ${failures.join(', ')}` : 'all passed');
  process.exit(failures.length ? 1 : 0);
}
main().catch((e) => { console.log('FAIL ' + (e && e.stack || e)); process.exit(1); });
