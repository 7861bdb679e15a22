// Work the page does on the owner's device before an upload, with the same
// resizer.wasm the server runs, in a Web Worker (resize-worker.js):
//
// - Preview: when a photo is picked, a 320 px JPEG and its placeholder
//   (ThumbHash, dominant colour) appear at once, beside the file in the
//   Dashboard and in the "On this device" list, long before the upload and
//   the server's own variants are done.
// - Opt-in shrink: when the owner ticks "Shrink large photos before
//   sending" (remembered in this browser's localStorage), a JPEG whose long
//   edge is over SHRINK_EDGE px is re-encoded to (at most) that long edge as a
//   quality-SHRINK_QUALITY JPEG before it is sent, if that is smaller. The
//   EXIF orientation is applied to the pixels (the resizer does so), and
//   the copy carries no metadata. A 48 MP photo then sends about a third
//   of its bytes. The server trusts the copy no more than any upload: it
//   sniffs, decodes and checks what it stores as always.
//
// Nothing here is required: if the worker or the module fails, the file is
// uploaded as picked.
import { thumbHashToDataURL } from 'thumbhash'

/** The long edge (px) past which an opted-in JPEG is shrunk, and what it is shrunk to. */
export const SHRINK_EDGE = 4096
/** JPEG quality of a shrunk copy: high, since the server resizes it again. */
export const SHRINK_QUALITY = 92
const SHRINK_KEY = 'pixport.shrink'
const PREVIEW = { widths: [320], formats: ['jpeg'], quality: 82 }

const megabytes = (n) => `${(n / 1e6).toFixed(1)} MB`

/** One worker for the page; each call is a promise of its answer. */
class Resizer {
  constructor(url) {
    this.worker = new Worker(url)
    this.next = 0
    this.waiting = new Map()
    this.worker.onmessage = ({ data }) => {
      const w = this.waiting.get(data.id)
      this.waiting.delete(data.id)
      if (data.error) w?.reject(Object.assign(new Error(data.error.message), { class: data.error.class }))
      else w?.resolve(data)
    }
    this.worker.onerror = (e) => {
      for (const w of this.waiting.values()) w.reject(new Error(e.message || 'the resizer worker failed'))
      this.waiting.clear()
    }
  }

  resize(file, options) {
    const id = ++this.next
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.worker.postMessage({ id, file, options })
    })
  }
}

/** The width that gives `source` (display size) a long edge of at most
 * `edge` px (the resizer rounds the height; a rounded-up width could make
 * it edge + 1). */
export function shrinkWidth({ width, height }, edge = SHRINK_EDGE) {
  return width >= height ? edge : Math.max(1, Math.floor((edge * width) / height))
}

export function installLocalResize(uppy, { list, optIn, workerUrl = '/resize-worker.js' }) {
  let resizer
  try {
    resizer = new Resizer(workerUrl)
  } catch {
    return null
  }
  optIn.checked = localStorage.getItem(SHRINK_KEY) === 'on'
  optIn.addEventListener('change', () => {
    if (optIn.checked) localStorage.setItem(SHRINK_KEY, 'on')
    else localStorage.removeItem(SHRINK_KEY)
  })

  // Per Uppy file id: its list entry, the preview's promise (the source's
  // manifest), the shrink's promise, and timings the benchmark reads.
  const local = new Map()
  const row = (file) => {
    const li = document.createElement('li')
    li.className = 'local'
    li.dataset.file = file.name
    li.dataset.state = 'reading'
    li.innerHTML = '<div class="frame"><img class="placeholder" alt=""><img class="preview" alt=""></div><p class="about"></p>'
    li.querySelector('.about').textContent = `${file.name}: reading…`
    list.append(li)
    return li
  }

  uppy.on('file-added', (file) => {
    if (file.isRemote || !(file.data instanceof Blob)) return
    const entry = { li: row(file), added: performance.now(), original: file.size }
    local.set(file.id, entry)
    entry.preview = resizer.resize(file.data, PREVIEW).then(
      (res) => showPreview(file, entry, res),
      (e) => {
        entry.li.dataset.state = 'unreadable'
        entry.li.querySelector('.about').textContent = `${file.name}: not read here (${e.message}); the server decides.`
        return null
      },
    )
    if (optIn.checked) entry.preview.then(() => shrink(file.id))
  })

  uppy.on('file-removed', (file) => {
    const entry = local.get(file.id)
    if (!entry) return
    entry.li.remove()
    if (entry.url) URL.revokeObjectURL(entry.url)
    local.delete(file.id)
  })

  function showPreview(file, entry, { manifest, variants }) {
    const v = manifest.variants[0]
    const { li } = entry
    const placeholder = manifest.placeholder
    if (placeholder?.thumbhash) {
      const hash = Uint8Array.from(atob(placeholder.thumbhash), (c) => c.charCodeAt(0))
      li.querySelector('.placeholder').src = thumbHashToDataURL(hash)
    }
    if (placeholder?.dominant_color) li.querySelector('.frame').style.backgroundColor = placeholder.dominant_color
    entry.url = URL.createObjectURL(new Blob([variants[0]], { type: v.content_type }))
    const img = li.querySelector('.preview')
    img.alt = file.name
    img.src = entry.url
    entry.previewed = performance.now()
    entry.source = manifest.source
    li.dataset.state = 'preview'
    li.querySelector('.about').textContent =
      `${file.name}: ${manifest.source.width} × ${manifest.source.height}, ${megabytes(file.size)}`
    // The Dashboard shows this preview instead of drawing its own (which
    // would decode the whole photo on the page's thread).
    if (uppy.getFile(file.id)) uppy.setFileState(file.id, { preview: entry.url })
    return manifest.source
  }

  function oversized(source) {
    return source?.format === 'jpeg' && Math.max(source.width, source.height) > SHRINK_EDGE
  }

  // Shrinks one file's bytes in place (Uppy's file data, its declared
  // size), once; resolves when done or decided against.
  function shrink(id) {
    const entry = local.get(id)
    if (!entry) return Promise.resolve()
    entry.shrink ??= entry.preview.then(async (source) => {
      const file = uppy.getFile(id)
      if (!file || file.meta.shrunk) return
      const { li } = entry
      if (!oversized(source)) {
        // Decided: sent as picked (what the page could not read, too).
        li.dataset.state = 'kept'
        return
      }
      li.dataset.state = 'shrinking'
      const width = shrinkWidth(source)
      try {
        const { manifest, variants } = await resizer.resize(file.data, {
          widths: [width], formats: ['jpeg'], quality: SHRINK_QUALITY, placeholders: false,
        })
        const v = manifest.variants[0]
        if (v.bytes >= file.size) {
          li.dataset.state = 'kept'
          li.querySelector('.about').textContent = `${file.name}: sending it as picked (a shrunk copy would not be smaller).`
          return
        }
        const data = new File([variants[0]], file.name, { type: 'image/jpeg', lastModified: file.data.lastModified })
        // The file as it is now (removed meanwhile: setFileState throws, and it is not sent).
        const now = uppy.getFile(id)
        uppy.setFileState(id, { data, size: data.size, progress: { ...now.progress, bytesTotal: data.size } })
        uppy.setFileMeta(id, { size: String(data.size), shrunk: `${source.width}x${source.height}` })
        entry.shrunk = performance.now()
        entry.sent = data.size
        entry.sentSize = [v.width, v.height]
        li.dataset.state = 'shrunk'
        li.querySelector('.about').textContent =
          `${file.name}: sending ${v.width} × ${v.height}, ${megabytes(data.size)} (picked: ${source.width} × ${source.height}, ${megabytes(entry.original)})`
      } catch (e) {
        li.dataset.state = 'kept'
        li.querySelector('.about').textContent = `${file.name}: not shrunk (${e.message}); sending it as picked.`
      }
    })
    return entry.shrink
  }

  // Before Uppy sends anything: with the opt-in, every oversized photo is
  // shrunk first (already under way if it was ticked when the photo was picked).
  uppy.addPreProcessor(async (fileIDs) => {
    if (!optIn.checked) return
    await Promise.all(
      fileIDs.map(async (id) => {
        const file = uppy.getFile(id)
        if (!file) return
        uppy.emit('preprocess-progress', file, { mode: 'indeterminate', message: 'Shrinking on this device…' })
        await shrink(id)
        const done = uppy.getFile(id)
        if (done) uppy.emit('preprocess-complete', done)
      }),
    )
  })

  return { local }
}
