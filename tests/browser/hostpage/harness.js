// The browser end of the host matrix (tests/browser/test_browser_hosts.py):
// @pixport/resizer as a web app would bundle it (the module inside the
// bundle, run through the package's own WASI glue), on the page's thread.
// `window.runMatrix(cases, repeat)` fetches each case's input from this
// origin, resizes it `repeat` times and answers, per case, the manifest and
// the SHA-256 of every variant's bytes (WebCrypto) of the first run,
// whether every repeat gave the same, and each run's time in ms; or the
// error's class.
import { resize } from '@pixport/resizer'

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('')

async function once(bytes, options) {
  const started = performance.now()
  try {
    const { manifest, variants } = await resize(bytes, options)
    const ms = performance.now() - started
    const hashes = []
    for (const v of variants) hashes.push(hex(await crypto.subtle.digest('SHA-256', v)))
    return { ms, result: { manifest, hashes } }
  } catch (e) {
    return { ms: performance.now() - started, result: { error: { class: e.code ?? 'thrown', message: String(e.message ?? e) } } }
  }
}

window.runMatrix = async (cases, repeat) => {
  const out = []
  for (const c of cases) {
    const r = await fetch(c.input)
    if (!r.ok) throw new Error(`${c.input}: HTTP ${r.status}`)
    const bytes = new Uint8Array(await r.arrayBuffer())
    let first = null
    let same = true
    const ms = []
    for (let i = 0; i < repeat; i++) {
      const run = await once(bytes, c.options)
      ms.push(run.ms)
      const text = JSON.stringify(run.result)
      if (first === null) first = text
      else if (text !== first) same = false
    }
    out.push({ input: c.input, result: JSON.parse(first), same, ms })
  }
  return out
}
window.harnessReady = true
