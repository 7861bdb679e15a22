// The page's Web Worker: runs resizer.wasm (the same module the Lambda
// runs, through the resizer package's browser glue) off the main thread, so
// decoding a 48 MP photo never blocks the page. One job at a time, in the
// order asked: each message is {id, file (a Blob), options}; each answer
// is {id, manifest, variants: [ArrayBuffer]} or {id, error: {class,
// message}}, the variants' buffers transferred, not copied.
import { resize } from './resizer-glue.js'

let queue = Promise.resolve()

self.onmessage = ({ data: { id, file, options } }) => {
  queue = queue.then(() => run(id, file, options))
}

async function run(id, file, options) {
  try {
    const bytes = new Uint8Array(await file.arrayBuffer())
    const started = performance.now()
    const { manifest, variants } = await resize(bytes, options)
    const buffers = variants.map((v) => (v.byteOffset === 0 && v.byteLength === v.buffer.byteLength ? v.buffer : v.slice().buffer))
    self.postMessage({ id, manifest, variants: buffers, ms: performance.now() - started }, buffers)
  } catch (e) {
    self.postMessage({ id, error: { class: e?.class ?? e?.name ?? 'error', message: e?.message ?? String(e) } })
  }
}
