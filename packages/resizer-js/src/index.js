// @pixport/resizer: pixport's resizer.wasm (bundled) behind one call, with
// the command line's limits and error classes, on any JavaScript host with
// WebAssembly (Node, Bun, Deno, browsers). See README.md.

import { runWasi } from './wasi.js';
import { capMemory } from './capmemory.js';

/** The module's exit code per error class (resizer-wasi/README.md). */
export const EXIT_CODES = Object.freeze({
  usage: 2,
  unsupported_format: 3,
  corrupt: 4,
  over_limits: 5,
  io: 6,
  internal: 7,
});

/** Linear memory the module may use unless `memoryLimit` says otherwise (the Lambda host's cap). */
export const DEFAULT_MEMORY_LIMIT = 1 << 30;

const PAGE = 65536;
const CLASS_BY_EXIT = Object.fromEntries(Object.entries(EXIT_CODES).map(([k, v]) => [v, k]));

/** A refused or failed resize; `code` is stable (the CLI's class, or `timeout`). */
export class ResizerError extends Error {
  constructor(code, message, { exitCode = null, stderr = '' } = {}) {
    super(message);
    this.name = 'ResizerError';
    this.code = code;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

// Option name -> [flag, value to text]. Values are passed to the module as
// they are; the module checks them (a bad value is a `usage` error).
const list = (v) => (Array.isArray(v) ? v.join(',') : String(v));
const OPTIONS = {
  widths: ['--widths', list],
  formats: ['--formats', list],
  quality: ['--quality', String],
  maxBytes: ['--max-bytes', String],
  maxPixels: ['--max-pixels', String],
  maxDimension: ['--max-dimension', String],
  placeholders: ['--placeholders', (v) => (v === true ? 'on' : v === false ? 'off' : String(v))],
  icc: ['--icc', String],
};
const HOST_OPTIONS = new Set(['memoryLimit', 'timeoutMs', 'wasm']);

function cliArgs(options) {
  const args = [];
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined || HOST_OPTIONS.has(k)) continue;
    const o = OPTIONS[k];
    if (!o) throw new ResizerError('usage', `unknown option ${JSON.stringify(k)}`, { exitCode: EXIT_CODES.usage });
    args.push(o[0], o[1](v));
  }
  return args;
}

let bundled;
/** The bundled module's bytes, decoded once. */
function bundledWasm() {
  bundled ??= import('./wasm.js').then((m) => m.wasmBytes());
  return bundled;
}

const compiled = new WeakMap();
/** Compiles the module with its memory capped at `limit`; cached per source and cap. */
async function moduleFor(source, limit) {
  const key = typeof source === 'object' ? source : compiled;
  let byLimit = compiled.get(key);
  if (!byLimit) compiled.set(key, (byLimit = new Map()));
  let m = byLimit.get(limit);
  if (!m) {
    const bytes = source === undefined ? await bundledWasm() : toBytes(source);
    m = WebAssembly.compile(capMemory(bytes, limit));
    byLimit.set(limit, m);
    m.catch(() => byLimit.delete(limit));
  }
  return m;
}

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new ResizerError('usage', 'input must be a Uint8Array, ArrayBuffer, typed array or Blob', { exitCode: EXIT_CODES.usage });
}

/** Source of a Worker that runs `runWasi` on one message and posts the result. */
function workerSource(node) {
  const head = node
    ? "const { parentPort } = require('node:worker_threads'); const post = (m, t) => parentPort.postMessage(m, t); parentPort.once('message', (m) => run(m));"
    : 'const post = (m, t) => self.postMessage(m, t); self.onmessage = (e) => run(e.data);';
  return `${head}
const runWasi = ${runWasi.toString()};
async function run({ module, argv, input }) {
  try {
    const r = await runWasi(module, argv, input);
    post({ result: r }, [r.stdout.buffer, r.stderr.buffer]);
  } catch (e) {
    post({ failure: String(e && e.message || e) });
  }
}`;
}

/** Runs the module in a Worker that is terminated at the deadline. */
async function runWithDeadline(module, argv, input, timeoutMs) {
  let worker, settle, url;
  const done = new Promise((resolve, reject) => { settle = { resolve, reject }; });
  const onMessage = (m) => (m.failure !== undefined ? settle.reject(new Error(m.failure)) : settle.resolve(m.result));
  if (typeof globalThis.Worker === 'function') {
    // Browsers, Deno, Bun: a module Worker from a Blob (no file to resolve after bundling).
    url = URL.createObjectURL(new Blob([workerSource(false)], { type: 'text/javascript' }));
    worker = new globalThis.Worker(url, { type: 'module' });
    worker.onmessage = (e) => onMessage(e.data);
    worker.onerror = (e) => { e.preventDefault?.(); settle.reject(new Error(e.message || 'worker failed')); };
  } else {
    // Node has no global Worker. The name is a variable so that bundlers
    // targeting browsers leave this branch alone.
    const workerThreads = 'node:worker_threads';
    const { Worker } = await import(/* @vite-ignore */ /* webpackIgnore: true */ workerThreads);
    worker = new Worker(workerSource(true), { eval: true });
    worker.on('message', onMessage);
    worker.on('error', (e) => settle.reject(e));
  }
  const timer = setTimeout(
    () => settle.reject(new ResizerError('timeout', `time cap of ${timeoutMs} ms reached`)),
    timeoutMs,
  );
  worker.postMessage({ module, argv, input });
  try {
    return await done;
  } finally {
    clearTimeout(timer);
    worker.terminate();
    // Revoked only now: Bun loads a Worker's script after the constructor returns.
    if (url) URL.revokeObjectURL(url);
  }
}

function lastErrorLine(stderr) {
  const lines = new TextDecoder().decode(stderr).split('\n').map((l) => l.trim()).filter(Boolean);
  for (const l of lines.reverse()) {
    try {
      const e = JSON.parse(l).error;
      if (e && typeof e.class === 'string') return e;
    } catch { /* not the error line */ }
  }
  return null;
}

/** Splits stdout into the manifest and one view per variant; the sandbox's numbers are checked, not trusted. */
function framed(stdout) {
  const nl = stdout.indexOf(10);
  const fail = (why) => new ResizerError('internal', `module output malformed: ${why}`, { exitCode: EXIT_CODES.internal });
  if (nl < 0) throw fail('no manifest line');
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(stdout.subarray(0, nl)));
  } catch {
    throw fail('manifest is not JSON');
  }
  const payload = stdout.subarray(nl + 1);
  if (payload.length !== manifest.payload_bytes) throw fail('payload length');
  const variants = manifest.variants.map((v) => {
    if (!(Number.isInteger(v.offset) && Number.isInteger(v.bytes) && v.offset >= 0 && v.bytes >= 0 && v.offset + v.bytes <= payload.length)) {
      throw fail('variant outside the payload');
    }
    return payload.subarray(v.offset, v.offset + v.bytes);
  });
  return { manifest, variants };
}

/**
 * Resizes one image: `{manifest, variants}` where `variants[i]` holds the
 * bytes of `manifest.variants[i]`. Throws `ResizerError`.
 * @param {Uint8Array|ArrayBuffer|ArrayBufferView|Blob} data the image
 * @param {import('./index.js').ResizeOptions} [options]
 */
export async function resize(data, options = {}) {
  const input = typeof Blob !== 'undefined' && data instanceof Blob ? new Uint8Array(await data.arrayBuffer()) : toBytes(data);
  const argv = ['resizer', ...cliArgs(options)];
  const limit = options.memoryLimit ?? DEFAULT_MEMORY_LIMIT;
  if (!(Number.isSafeInteger(limit) && limit >= PAGE * 32)) {
    throw new ResizerError('usage', 'memoryLimit must be a whole number of bytes, at least 2 MiB', { exitCode: EXIT_CODES.usage });
  }
  const timeoutMs = options.timeoutMs;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new ResizerError('usage', 'timeoutMs must be a positive number', { exitCode: EXIT_CODES.usage });
  }
  const module = await moduleFor(options.wasm, limit);
  const r = timeoutMs === undefined ? await runWasi(module, argv, input) : await runWithDeadline(module, argv, input, timeoutMs);
  const stderr = new TextDecoder().decode(r.stderr);
  if (r.exitCode === 0) return framed(r.stdout);
  if (r.exitCode === null) {
    // A trap: an allocation the cap refused aborts the module (Rust prints
    // "memory allocation of N bytes failed" first), or memory is at the cap.
    if (stderr.includes('memory allocation of') || r.memoryBytes + PAGE > limit) {
      throw new ResizerError('over_limits', `memory cap of ${Math.floor(limit / 2 ** 20)} MiB reached: ${r.trap}`, { stderr });
    }
    throw new ResizerError('internal', `module trapped: ${r.trap}`, { stderr });
  }
  const e = lastErrorLine(r.stderr);
  const code = e?.class ?? CLASS_BY_EXIT[r.exitCode] ?? 'internal';
  throw new ResizerError(code, e?.message || `exit code ${r.exitCode}`, { exitCode: r.exitCode, stderr });
}
