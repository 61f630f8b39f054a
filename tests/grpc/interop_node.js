// interop_node.js: @grpc/grpc-js against the C test server (grpc_test_server):
// unary, streaming, metadata, error status + message, deadline, unknown
// method, cancellation, concurrency, then a graceful SIGTERM with no leak.
// Usage (via interop_node.sh): node interop_node.js SERVER_BINARY ECHO_PROTO
'use strict';
const { spawn } = require('child_process');
const readline = require('readline');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [serverBin, protoPath] = process.argv.slice(2);
const def = loader.loadSync(protoPath, { keepCase: true, defaults: true });
const Echo = grpc.loadPackageDefinition(def).vt.test.Echo;
const failures = [];
function check(name, cond, detail) {
  console.log((cond ? 'ok   ' : 'FAIL ') + name + (!cond && detail !== undefined ? ' ' + JSON.stringify(detail) : ''));
  if (!cond) failures.push(name);
}
const unary = (c, req, opts = {}, md = new grpc.Metadata()) =>
  new Promise((resolve) => c.Say(req, md, opts, (err, rep) => resolve({ err, rep })));
function streamAll(c, req, opts = {}) {
  return new Promise((resolve) => {
    const got = [];
    const call = c.Stream(req, new grpc.Metadata(), opts);
    call.on('data', (m) => got.push(m));
    call.on('error', (err) => resolve({ err, got }));
    call.on('end', () => resolve({ err: null, got }));
  });
}

async function main() {
  const srv = spawn(serverBin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => srv.on('exit', (code) => resolve(code)));
  const line = await new Promise((resolve) => readline.createInterface({ input: srv.stdout }).once('line', resolve));
  const port = Number(line.split(' ')[1]);
  const c = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());

  const md = new grpc.Metadata();
  md.set('authorization', 'Bearer node');
  let r = await unary(c, { msg: 'hi', vec: [0.5, 1.5] }, { deadline: Date.now() + 5000 }, md);
  check('unary', !r.err && r.rep.msg === 'hi' && r.rep.vec.length === 2, r.err && r.err.message);
  check('metadata', !r.err && r.rep.auth === 'Bearer node');
  check('deadline header', !r.err && r.rep.had_deadline === true);

  let s = await streamAll(c, { msg: 's', count: 25 });
  check('streaming', !s.err && s.got.map((m) => m.n).join() === [...Array(25).keys()].join(), s.err && s.err.message);

  const msg = 'collection "x" not found: 100% g\u00fcltig';
  r = await unary(c, { fail_code: 5, fail_msg: msg });
  check('error status', r.err && r.err.code === grpc.status.NOT_FOUND && r.err.details === msg, r.err && [r.err.code, r.err.details]);
  s = await streamAll(c, { count: 2, fail_code: 10, fail_msg: 'stop' });
  check('stream error', s.err && s.err.code === grpc.status.ABORTED && s.err.details === 'stop', s.err && [s.err.code, s.err.details, s.got.length]);

  r = await unary(c, { delay_ms: 3000 }, { deadline: Date.now() + 200 });
  check('deadline', r.err && r.err.code === grpc.status.DEADLINE_EXCEEDED, r.err && r.err.code);

  const nope = await new Promise((resolve) =>
    c.makeUnaryRequest('/vt.test.Echo/Nope', (x) => x, (x) => x, Buffer.alloc(0), (err) => resolve(err)));
  check('unknown method', nope && nope.code === grpc.status.UNIMPLEMENTED, nope && nope.code);

  const cancelled = await new Promise((resolve) => {
    const call = c.Stream({ count: 1000, delay_ms: 5 });
    let n = 0;
    call.on('data', () => { if (++n === 3) call.cancel(); });
    call.on('error', (err) => resolve({ err, n }));
    call.on('end', () => resolve({ err: null, n }));
  });
  check('cancel', cancelled.err && cancelled.err.code === grpc.status.CANCELLED && cancelled.n === 3);

  const many = await Promise.all([...Array(200).keys()].map((i) => unary(c, { msg: String(i), delay_ms: i % 3 })));
  check('concurrent', many.every((x, i) => !x.err && x.rep.msg === String(i)));

  const inflight = unary(c, { msg: 'inflight', delay_ms: 300 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  srv.kill('SIGTERM');
  r = await inflight;
  check('in flight at shutdown', !r.err && r.rep.msg === 'inflight', r.err && r.err.message);
  c.close();
  const code = await exited;
  check('server exit (no leak)', code === 0, code);
  console.log(`${failures.length} failure(s)`);
  process.exit(failures.length ? 1 : 0);
}
main().catch((e) => { console.error(e); process.exit(1); });
