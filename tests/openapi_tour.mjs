// openapi_tour.mjs — the real answers of primed checked against its own /openapi.json.
//
// node tests/openapi_tour.mjs NPM_DIR MAIN_PORT DEBUG_PORT TOKEN STRESS_PORT SPEC_FILE
//   MAIN/DEBUG: a primed started by tests/test_openapi.sh with small limits, rate limiting per
//   X-Forwarded-For client and a debug token; STRESS: one with 1 worker, a 1-slot queue and a
//   short deadline (503 overloaded, 504 deadline_exceeded).
// A tour over raw sockets (control bytes, slow and oversized bodies are requests no HTTP library
// sends) visits every operation of the description and provokes every error code of its error
// table; each answer must be a status its operation documents, and its body must validate (ajv,
// JSON Schema 2020-12) against the schema documented for that status and media type. Then: every
// operation was visited, every code was seen (but those named on the EXPECT_UNSEEN line).
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [npmDir, mainPort, debugPort, token, stressPort, specFile] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(npmDir), 'node_modules', 'x.js'));
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats');
const spec = JSON.parse(fs.readFileSync(specFile, 'utf8'));

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('uint64', { type: 'number', validate: (x) => Number.isInteger(x) && x >= 0 });
ajv.addSchema(spec, 'primed-openapi');

let failures = 0, checked = 0;
const fail = (msg) => { failures++; console.log(`FAIL ${msg}`); };
const visited = new Set(); // "get /v1/count"
const codesSeen = new Set();

// ---- a raw HTTP/1.1 client: one request per connection, the whole answer until close --------
function raw(port, head, body = '', { timeoutMs = 20000 } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    const sock = net.connect(Number(port), '127.0.0.1');
    const timer = setTimeout(() => sock.destroy(), timeoutMs);
    sock.on('connect', () => {
      sock.write(head);
      if (body) sock.write(body); // may be shorter than its Content-Length: a stalled body
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve(parse(Buffer.concat(chunks))); });
  });
}

function dechunk(buf) {
  const out = [];
  let i = 0;
  while (i < buf.length) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) break;
    const n = parseInt(buf.slice(i, eol).toString(), 16);
    if (!n) break;
    out.push(buf.slice(eol + 2, eol + 2 + n));
    i = eol + 2 + n + 2;
  }
  return Buffer.concat(out);
}

function parse(buf) {
  const sep = buf.indexOf('\r\n\r\n');
  if (sep < 0) return { status: 0, headers: {}, body: Buffer.alloc(0) };
  const lines = buf.slice(0, sep).toString('latin1').split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  let body = buf.slice(sep + 4);
  if ((headers['transfer-encoding'] || '').includes('chunked')) body = dechunk(body);
  return { status, headers, body };
}

let client = 0;
function request(port, method, target, { headers = {}, body = '', xff } = {}) {
  client++;
  const h = { Host: 'localhost', Connection: 'close',
              'X-Forwarded-For': xff || `10.7.${client >> 8 & 255}.${client & 255}`, ...headers };
  if (body && !('Content-Length' in h)) h['Content-Length'] = Buffer.byteLength(body);
  const head = `${method} ${target} HTTP/1.1\r\n` +
    Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return raw(port, head, body);
}

// ---- checking one answer against the description ------------------------------------------
const ptr = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const deref = (o) => {
  while (o && o.$ref) o = o.$ref.slice(2).split('/').reduce((a, k) => a[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
  return o;
};
function refOf(o, base) { // the JSON pointer (into the spec) of the object o stands for
  while (o && o.$ref) { base = o.$ref.slice(1); o = deref(o); }
  return base;
}

function check(label, method, p, r, want) {
  checked++;
  const key = `${method.toLowerCase()} ${p}`;
  const op = spec.paths[p] && spec.paths[p][method.toLowerCase()];
  if (want !== undefined && r.status !== want) fail(`${label}: status ${r.status}, wanted ${want}`);
  let respObj, base;
  if (op) {
    visited.add(key);
    respObj = op.responses[String(r.status)];
    base = `/paths/${ptr(p)}/${method.toLowerCase()}/responses/${r.status}`;
    if (!respObj) return fail(`${label}: ${r.status} is not documented for ${key}`);
  } else { // an unknown path: its answer is still one of the documented errors
    respObj = spec.components.responses[`E${r.status}`];
    base = `/components/responses/E${r.status}`;
    if (!respObj) return fail(`${label}: ${r.status} for an unknown path is no documented error`);
  }
  base = refOf(respObj, base);
  respObj = deref(respObj);
  for (const h of Object.keys(r.headers))
    if (/^ratelimit-|^retry-after$/.test(h) && !Object.keys(respObj.headers || {}).some((d) => d.toLowerCase() === h))
      fail(`${label}: header ${h} is not documented for ${r.status}`);
  if (r.status === 429 && !r.headers['retry-after']) fail(`${label}: a 429 without Retry-After`);
  const media = (r.headers['content-type'] || '').split(';')[0].trim();
  const content = respObj.content || {};
  if (!Object.keys(content).length) return; // a debug answer: described by its summary only
  if (!content[media]) return fail(`${label}: ${media} is not documented for ${r.status} of ${key}`);
  if (media !== 'application/json') return;
  let body;
  try { body = JSON.parse(r.body.toString('utf8')); } catch (e) { return fail(`${label}: body is not JSON: ${e.message}`); }
  if (body && body.error && body.error.code) codesSeen.add(body.error.code);
  const validate = ajv.getSchema(`primed-openapi#${base}/content/${ptr(media)}/schema`);
  if (!validate(body)) fail(`${label}: ${JSON.stringify(body).slice(0, 200)} does not validate: ${ajv.errorsText(validate.errors)}`);
}

async function get(label, p, query = '', want, opts = {}) {
  const r = await request(opts.port || mainPort, opts.method || 'GET', p + query, opts);
  check(label, opts.method || 'GET', p, r, want);
  return r;
}

// ---- the tour -------------------------------------------------------------------------------
const auth = { Authorization: `Bearer ${token}` };
const dbg = (extra = {}) => ({ port: debugPort, headers: { ...auth, ...extra } });

async function tourApi() {
  await get('primes json', '/v1/primes', '?from=1&to=100', 200);
  await get('primes text', '/v1/primes', '?from=1&to=100&format=text', 200);
  await get('primes accept text', '/v1/primes', '?from=1&to=10', 200, { headers: { Accept: 'text/plain' } });
  await get('primes empty', '/v1/primes', '?from=24&to=28', 200);
  await get('count', '/v1/count', '?from=1&to=1e6', 200);
  await get('isprime', '/v1/isprime', '?n=18446744073709551557', 200);
  await get('nth', '/v1/nth', '?n=1000', 200);
  await get('pi', '/v1/pi', '?x=1e9', 200);
  await get('next', '/v1/next', '?n=100', 200);
  await get('prev', '/v1/prev', '?n=100', 200);
  await get('twin yes', '/v1/twin', '?n=11', 200);
  await get('twin no', '/v1/twin', '?n=13', 200);
  await get('factor', '/v1/factor', '?n=18446744073709551615', 200);
  await get('factor 1', '/v1/factor', '?n=1', 200);
  const queries = [{ op: 'isprime', n: 7 }, { op: 'count', from: 1, to: '1e4' }, { op: 'nth', n: 0 },
    { op: 'prev', n: 2 }, { op: 'factor', n: '12' }];
  const json = { 'Content-Type': 'application/json' };
  await get('batch', '/v1/batch', '', 200, { method: 'POST', headers: json, body: JSON.stringify({ queries }) });
  await get('batch op list', '/v1/batch', '', 200, { method: 'POST', headers: json,
    body: JSON.stringify({ queries: [{ op: 'twin', n: 5 }, { op: 'pi', x: 100 }, { op: 'next', n: 1 }] }) });
}

async function tourErrors() {
  await get('bad_parameter', '/v1/count', '?from=x&to=1', 400);
  await get('missing_parameter', '/v1/count', '?from=1', 400);
  await get('unknown_parameter', '/v1/isprime', '?n=1&zz=1', 400);
  await get('limit_exceeded', '/v1/primes', '?from=0&to=1e7', 400);
  await get('nth over max_nth', '/v1/nth', '?n=1e10', 400);
  await get('bad_request', '/v1/isprime', '?n=1', 400, { headers: { 'X-Odd': 'a\x01b' } });
  await get('bad_json', '/v1/batch', '', 400, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"queries":' });
  await get('too many queries', '/v1/batch', '', 400, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ queries: Array(6).fill({ op: 'isprime', n: 1 }) }) });
  await get('unauthorized', '/debug/pprof/cmdline', '', 401, { port: debugPort });
  await get('not_found', '/nope', '', 404);
  await get('no_such_prime', '/v1/prev', '?n=2', 404);
  await get('no_such_prime next', '/v1/next', '?n=18446744073709551557', 404);
  await get('method_not_allowed', '/v1/count', '?from=1&to=2', 405, { method: 'POST' });
  await get('request_timeout', '/v1/batch', '', 408, { method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': '100' }, body: '{' });
  await get('body_too_large', '/v1/batch', '', 413, { method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': '100000' } });
  await get('uri_too_long', '/v1/isprime', `?n=7&pad=${'0'.repeat(600)}`, 414);
  await get('unsupported_media_type', '/v1/batch', '', 415, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' });
  await get('headers_too_large', '/healthz', '', 431, { headers: { 'X-Big': 'a'.repeat(10000) } });
  let r;
  for (let i = 0; i < 400; i++) { // one client spends its bucket: 429 rate_limited
    r = await get('rate_limited', '/v1/count', '?from=1&to=1e5', undefined, { xff: '10.9.9.9' });
    if (r.status === 429) break;
  }
  if (r.status !== 429) fail(`rate_limited: no 429 in 400 requests of one client (last ${r.status})`);
}

async function tourService() {
  const root = await get('root', '/', '', 200);
  await get('healthz', '/healthz', '', 200);
  await get('readyz', '/readyz', '', 200);
  await get('metrics', '/metrics', '', 200);
  await get('openapi', '/openapi.json', '', 200);
  const listed = JSON.parse(root.body).endpoints.concat(['/']);
  const index = (await request(debugPort, 'GET', '/debug/pprof/', { headers: auth })).body.toString();
  for (const m of index.matchAll(/href="([^"]+)"/g)) listed.push(m[1]);
  for (const p of listed) if (!spec.paths[p]) fail(`the running service's ${p} is not in /openapi.json`);
  console.log(`ok   ${new Set(listed).size} served paths (\`/\` and the debug index) are all described`);
}

async function tourDebug() {
  const two = Promise.all([get('profile', '/debug/pprof/profile', '?seconds=1', undefined, dbg()),
    new Promise((res) => setTimeout(res, 200)).then(() => get('profile twice', '/debug/pprof/profile', '?seconds=1', undefined, dbg()))]);
  for (const [p, item] of Object.entries(spec.paths)) {
    if (!item.servers || p === '/debug/pprof/profile') continue; // the debug listener's own paths
    if (item.get) await get(`debug ${p}`, p, '', undefined, dbg());
    if (item.post) await get(`debug POST ${p}`, p, '', undefined, { ...dbg(), method: 'POST', body: '0x1' });
  }
  await get('debug bad_parameter', '/debug/requests', '?limit=x', 400, dbg());
  await two;
}

async function tourStress() { // 1 worker, 1 queue slot, 300 ms deadline, nothing refused up front
  const long = '?from=1e17&to=100000010000000000';
  const rs = await Promise.all([0, 1, 2, 3].map((i) => new Promise((res) => setTimeout(res, 50 * i))
    .then(() => get(`stress ${i}`, '/v1/count', long, undefined, { port: stressPort }))));
  const st = rs.map((r) => r.status).sort();
  if (!st.includes(504)) fail(`stress: no 504 among ${st}`);
  if (!st.includes(503)) fail(`stress: no 503 among ${st}`);
}

await tourApi();
await tourErrors();
await tourService();
await tourDebug();
await tourStress();

for (const [p, item] of Object.entries(spec.paths))
  for (const m of ['get', 'post'])
    if (item[m] && !visited.has(`${m} ${p}`)) fail(`the tour never visited ${m.toUpperCase()} ${p}`);
const unseenOk = new Set((process.env.EXPECT_UNSEEN || '').split(/[ ,]+/).filter(Boolean));
const codes = spec.components.schemas.Error.properties.error.properties.code.enum;
for (const c of codes)
  if (!codesSeen.has(c) && !unseenOk.has(c)) fail(`error code ${c} was never provoked by the tour`);
console.log(`ok   ${checked} answers checked, ${visited.size} operations visited, codes seen: ${[...codesSeen].sort().join(' ')}`);
console.log(failures ? `openapi tour: ${failures} failures` : 'openapi tour: every answer validates');
process.exit(failures ? 1 : 0);
