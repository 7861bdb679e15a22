// Interim browser glue for resizer.wasm (WASI preview 1 through
// @bjorn3/browser_wasi_shim): stdin holds the photo, stdout collects the
// framed answer (manifest line, then the variants), per the resizer's
// contract (resizer-wasi/README.md).
import { WASI, File, OpenFile, ConsoleStdout } from '@bjorn3/browser_wasi_shim'

let compiled
const module = (url) => (compiled ??= WebAssembly.compileStreaming(fetch(url)))

export async function resize(bytes, { widths, formats, quality, placeholders, wasmUrl = '/resizer.wasm' } = {}) {
  const args = ['resizer']
  if (widths) args.push('--widths', widths.join(','))
  if (formats) args.push('--formats', formats.join(','))
  if (quality) args.push('--quality', String(quality))
  if (placeholders === false) args.push('--placeholders', 'off')
  const out = []
  let size = 0
  let err = ''
  const fds = [
    new OpenFile(new File(bytes, { readonly: true })),
    new ConsoleStdout((d) => { out.push(d); size += d.byteLength }),
    new ConsoleStdout((d) => { err += new TextDecoder().decode(d) }),
  ]
  const wasi = new WASI(args, [], fds)
  const instance = await WebAssembly.instantiate(await module(wasmUrl), { wasi_snapshot_preview1: wasi.wasiImport })
  const code = wasi.start(instance)
  if (code !== 0) {
    const line = err.trim().split('\n').pop()
    let e
    try { e = JSON.parse(line).error } catch { e = { class: 'internal', message: line || `exit ${code}` } }
    throw Object.assign(new Error(e.message), { class: e.class, exitCode: code })
  }
  const all = new Uint8Array(size)
  let at = 0
  for (const d of out) { all.set(d, at); at += d.byteLength }
  const nl = all.indexOf(10)
  const manifest = JSON.parse(new TextDecoder().decode(all.subarray(0, nl)))
  const payload = all.subarray(nl + 1)
  return { manifest, variants: manifest.variants.map((v) => payload.slice(v.offset, v.offset + v.bytes)), stdout: all }
}
