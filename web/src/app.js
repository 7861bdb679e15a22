// The upload page: Uppy's Dashboard sends files straight to S3 through the
// worker's Companion-compatible /s3 routes (multipart, resumable across a
// reload with Golden Retriever), then the page lists the owner's images,
// shows each 320 px variant once it is ready, and edits or deletes them.
// Before that, the photo's preview and placeholder come from resizer.wasm
// in a Web Worker on the owner's device, which also shrinks oversized
// photos before sending when the owner opts in (local.js).
import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import AwsS3 from '@uppy/aws-s3'
import GoldenRetriever from '@uppy/golden-retriever'
import { installLocalResize } from './local.js'

// A sign-in (a JWT from the adopter's identity provider) or an upload
// grant lives minutes: kept for this tab (sessionStorage), so a reload
// resumes an upload. Anything else is a long-lived server token: used while
// the page is open, stored nowhere.
const CREDENTIAL_KEY = 'pixport.credential'
// How the worker cuts a file into parts (edge/src/companion.rs): S3's
// smallest part, and S3's most parts.
const PART_BYTES = 5 * 1024 * 1024
const MAX_PARTS = 10000
const $ = (sel, root = document) => root.querySelector(sel)

const isShortLived = (c) => c.startsWith('pxg_') || (c.startsWith('eyJ') && c.split('.').length === 3)
const fromLink = new URLSearchParams(location.hash.slice(1)).get('grant') || ''
let token = fromLink || sessionStorage.getItem(CREDENTIAL_KEY) || ''
const authHeaders = () => (token ? { authorization: `Bearer ${token}` } : {})
// The old page kept tokens in localStorage: nothing is left there.
localStorage.removeItem('pixport.token')

// Uppy logs handled upload errors with console.error; the page shows them
// beside the file, so they are warnings here.
const logger = {
  debug() {},
  warn: (...a) => console.warn(...a),
  error: (...a) => console.warn(...a),
}

const uppy = new Uppy({
  id: 'pixport',
  autoProceed: false,
  logger,
  restrictions: { allowedFileTypes: ['image/*', '.jpg', '.jpeg', '.png', '.webp', '.gif'] },
})
  .use(Dashboard, {
    inline: true,
    target: '#uploader',
    width: '100%',
    height: 380,
    proudlyDisplayPoweredByUppy: false,
    showProgressDetails: true,
    // The preview comes from the resizer's worker (local.js), not from
    // decoding the whole photo on the page's thread.
    disableThumbnailGenerator: true,
    note: 'JPEG, PNG, WebP or GIF',
  })
  .use(AwsS3, {
    id: 'AwsS3',
    endpoint: window.location.origin,
    headers: authHeaders(),
    // Every file in parts: the worker checks the bytes when the parts are
    // assembled, and a part already stored is never sent again.
    shouldUseMultipart: () => true,
    // The worker signs each part URL for its exact length, cutting the file
    // the same way (edge/src/companion.rs `part_size`): 5 MiB parts, larger
    // only past S3's 10 000 parts.
    getChunkSize: (file) => Math.max(PART_BYTES, Math.ceil(file.size / MAX_PARTS)),
    // Two requests at a time: a phone on a slow network finishes parts
    // (which survive a reload) instead of sharing its bandwidth six ways.
    limit: 2,
    allowedMetaFields: ['size', 'title', 'tags'],
  })
  .use(GoldenRetriever, {
    // Keep big photos' bytes too, so a reload resumes without picking them again.
    indexedDB: { maxFileSize: 256 * 1024 * 1024, maxTotalSize: 1024 * 1024 * 1024 },
  })

// The worker checks the declared size against its limits; Uppy sends the
// metadata, not the size, so the size goes into the metadata.
uppy.on('file-added', (file) => {
  uppy.setFileMeta(file.id, { size: String(file.size) })
})

const device = installLocalResize(uppy, { list: $('#local'), optIn: $('#shrink') })

const refusals = $('#refusals')
uppy.on('upload-error', (file, error) => {
  const li = document.createElement('li')
  li.className = 'refusal'
  li.dataset.file = file?.name ?? ''
  li.textContent = `${file?.name ?? 'a file'}: ${error?.message ?? 'upload failed'}`
  refusals.append(li)
})

uppy.on('upload-success', (_file, response) => {
  const id = response?.body?.image?.id
  if (id) {
    refreshImages().then(() => watch(id))
  }
})

// --- token -------------------------------------------------------------

const tokenInput = $('#token')
tokenInput.value = fromLink ? '' : token
function setToken(value) {
  token = value.trim()
  if (token && isShortLived(token)) {
    sessionStorage.setItem(CREDENTIAL_KEY, token)
  } else {
    sessionStorage.removeItem(CREDENTIAL_KEY)
  }
  uppy.getPlugin('AwsS3').setOptions({ headers: authHeaders() })
  $('#token-state').textContent = !token
    ? 'Not signed in: uploads will be refused.'
    : token.startsWith('pxg_')
      ? 'Upload grant: one photo.'
      : isShortLived(token)
        ? 'Signed in for this tab.'
        : 'Server token in use until the page closes; stored nowhere.'
  refreshImages()
}
if (fromLink) {
  // A grant arrives in the link's fragment (never sent to a server) and
  // is removed from the address bar at once.
  history.replaceState(null, '', location.pathname + location.search)
  uppy.setOptions({ restrictions: { ...uppy.opts.restrictions, maxNumberOfFiles: 1 } })
  setToken(fromLink)
}
$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault()
  setToken(tokenInput.value)
})

// --- the owner's images -------------------------------------------------

const list = $('#images')
const cards = new Map()

async function api(path, init = {}) {
  const res = await fetch(path, {
    ...init,
    headers: { ...authHeaders(), ...(init.headers || {}) },
  })
  if (res.status === 204) return null
  const body = await res.json().catch(() => null)
  if (!res.ok) {
    const err = body?.error
    throw new Error(err ? `${err.code}: ${err.message}` : `HTTP ${res.status}`)
  }
  return body
}

function render(img) {
  let li = cards.get(img.id)
  if (!li) {
    li = $('#card').content.firstElementChild.cloneNode(true)
    li.dataset.id = img.id
    const form = $('.edit', li)
    form.title.value = img.title ?? ''
    form.tags.value = (img.tags ?? []).join(', ')
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      save(img.id, form)
    })
    $('.delete', li).addEventListener('click', () => remove(img.id))
    cards.set(img.id, li)
    list.prepend(li)
  }
  const name = img.title || img.file_name || img.id
  li.dataset.status = img.status
  $('.status', li).textContent = img.status === 'failed' ? `failed: ${img.failure_reason ?? ''}` : img.status
  $('.delete', li).setAttribute('aria-label', `Delete ${name}`)
  const thumb = (img.variants ?? []).find((v) => v.width === 320) ?? (img.variants ?? [])[0]
  const el = $('img', li)
  // Variant URLs are stable: set once, so a re-render does not reload it.
  if (thumb && el.getAttribute('src') !== thumb.url) {
    el.src = thumb.url
    el.alt = name
  }
}

async function refreshImages() {
  const state = $('#images-state')
  if (!token) {
    state.textContent = 'Sign in to see your images.'
    return
  }
  if (token.startsWith('pxg_')) {
    // A grant uploads one photo and reads nothing.
    state.textContent = 'Uploading with a grant: the photo appears where its owner signs in.'
    return
  }
  try {
    // The list is the token's own images.
    const mine = (await api('/images?limit=100')).items
    const seen = new Set(mine.map((i) => i.id))
    for (const [id, li] of cards) {
      if (!seen.has(id)) {
        li.remove()
        cards.delete(id)
      }
    }
    for (const img of mine.reverse()) render(img)
    state.textContent = mine.length ? `${mine.length} image(s).` : 'No images yet.'
    for (const img of mine) if (img.status === 'pending' || img.status === 'uploading') watch(img.id)
  } catch (e) {
    state.textContent = `Could not list images: ${e.message}`
  }
}

// Polls one image until the resizer is done with it, backing off from half
// a second to eight.
const watching = new Set()
async function watch(id) {
  if (watching.has(id)) return
  watching.add(id)
  let delay = 500
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, delay))
      if (!cards.has(id)) return
      const img = await api(`/images/${id}`)
      render(img)
      if (img.status === 'ready' || img.status === 'failed') return
      delay = Math.min(delay * 1.6, 8000)
    }
  } catch (e) {
    const li = cards.get(id)
    if (li) $('.note', li).textContent = e.message
  } finally {
    watching.delete(id)
  }
}

async function save(id, form) {
  const note = $('.note', form)
  const tags = form.tags.value.split(',').map((t) => t.trim()).filter(Boolean)
  try {
    const img = await api(`/images/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: form.title.value || null, tags }),
    })
    render(img)
    note.textContent = 'Saved.'
  } catch (e) {
    note.textContent = e.message
  }
}

async function remove(id) {
  const li = cards.get(id)
  try {
    await api(`/images/${id}`, { method: 'DELETE' })
    li?.remove()
    cards.delete(id)
  } catch (e) {
    if (li) $('.note', li).textContent = e.message
  }
}

refreshImages()
window.pixport = { uppy, local: device?.local }
