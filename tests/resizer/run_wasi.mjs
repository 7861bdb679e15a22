// Runs resizer.wasm under Node's node:wasi, the second host of the
// byte-identical test (use Node 22; Node 20's node:wasi crashes on big images,
// nodejs/node#53087).
//
// usage: node run_wasi.mjs WASM STDIN_FILE STDOUT_FILE STDERR_FILE [--dir HOST=GUEST]... -- ARGS...
// Exits with the module's exit code.
import { readFileSync, openSync, closeSync } from 'node:fs';
import { WASI } from 'node:wasi';
import { setFlagsFromString } from 'node:v8';

// Node 22.23's node:wasi segfaults on large inputs (every run of a 27 MB
// 12 MP PNG here) unless V8's fast API calls are off (nodejs/node#53087
// family). Run node with --no-turbo-fast-api-calls; this line makes the
// script safe when it is run without (set before any WASI call is optimised).
setFlagsFromString('--no-turbo-fast-api-calls');

const argv = process.argv.slice(2);
const [wasmPath, stdinPath, stdoutPath, stderrPath] = argv;
const preopens = {};
let i = 4;
for (; i < argv.length && argv[i] !== '--'; i++) {
  if (argv[i] === '--dir') {
    const [host, guest] = argv[++i].split('=');
    preopens[guest] = host;
  }
}
const args = argv.slice(i + 1);

const stdin = openSync(stdinPath, 'r');
const stdout = openSync(stdoutPath, 'w');
const stderr = openSync(stderrPath, 'w');
const wasi = new WASI({
  version: 'preview1',
  args: ['resizer', ...args],
  env: {},
  preopens,
  stdin,
  stdout,
  stderr,
  returnOnExit: true,
});
const module = await WebAssembly.compile(readFileSync(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const code = wasi.start(instance);
closeSync(stdin);
closeSync(stdout);
closeSync(stderr);
process.exitCode = code;
