// sharp (libvips) making what a pixport deployment makes by default
// (`auto,webp,avif:640`): JPEG q82 4:2:0 (PNG for alpha) and lossy WebP at
// 1920/640/320, AVIF at 640/320; auto-orient, no enlargement, metadata
// stripped (sharp's default). One clone per variant, all awaited together,
// as a Node function would write it.
//
// usage: node sharp_production.mjs FILE WEBP_Q AVIF_Q [REPEAT] [--out DIR]
//   REPEAT > 0: one warm-up, then REPEAT timed runs; prints {"wall_ms": [...], "cpu_ms": [...]}
//   otherwise one run; prints {"bytes": {"jpeg": [..], "webp": [..], "avif": [..]}} per width,
//   and with --out DIR writes every variant as DIR/<width>.<ext>.
// node sharp_production.mjs FILE --search FORMAT WIDTH TARGET_BYTES
//   the quality (1..100) whose FORMAT file at WIDTH is closest to TARGET_BYTES;
//   prints {"quality": q, "bytes": n}.
// AVIF effort: SHARP_AVIF_EFFORT (default 2). Threads: SHARP_CONCURRENCY (+ UV_THREADPOOL_SIZE).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';

const args = process.argv.slice(2);
if (process.env.SHARP_CONCURRENCY) sharp.concurrency(Number(process.env.SHARP_CONCURRENCY));
sharp.cache(false);
const WIDTHS = [1920, 640, 320];
const AVIF_MAX = 640;
const AVIF_EFFORT = Number(process.env.SHARP_AVIF_EFFORT || 2);

function encoder(p, format, q, alpha) {
  switch (format) {
    case 'jpeg':
      return alpha ? p.png() : p.jpeg({ quality: 82, chromaSubsampling: '4:2:0' });
    case 'webp':
      return p.webp({ quality: q });
    case 'avif':
      return p.avif({ quality: q, effort: AVIF_EFFORT });
    default:
      throw new Error(format);
  }
}

function variant(base, width, format, q, alpha) {
  const p = base.clone().rotate().resize({ width, withoutEnlargement: true });
  return encoder(p, format, q, alpha).toBuffer();
}

async function once(input, webpQ, avifQ) {
  const base = sharp(input, { limitInputPixels: 100_000_000 });
  const { hasAlpha } = await base.metadata();
  const jobs = [];
  for (const w of WIDTHS) {
    jobs.push(['jpeg', w, variant(base, w, 'jpeg', 82, hasAlpha)]);
    jobs.push(['webp', w, variant(base, w, 'webp', webpQ, hasAlpha)]);
    if (w <= AVIF_MAX) jobs.push(['avif', w, variant(base, w, 'avif', avifQ, hasAlpha)]);
  }
  const bufs = await Promise.all(jobs.map((j) => j[2]));
  return jobs.map((j, i) => ({ format: j[0], width: j[1], buf: bufs[i], alpha: hasAlpha }));
}

const [file] = args;
if (!file) process.exit(0);
const input = readFileSync(file);

if (args[1] === '--search') {
  const [format, width, target] = [args[2], Number(args[3]), Number(args[4])];
  const base = sharp(input, { limitInputPixels: 100_000_000 });
  const { hasAlpha } = await base.metadata();
  const size = async (q) => (await variant(base, width, format, q, hasAlpha)).length;
  // Bytes grow with quality: bisect for the last quality at or under the
  // target, then take whichever neighbour is closer.
  let [lo, hi] = [1, 100];
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if ((await size(mid)) <= target) lo = mid; else hi = mid - 1;
  }
  const cands = [lo, Math.min(lo + 1, 100)];
  let best = null;
  for (const q of cands) {
    const n = await size(q);
    if (!best || Math.abs(n - target) < Math.abs(best.bytes - target)) best = { quality: q, bytes: n };
  }
  console.log(JSON.stringify(best));
  process.exit(0);
}

const webpQ = Number(args[1]);
const avifQ = Number(args[2]);
const outAt = args.indexOf('--out');
const repeat = Number(args[3] && !args[3].startsWith('--') ? args[3] : 0);
if (repeat > 0) {
  await once(input, webpQ, avifQ);
  const wall = [];
  const cpu = [];
  for (let i = 0; i < repeat; i++) {
    const t = process.hrtime.bigint();
    const c = process.cpuUsage();
    await once(input, webpQ, avifQ);
    wall.push(Number(process.hrtime.bigint() - t) / 1e6);
    const d = process.cpuUsage(c);
    cpu.push((d.user + d.system) / 1000);
  }
  console.log(JSON.stringify({ wall_ms: wall, cpu_ms: cpu }));
} else {
  const outs = await once(input, webpQ, avifQ);
  if (outAt > 0) {
    const dir = args[outAt + 1];
    mkdirSync(dir, { recursive: true });
    for (const o of outs) {
      const ext = o.format === 'jpeg' && o.alpha ? 'png' : o.format;
      writeFileSync(`${dir}/${o.width}.${ext}`, o.buf);
    }
  }
  const bytes = {};
  for (const o of outs) (bytes[o.format] ||= []).push(o.buf.length);
  console.log(JSON.stringify({ bytes }));
}
