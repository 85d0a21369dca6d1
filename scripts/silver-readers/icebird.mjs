// icebird reads silver.events from its metadata file, by itself (metadata,
// manifest list, manifests, Parquet). A fetch shim serves s3:// URLs (which
// icebird turns into https://BUCKET.s3.amazonaws.com/KEY) from the S3
// store's posix directory, with HEAD and Range, and re-encodes deflate Avro
// files with the null codec (icebird's gunzip fails on raw deflate blocks).
// usage: node icebird.mjs S3ROOT METADATA_URI [ACCEPTED_IDS_FILE]
import { icebergRead, icebergMetadata } from 'icebird';
import { readFileSync, statSync } from 'fs';
import { inflateRawSync } from 'zlib';
const [root, metaUri, accepted] = process.argv.slice(2);
const local = (u) => { const m = u.match(/^https:\/\/([^.]+)\.s3\.amazonaws\.com\/(.*)$/); return m ? `${root}/${m[1]}/${decodeURIComponent(m[2])}` : null; };
function readLong(b, p) { let n = 0n, s = 0n, x; do { x = b[p.i++]; n |= BigInt(x & 0x7f) << s; s += 7n; } while (x & 0x80); return Number((n >> 1n) ^ -(n & 1n)); }
function writeLong(v) { let n = BigInt(v); n = (n << 1n) ^ (n >> 63n); const out = []; do { let x = Number(n & 0x7fn); n >>= 7n; if (n) x |= 0x80; out.push(x); } while (n); return Buffer.from(out); }
function nullCodec(buf) {
  const p = { i: 4 }; const meta = [];
  for (;;) { let c = readLong(buf, p); if (c === 0) break; if (c < 0) { c = -c; readLong(buf, p); }
    for (let k = 0; k < c; k++) { const kl = readLong(buf, p); const key = buf.subarray(p.i, p.i + kl).toString(); p.i += kl; const vl = readLong(buf, p); const val = buf.subarray(p.i, p.i + vl); p.i += vl; meta.push([key, val]); } }
  const codec = (meta.find(([k]) => k === 'avro.codec') || [, Buffer.from('null')])[1].toString();
  if (codec !== 'deflate') return buf;
  const sync = buf.subarray(p.i, p.i + 16); p.i += 16;
  const parts = [buf.subarray(0, 4), writeLong(meta.length)];
  for (const [k, v] of meta) { const vv = k === 'avro.codec' ? Buffer.from('null') : v; parts.push(writeLong(Buffer.byteLength(k)), Buffer.from(k), writeLong(vv.length), vv); }
  parts.push(writeLong(0), sync);
  while (p.i < buf.length) { const cnt = readLong(buf, p); const sz = readLong(buf, p); const data = inflateRawSync(buf.subarray(p.i, p.i + sz)); p.i += sz + 16; parts.push(writeLong(cnt), writeLong(data.length), data, sync); }
  return Buffer.concat(parts);
}
globalThis.fetch = async (url, init = {}) => {
  const f = local(String(url)); if (!f) throw new Error('unexpected URL ' + url);
  let body; try { body = readFileSync(f); } catch { return new Response(null, { status: 404 }); }
  if (f.endsWith('.avro')) body = nullCodec(body);
  const h = new Headers(init.headers || {}); const range = h.get('range');
  if ((init.method || 'GET') === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(body.length) } });
  if (range) { const [, a, b] = range.match(/bytes=(\d+)-(\d*)/); const end = b ? Number(b) + 1 : body.length; return new Response(body.subarray(Number(a), end), { status: 206, headers: { 'content-length': String(end - Number(a)) } }); }
  return new Response(body, { status: 200, headers: { 'content-length': String(body.length) } });
};
const slash = metaUri.lastIndexOf('/metadata/');
const tableUrl = metaUri.slice(0, slash), metadataFileName = metaUri.slice(slash + '/metadata/'.length);
const metadata = await icebergMetadata({ tableUrl, metadataFileName });
const rows = await icebergRead({ tableUrl, metadata });
const ids = new Map(); const hours = new Map();
for (const r of rows) { ids.set(r.event_id, (ids.get(r.event_id) || 0) + 1); const o = r.occurred_at; const h = (o instanceof Date ? o : new Date(Number(o) / 1000)).toISOString().slice(0, 13); hours.set(h, (hours.get(h) || 0) + 1); }
const doubled = [...ids.values()].filter(n => n > 1).length;
console.log(`icebird: snapshot ${metadata['current-snapshot-id']}: ${rows.length} rows, ${ids.size} distinct ids, ${doubled} doubled`);
console.log('per hour: ' + [...hours].sort().map(([h, n]) => `${h.slice(11)}h=${n}`).join(' '));
if (accepted) { const acc = readFileSync(accepted, 'utf8').split('\n').filter(Boolean); const missing = acc.filter(id => !ids.has(id)).length; const extra = [...ids.keys()].filter(id => !acc.includes(id)).length; console.log(`accepted ${acc.length}: missing ${missing}, not accepted ${extra}`); }
