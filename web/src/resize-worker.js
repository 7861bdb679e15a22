// The page's Web Worker: runs resizer.wasm (the same module the Lambda
// runs) through the @pixport/resizer package, off the main thread, so
// decoding a 48 MP photo never blocks the page. The module is the file
// /resizer.wasm served beside the page (scripts/build-web copies it), fetched
// once; the package's own copy (base64 in its wasm.js) is left out of the
// bundle. One job at a time, in the order asked: each message is {id, file
// (a Blob), options}; each answer is {id, manifest, variants:
// [ArrayBuffer], ms} or {id, error: {class, message}}, the variants'
// buffers transferred, not copied.
import { resize } from '@pixport/resizer'

let wasm
let queue = Promise.resolve()

self.onmessage = ({ data: { id, file, options } }) => {
  queue = queue.then(() => run(id, file, options))
}

async function module() {
  wasm ??= fetch('/resizer.wasm').then(async (r) => {
    if (!r.ok) throw new Error(`resizer.wasm: HTTP ${r.status}`)
    return new Uint8Array(await r.arrayBuffer())
  })
  try {
    return await wasm
  } catch (e) {
    wasm = undefined // a later photo tries again
    throw e
  }
}

async function run(id, file, options) {
  try {
    const bytes = new Uint8Array(await file.arrayBuffer())
    const started = performance.now()
    // The same bytes object each time: the package compiles it once.
    const { manifest, variants } = await resize(bytes, { ...options, wasm: await module() })
    const buffers = variants.map((v) => v.slice().buffer)
    self.postMessage({ id, manifest, variants: buffers, ms: performance.now() - started }, buffers)
  } catch (e) {
    self.postMessage({ id, error: { class: e?.code ?? e?.name ?? 'error', message: e?.message ?? String(e) } })
  }
}
