// A minimal proxy-wasm host in Node.js (built-in WebAssembly and node:wasi,
// no npm packages), so the module is shown to run outside wazero. It loads
// the module, configures it, and drives one mint-and-verify exchange:
//
//   1. a request without a cookie: the filter mints a session, forwards
//      x-session-id, and sets the cookie on the response;
//   2. a request with that cookie: same session id, no new cookie;
//   3. a request with that cookie and a query parameter the configuration
//      captures: its value is forwarded in the session's public namespace.
//
// Usage: node node_host.mjs MODULE.wasm 'PLUGIN-CONFIG-JSON'
// It prints one JSON object with what it saw; the Go test checks it.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const [, , wasmPath, pluginConfig] = process.argv;
const enc = new TextEncoder();
const dec = new TextDecoder();

let instance;
const mem = () => new DataView(instance.exports.memory.buffer);
const bytes = (ptr, len) => new Uint8Array(instance.exports.memory.buffer, ptr, len);
const str = (ptr, len) => dec.decode(bytes(ptr, len).slice());

// Host state: header maps per context, the effective context, logs.
const maps = new Map(); // `${ctx}:${type}` -> [[k, v], ...]
let effective = 0;
const logs = [];
const local = new Map();
const mapOf = (type) => {
  const key = `${effective}:${type}`;
  if (!maps.has(key)) maps.set(key, []);
  return maps.get(key);
};

// give copies data into guest memory through proxy_on_memory_allocate.
function give(data, retPtr, retSize) {
  const ptr = instance.exports.proxy_on_memory_allocate(data.length);
  bytes(ptr, data.length).set(data);
  mem().setUint32(retPtr, ptr, true);
  mem().setUint32(retSize, data.length, true);
  return 0;
}

function serialize(pairs) {
  const parts = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  let size = 4 + 8 * parts.length;
  for (const [k, v] of parts) size += k.length + v.length + 2;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, parts.length, true);
  let off = 4;
  for (const [k, v] of parts) {
    dv.setUint32(off, k.length, true);
    dv.setUint32(off + 4, v.length, true);
    off += 8;
  }
  for (const [k, v] of parts) {
    out.set(k, off); off += k.length + 1;
    out.set(v, off); off += v.length + 1;
  }
  return out;
}

function parsePairs(buf) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = dv.getUint32(0, true);
  const lens = [];
  for (let i = 0; i < n; i++) lens.push([dv.getUint32(4 + 8 * i, true), dv.getUint32(8 + 8 * i, true)]);
  let off = 4 + 8 * n;
  const out = [];
  for (const [kl, vl] of lens) {
    const k = dec.decode(buf.slice(off, off + kl)); off += kl + 1;
    const v = dec.decode(buf.slice(off, off + vl)); off += vl + 1;
    out.push([k, v]);
  }
  return out;
}

const config = enc.encode(pluginConfig);
const env = {
  proxy_log: (level, ptr, len) => { logs.push(str(ptr, len)); return 0; },
  proxy_get_current_time_nanoseconds: (ret) => {
    mem().setBigUint64(ret, BigInt(Date.now()) * 1000000n, true);
    return 0;
  },
  proxy_set_tick_period_milliseconds: () => 0,
  proxy_get_buffer_bytes: (type, start, max, retPtr, retSize) => {
    if (type !== 7) return 1;
    return give(config.slice(start, start + max), retPtr, retSize);
  },
  proxy_get_header_map_pairs: (type, retPtr, retSize) => give(serialize(mapOf(type)), retPtr, retSize),
  proxy_get_header_map_value: (type, kp, kl, retPtr, retSize) => {
    const k = str(kp, kl).toLowerCase();
    const p = mapOf(type).find(([key]) => key === k);
    return p ? give(enc.encode(p[1]), retPtr, retSize) : 1;
  },
  proxy_set_header_map_pairs: (type, ptr, len) => {
    maps.set(`${effective}:${type}`, parsePairs(bytes(ptr, len).slice()));
    return 0;
  },
  proxy_add_header_map_value: (type, kp, kl, vp, vl) => {
    mapOf(type).push([str(kp, kl).toLowerCase(), str(vp, vl)]);
    return 0;
  },
  proxy_replace_header_map_value: (type, kp, kl, vp, vl) => {
    const k = str(kp, kl).toLowerCase();
    const m = mapOf(type).filter(([key]) => key !== k);
    m.push([k, str(vp, vl)]);
    maps.set(`${effective}:${type}`, m);
    return 0;
  },
  proxy_remove_header_map_value: (type, kp, kl) => {
    const k = str(kp, kl).toLowerCase();
    maps.set(`${effective}:${type}`, mapOf(type).filter(([key]) => key !== k));
    return 0;
  },
  proxy_continue_stream: () => 0,
  proxy_send_local_response: (status, dp, dl, bp, bl, hp, hl) => {
    local.set(effective, { status, body: str(bp, bl), headers: parsePairs(bytes(hp, hl).slice()) });
    return 0;
  },
  proxy_http_call: () => 10, // no clusters here: INTERNAL_FAILURE
  proxy_set_effective_context: (id) => { effective = id; return 0; },
  proxy_get_property: (pp, pl, retPtr, retSize) => {
    const path = str(pp, pl);
    return path === 'source\0address' ? give(enc.encode('198.51.100.7:40000'), retPtr, retSize) : 1;
  },
  proxy_get_shared_data: () => 1,
  proxy_set_shared_data: () => 0,
  proxy_define_metric: (type, np, nl, ret) => { mem().setUint32(ret, 1, true); return 0; },
  proxy_increment_metric: () => 0,
  proxy_record_metric: () => 0,
};

const wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(wasmPath));
const imports = { env, wasi_snapshot_preview1: wasi.wasiImport };
// Fail loudly on an import this host does not provide.
for (const imp of WebAssembly.Module.imports(module)) {
  if (!(imp.module in imports) || !(imp.name in imports[imp.module])) {
    throw new Error(`missing import ${imp.module}.${imp.name}`);
  }
}
instance = await WebAssembly.instantiate(module, imports);
wasi.initialize(instance);

const x = instance.exports;
const result = { abi: typeof x.proxy_abi_version_0_2_1 === 'function', malloc: 'malloc' in x };
effective = 1;
x.proxy_on_context_create(1, 0);
result.vmStart = x.proxy_on_vm_start(1, 0);
result.configure = x.proxy_on_configure(1, config.length);

function request(id, headers, path = '/') {
  effective = id;
  x.proxy_on_context_create(id, 1);
  maps.set(`${id}:0`, [[':method', 'GET'], [':path', path], [':authority', 'shop.example.com'], [':scheme', 'https'], ...headers]);
  effective = id;
  const action = x.proxy_on_request_headers(id, 0, 1);
  const upstream = maps.get(`${id}:0`);
  maps.set(`${id}:2`, [[':status', '200'], ['x-session-debug', 'internal']]);
  effective = id;
  x.proxy_on_response_headers(id, 0, 1);
  const response = maps.get(`${id}:2`);
  x.proxy_on_done(id); x.proxy_on_log(id); x.proxy_on_delete(id);
  const get = (m, k) => (m.find(([key]) => key === k) || [])[1];
  return {
    action,
    id: get(upstream, 'x-session-id'),
    kind: get(upstream, 'x-session-kind'),
    status: get(upstream, 'x-session-context-status'),
    context: get(upstream, 'x-session-context'),
    segment: get(upstream, 'x-session-segment'),
    setCookie: response.filter(([k]) => k === 'set-cookie').map(([, v]) => v),
    leaked: response.filter(([k]) => k.startsWith('x-session-')).length,
  };
}

result.first = request(2, [['x-session-id', 'spoofed']]);
const cookie = (result.first.setCookie[0] || '').split(';')[0];
result.second = request(3, [['cookie', cookie]]);
result.third = request(4, [['cookie', cookie], ['user-agent', 'node']], '/?utm_source=node%20test');
result.logs = logs;
console.log(JSON.stringify(result));
