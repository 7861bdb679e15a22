// Runs resizer.wasm on one JavaScript host (Node, Bun, Deno) for
// test_host_matrix.py and `bench/resizer/run --hosts`: through the npm
// package (packages/resizer-js, its own WASI subset) or through the host's
// `node:wasi`. One process, every case of a job, each `repeat` times; every
// repeat must give the same bytes as the first (an intermittent crash fails
// the process, a flaky result fails the job).
//
// usage: RUNTIME run_host.mjs JOB.json
// JOB: {"mode": "package" | "wasi", "wasm": PATH, "repeat": N,
//       "cases": [{"input": PATH, "out": PATH, "options": {...}, "args": [...]}]}
// Writes each case's result to its `out`: the manifest line and the
// variants' bytes, or {"error": {"class", "exit_code", "message"}}.
// Prints {"ms": [[per repeat] per case]} on stdout.
import { readFileSync, writeFileSync, openSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const wasm = readFileSync(job.wasm);
const enc = new TextEncoder();

function concat(parts) {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { all.set(p, o); o += p.length; }
  return all;
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

const errorOut = (cls, exitCode, message) => enc.encode(JSON.stringify({ error: { class: cls, exit_code: exitCode, message } }));

async function viaPackage() {
  const { resize, ResizerError } = await import('../../packages/resizer-js/src/index.js');
  return async (c) => {
    try {
      const r = await resize(readFileSync(c.input), { ...c.options, wasm });
      return concat([enc.encode(`${JSON.stringify(r.manifest)}\n`), ...r.variants]);
    } catch (e) {
      if (!(e instanceof ResizerError)) throw e;
      return errorOut(e.code, e.exitCode, e.message);
    }
  };
}

async function viaNodeWasi() {
  if (process.versions.node && !process.versions.bun && typeof Deno === 'undefined') {
    // Node 22's node:wasi segfaults on large inputs without this (see run_wasi.mjs).
    (await import('node:v8')).setFlagsFromString('--no-turbo-fast-api-calls');
  }
  const { WASI } = await import('node:wasi');
  const module = await WebAssembly.compile(wasm);
  const dir = mkdtempSync(join(tmpdir(), 'resizer-host-'));
  let n = 0;
  return async (c) => {
    const outPath = join(dir, `out${n}`), errPath = join(dir, `err${n++}`);
    const stdin = openSync(c.input, 'r'), stdout = openSync(outPath, 'w'), stderr = openSync(errPath, 'w');
    const wasi = new WASI({ version: 'preview1', args: ['resizer', ...(c.args || [])], env: {}, stdin, stdout, stderr, returnOnExit: true });
    const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport });
    const code = wasi.start(instance);
    for (const fd of [stdin, stdout, stderr]) closeSync(fd);
    const out = readFileSync(outPath), err = readFileSync(errPath).toString();
    rmSync(outPath);
    rmSync(errPath);
    if (code === 0) return out;
    const line = err.trim().split('\n').pop();
    const e = JSON.parse(line).error;
    return errorOut(e.class, code, e.message);
  };
}

const run = job.mode === 'wasi' ? await viaNodeWasi() : await viaPackage();
const ms = [];
for (const c of job.cases) {
  let first = null;
  const times = [];
  for (let i = 0; i < job.repeat; i++) {
    const t = performance.now();
    const got = await run(c);
    times.push(performance.now() - t);
    if (first === null) {
      first = got;
      writeFileSync(c.out, got);
    } else if (!same(first, got)) {
      console.error(`${c.input}: run ${i + 1} differs from run 1`);
      process.exit(3);
    }
  }
  ms.push(times);
}
console.log(JSON.stringify({ ms }));
