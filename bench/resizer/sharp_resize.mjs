// The sharp (libvips) pipeline resizer-wasi replaces: auto-orient, three
// widths without enlargement, JPEG q82 (PNG for alpha), metadata stripped
// (sharp's default). One clone per width, as the old service did.
//
// usage: node sharp_resize.mjs FILE [REPEAT]   (REPEAT > 0: warm timings as JSON)
// Set SHARP_CONCURRENCY=1 (+ UV_THREADPOOL_SIZE=1) for the single-threaded column.
import { readFileSync } from 'node:fs';
import sharp from 'sharp';

const [file, repeatArg] = process.argv.slice(2);
if (process.env.SHARP_CONCURRENCY) sharp.concurrency(Number(process.env.SHARP_CONCURRENCY));
sharp.cache(false);
const widths = [1920, 640, 320];

async function once(input) {
  const base = sharp(input, { limitInputPixels: 100_000_000 });
  const meta = await base.metadata();
  const outs = await Promise.all(widths.map((w) => {
    let p = base.clone().rotate().resize({ width: w, withoutEnlargement: true });
    p = meta.hasAlpha ? p.png() : p.jpeg({ quality: 82, chromaSubsampling: '4:2:0' });
    return p.toBuffer();
  }));
  return outs.reduce((n, b) => n + b.length, 0);
}

if (!file) process.exit(0); // startup only: Node + sharp/libvips load
const input = readFileSync(file);
const repeat = Number(repeatArg || 0);
if (repeat > 0) {
  await once(input); // warm-up, as the other tools
  const wall = [];
  const cpu = [];
  for (let i = 0; i < repeat; i++) {
    const t = process.hrtime.bigint();
    const c = process.cpuUsage();
    await once(input);
    wall.push(Number(process.hrtime.bigint() - t) / 1e6);
    const d = process.cpuUsage(c);
    cpu.push((d.user + d.system) / 1000);
  }
  console.log(JSON.stringify({ wall_ms: wall, cpu_ms: cpu }));
} else {
  await once(input);
}
