// Starts the bundle `wrangler deploy --dry-run --outdir` wrote as workerd
// would, and prints what it cost as JSON. workerd compiles each .wasm module
// of the upload into a WebAssembly.Module and then runs the script's global
// scope, which instantiates it and runs wasm-bindgen's start function (the
// worker's `#[event(start)]`): Workers' startup limit counts exactly that.
// Here `cloudflare:workers` is a stub (only WorkerEntrypoint is imported)
// and `.wasm` imports compile synchronously, as in workerd.
//
//   node worker_startup.mjs <outdir>/index.js
import { register } from "node:module";
import { pathToFileURL } from "node:url";

const [entry] = process.argv.slice(2);
const hooks = `
export async function resolve(spec, ctx, next) {
  if (spec === "cloudflare:workers") return { url: "pixport-stub:cloudflare-workers", shortCircuit: true };
  return next(spec, ctx);
}
export async function load(url, ctx, next) {
  if (url === "pixport-stub:cloudflare-workers") {
    return { format: "module", shortCircuit: true,
             source: "export class WorkerEntrypoint { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }" };
  }
  if (url.endsWith(".wasm")) {
    const path = JSON.stringify(new URL(url).pathname);
    return { format: "module", shortCircuit: true,
             source: "import { readFileSync } from 'node:fs';" +
                     "const t = process.cpuUsage(); const m = new WebAssembly.Module(readFileSync(" + path + "));" +
                     "const d = process.cpuUsage(t); globalThis.__wasmCompileUs = (globalThis.__wasmCompileUs ?? 0) + d.user + d.system;" +
                     "export default m;" };
  }
  return next(url, ctx);
}`;
register("data:text/javascript," + encodeURIComponent(hooks));
// The Workers global scope has addEventListener (the bundle listens for errors).
globalThis.addEventListener ??= () => {};

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const mod = await import(pathToFileURL(entry).href);
const wall = Number(process.hrtime.bigint() - t0) / 1e6;
const cpu = process.cpuUsage(cpu0);
const handler = mod.default?.prototype?.fetch ?? mod.default?.fetch;
console.log(JSON.stringify({
  cpu_ms: (cpu.user + cpu.system) / 1000,
  wall_ms: wall,
  wasm_compile_cpu_ms: (globalThis.__wasmCompileUs ?? 0) / 1000,
  fetch_handler: typeof handler,
}));
