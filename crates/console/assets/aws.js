// Calls to Kindling's APIs on the page's own origin, as an AWS SDK makes them: Lambda (REST
// JSON), SQS and CloudWatch Logs (JSON with X-Amz-Target), CloudFormation (query protocol, XML
// answers) and the console's /_kindling/api/ endpoints. In shared mode every request is signed
// with SigV4 (HMAC-SHA256 by WebCrypto; a small SHA-256 in JavaScript where WebCrypto is
// unavailable, i.e. plain http on a non-loopback host).

const enc = new TextEncoder();

// ---- SHA-256 and HMAC ------------------------------------------------------------------------

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256js(bytes) {
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const len = bytes.length;
  const total = ((len + 9 + 63) >> 6) << 6;
  const m = new Uint8Array(total);
  m.set(bytes);
  m[len] = 0x80;
  const dv = new DataView(m.buffer);
  dv.setUint32(total - 8, Math.floor(len / 0x20000000));
  dv.setUint32(total - 4, (len << 3) >>> 0);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  h.forEach((x, i) => ov.setUint32(i * 4, x));
  return out;
}

function hmacjs(key, data) {
  let k = key.length > 64 ? sha256js(key) : key;
  const pad = new Uint8Array(64);
  pad.set(k);
  const inner = new Uint8Array(64 + data.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) { inner[i] = pad[i] ^ 0x36; outer[i] = pad[i] ^ 0x5c; }
  inner.set(data, 64);
  outer.set(sha256js(inner), 64);
  return sha256js(outer);
}

const subtle = globalThis.crypto && globalThis.crypto.subtle;

async function sha256(bytes) {
  if (subtle) return new Uint8Array(await subtle.digest('SHA-256', bytes));
  return sha256js(bytes);
}

async function hmac(key, text) {
  const data = enc.encode(text);
  if (subtle) {
    const k = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return new Uint8Array(await subtle.sign('HMAC', k, data));
  }
  return hmacjs(key, data);
}

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

// RFC 3986 encoding as SigV4 wants it.
const uriEncode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

// ---- credentials -----------------------------------------------------------------------------

const session = {
  info: null, // /_kindling/api/info
  keys: null, // {accessKeyId, secretAccessKey, sessionToken}
  onAuthNeeded: null, // set by the app: shows the credentials dialog
};

export function setCredentials(keys) {
  session.keys = keys;
  try { sessionStorage.setItem('kindling.keys', JSON.stringify(keys)); } catch (_) { /* private mode */ }
}

export function clearCredentials() {
  session.keys = null;
  try { sessionStorage.removeItem('kindling.keys'); } catch (_) { /* ignore */ }
}

export function credentials() { return session.keys; }
export function onAuthNeeded(f) { session.onAuthNeeded = f; }

export async function init() {
  const r = await fetch('/_kindling/api/info', { cache: 'no-store' });
  session.info = await r.json();
  try {
    const saved = sessionStorage.getItem('kindling.keys');
    if (saved) session.keys = JSON.parse(saved);
  } catch (_) { /* ignore */ }
  return session.info;
}

export const info = () => session.info;
export const mustSign = () => Boolean(session.info && session.info.signatureRequired);

// ---- signing ---------------------------------------------------------------------------------

async function sign(method, path, query, headers, body, service) {
  const keys = session.keys;
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const date = now.slice(0, 8);
  const region = session.info.region;
  headers['x-amz-date'] = now;
  if (keys.sessionToken) headers['x-amz-security-token'] = keys.sessionToken;
  const payloadHash = hex(await sha256(typeof body === 'string' ? enc.encode(body) : (body || new Uint8Array())));
  const all = { host: location.host, ...headers };
  const names = Object.keys(all).map((n) => n.toLowerCase()).sort();
  const lower = {};
  for (const [k, v] of Object.entries(all)) lower[k.toLowerCase()] = String(v).trim().replace(/\s+/g, ' ');
  const canonicalHeaders = names.map((n) => `${n}:${lower[n]}\n`).join('');
  const signed = names.join(';');
  const canonicalQuery = Object.entries(query || {})
    .map(([k, v]) => [uriEncode(k), uriEncode(String(v))])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
  // Services other than S3 sign the path as sent, encoded once more.
  const canonicalPath = path.split('/').map((s) => uriEncode(s)).join('/');
  const canonical = [method, canonicalPath, canonicalQuery, canonicalHeaders, signed, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', now, scope, hex(await sha256(enc.encode(canonical)))].join('\n');
  let key = enc.encode('AWS4' + keys.secretAccessKey);
  for (const part of [date, region, service, 'aws4_request']) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${keys.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

const AUTH_CODES = ['MissingAuthenticationToken', 'MissingAuthenticationTokenException',
  'InvalidClientTokenId', 'UnrecognizedClientException', 'SignatureDoesNotMatch',
  'IncompleteSignature', 'IncompleteSignatureException', 'InvalidSignatureException'];

// One request; resolves to the Response (ok) or throws ApiError. `path` is already encoded.
export async function request(method, path, { query = {}, headers = {}, body = null, service = 'lambda', signal } = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const h = { ...headers };
    if (mustSign()) {
      if (!session.keys) await askForCredentials();
      await sign(method, path, query, h, body, service);
    }
    const qs = Object.entries(query).map(([k, v]) => `${uriEncode(k)}=${uriEncode(String(v))}`).join('&');
    const r = await fetch(path + (qs ? '?' + qs : ''), { method, headers: h, body, signal, cache: 'no-store' });
    if (r.ok) return r;
    const err = await errorOf(r);
    if (mustSign() && AUTH_CODES.includes(err.code) && attempt === 0) {
      clearCredentials();
      await askForCredentials(err.message);
      continue;
    }
    throw err;
  }
  throw new ApiError(403, 'AccessDenied', 'Not signed in.');
}

function askForCredentials(why) {
  if (!session.onAuthNeeded) return Promise.reject(new ApiError(403, 'AccessDenied', 'Credentials needed.'));
  return session.onAuthNeeded(why);
}

async function errorOf(r) {
  const text = await r.text();
  let code = r.headers.get('x-amzn-errortype') || '';
  let message = '';
  try {
    const j = JSON.parse(text);
    code = j.__type || j.code || j.Code || code;
    message = j.message || j.Message || j.errorMessage || '';
  } catch (_) {
    const doc = new DOMParser().parseFromString(text, 'application/xml');
    const c = doc.querySelector('Error > Code');
    const m = doc.querySelector('Error > Message');
    if (c) code = c.textContent;
    if (m) message = m.textContent;
    if (!message) message = text.slice(0, 300);
  }
  code = code.split(':')[0].split('#').pop();
  return new ApiError(r.status, code, message);
}

// ---- services --------------------------------------------------------------------------------

export async function lambda(method, path, body) {
  const opts = { service: 'lambda' };
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers = { 'content-type': 'application/json' };
  }
  const r = await request(method, path, opts);
  const text = await r.text();
  return { json: text ? safeJson(text) : {}, headers: r.headers, text };
}

function safeJson(text) {
  try { return JSON.parse(text); } catch (_) { return text; }
}

async function jsonTarget(service, target, version, op, input) {
  const r = await request('POST', '/', {
    service,
    body: JSON.stringify(input || {}),
    headers: { 'content-type': `application/x-amz-json-${version}`, 'x-amz-target': `${target}.${op}` },
  });
  return r.json();
}

export const sqs = (op, input) => jsonTarget('sqs', 'AmazonSQS', '1.0', op, input);
export const logs = (op, input) => jsonTarget('logs', 'Logs_20140328', '1.1', op, input);

export async function cloudformation(action, params = {}) {
  const form = new URLSearchParams({ Action: action, Version: '2010-05-15', ...params }).toString();
  const r = await request('POST', '/', {
    service: 'cloudformation',
    body: form,
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
  });
  return new DOMParser().parseFromString(await r.text(), 'application/xml');
}

export async function kindling(method, path, { query, body } = {}) {
  const opts = { service: 'lambda', query: query || {} };
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers = { 'content-type': 'application/json' };
  }
  const r = await request(method, path, opts);
  return r.json();
}

// ---- StartLiveTail: an application/vnd.amazon.eventstream response ---------------------------

// Reads messages of an AWS event stream: [total len u32][headers len u32][prelude crc u32]
// [headers][payload][message crc u32]; headers are [name len u8][name][type u8][value].
export function eventStreamParser(onMessage) {
  let buf = new Uint8Array(0);
  const dec = new TextDecoder();
  return (chunk) => {
    const joined = new Uint8Array(buf.length + chunk.length);
    joined.set(buf);
    joined.set(chunk, buf.length);
    buf = joined;
    while (buf.length >= 12) {
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      const total = dv.getUint32(0);
      const hlen = dv.getUint32(4);
      if (total < 16 || total > 16 * 1024 * 1024) throw new Error('corrupt event stream');
      if (buf.length < total) break;
      const headers = {};
      let p = 12;
      while (p < 12 + hlen) {
        const n = buf[p];
        const name = dec.decode(buf.subarray(p + 1, p + 1 + n));
        p += 1 + n;
        const type = buf[p];
        p += 1;
        if (type === 7 || type === 6) {
          const len = dv.getUint16(p);
          const v = buf.subarray(p + 2, p + 2 + len);
          headers[name] = type === 7 ? dec.decode(v) : v;
          p += 2 + len;
        } else if (type === 0 || type === 1) {
          headers[name] = type === 0;
        } else if (type === 2) { headers[name] = dv.getInt8(p); p += 1; }
        else if (type === 3) { headers[name] = dv.getInt16(p); p += 2; }
        else if (type === 4) { headers[name] = dv.getInt32(p); p += 4; }
        else if (type === 5 || type === 8) { headers[name] = Number(dv.getBigInt64(p)); p += 8; }
        else if (type === 9) { p += 16; }
        else throw new Error('unknown event stream header type ' + type);
      }
      const payload = dec.decode(buf.subarray(12 + hlen, total - 4));
      onMessage(headers, payload);
      buf = buf.slice(total);
    }
  };
}

// Starts a Live Tail session; calls onEvent(type, body) per event until `signal` aborts.
export async function liveTail(input, onEvent, signal) {
  const r = await request('POST', '/', {
    service: 'logs',
    signal,
    body: JSON.stringify(input),
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Logs_20140328.StartLiveTail' },
  });
  const parse = eventStreamParser((headers, payload) => {
    const type = headers[':event-type'] || headers[':exception-type'] || headers[':error-code'];
    let body = {};
    try { body = payload ? JSON.parse(payload) : {}; } catch (_) { body = { message: payload }; }
    onEvent(type, body, headers[':message-type']);
  });
  const reader = r.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    parse(value);
  }
}
