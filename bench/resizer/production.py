"""The production job against sharp: what a deployment makes by default
(`PIXPORT_VARIANT_FORMATS=auto,webp,avif:640`, widths 1920,640,320, quality
82: 3 JPEG (PNG for alpha) + 3 lossy WebP + 2 AVIF + placeholders) on the
input classes of tests/photos/classes.py, against sharp making the same set
(bench/resizer/sharp_production.mjs) at the same bytes.

Per class:
1. pixport's variants (resizer.wasm under embedded wasmtime, byte-identical
   to every host), then sharp's WebP and AVIF quality searched so its 640 px
   file is within --match (5 %) of pixport's (bisection on quality); JPEG is
   q82 4:2:0 in both.
2. SSIM (RGB, scikit-image, 7x7) at 640 px of every format, both tools
   against the same lossless reference: Pillow's LANCZOS resize of the
   oriented source (on white for a transparent one).
3. Time, warm, interleaved round by round: resizer.wasm under the Lambda
   host's Rust wasmtime (lambda/benches/wasi_host.rs, precompiled .cwasm)
   with the Lambda's own arguments; sharp with one thread
   (SHARP_CONCURRENCY=1, UV_THREADPOOL_SIZE=1) and default threads; the
   median of --rounds processes x --repeat runs after one warm-up each,
   wall and CPU, and each process's peak RSS.

Then per class a verdict (>= 1.0x sharp default and SSIM at equal bytes not
lower, per format; moonshot 1.5x) and the cost per 1,000 uploads (GB-seconds
at each memory size, see --memory): prints markdown tables.

    bench/resizer/run --production [--only jpeg-420-12mp ...] [--rounds 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "photos"))
sys.path.insert(0, str(ROOT / "packages" / "resizer-py" / "src"))
import classes  # noqa: E402
from bench import machine, spawn  # noqa: E402

# The Lambda's defaults (lambda/src/config.rs, deploy/template.yaml).
WIDTHS = "1920,640,320"
QUALITY = "82"
FORMATS = "auto,webp,avif:640"
DEFAULT_CLASSES = [
    "jpeg-420-12mp", "jpeg-420-24mp", "jpeg-444-q95-24mp", "jpeg-progressive-420-24mp",
    "jpeg-portrait-exif6-12mp", "png-rgb-12mp", "png-rgba-12mp", "webp-lossy-12mp",
]
WASM, SHARP1, SHARP2 = "pixport", "sharp 1 thread", "sharp default"
# Parts of the set timed alone (pixport's CPU per part = the difference).
SUBSETS = ["auto", "auto,webp", "auto,avif:640", "auto,webp:640"]
ONE = {"SHARP_CONCURRENCY": "1", "UV_THREADPOOL_SIZE": "1"}
# Lambda: one full vCPU at 1769 MB, CPU share proportional to memory.
FULL_VCPU_MB = 1769
# USD per GB-second, us-east-1, first tier (aws.amazon.com/lambda/pricing;
# unchanged from arm64's launch in 2021 to the date below), and per request.
PRICE = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_REQUEST = 0.0000002
PRICE_DATE = "2026-05"


def on_white(img):
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, img).convert("RGB")
    return img.convert("RGB")


def reference(src: Path, width: int):
    """The lossless reference at `width`: Pillow LANCZOS of the oriented source."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(Image.open(src))
    img = on_white(img)
    h = round(img.height * width / img.width)
    return img.resize((width, h), Image.LANCZOS)


def ssim(ref, data: bytes) -> float:
    import numpy as np
    from PIL import Image
    from skimage.metrics import structural_similarity

    got = on_white(Image.open(io.BytesIO(data)))
    r = ref if ref.size == got.size else ref.resize(got.size, Image.LANCZOS)
    return structural_similarity(np.asarray(r), np.asarray(got), channel_axis=2, data_range=255)


def sharp_files(a, image: Path, wq: int, aq: int) -> dict[tuple[str, int], bytes]:
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([a.node, str(HERE / "sharp_production.mjs"), str(image), str(wq), str(aq), "--out", d],
                       check=True, capture_output=True)
        out = {}
        for f in Path(d).iterdir():
            w, ext = f.stem, f.suffix[1:]
            out[("jpeg" if ext == "png" else ext, int(w))] = f.read_bytes()
        return out


def search(a, image: Path, fmt: str, width: int, target: int) -> tuple[int, int]:
    p = subprocess.run([a.node, str(HERE / "sharp_production.mjs"), str(image), "--search", fmt, str(width),
                        str(target)], check=True, capture_output=True)
    r = json.loads(p.stdout)
    return r["quality"], r["bytes"]


def lambda_cost(cpu_ms: float, mb: int, threads: int) -> float:
    """GB-seconds of one upload at `mb` MB: the job's CPU time at the
    function's CPU share (memory / 1769 MB of a vCPU), at most `threads`
    vCPUs busy at once (sharp default counted as perfectly parallel)."""
    share = min(mb / FULL_VCPU_MB, float(threads))
    return cpu_ms / share / 1000 * mb / 1024


def quality_child(a, image: Path) -> None:
    """In a child process (the parent stays small, so the timed children's
    peak RSS is theirs): pixport's files, sharp's matched qualities, sizes
    and SSIM; prints one JSON object."""
    from pixport_resizer.wasi import Host

    host = Host(Path(a.wasm))
    margs = ["--widths", WIDTHS, "--quality", QUALITY, "--formats", FORMATS]
    r = host.run(margs, image, memory_limit=1 << 30)
    assert r.code == 0, (image.name, r.code, r.trap, r.stderr)
    manifest, payloads = r.framed()
    ours = {(("jpeg" if v["format"] == "png" else v["format"]), v["width"]): p
            for v, p in zip(manifest["variants"], payloads)}
    w640 = min((w for (_, w) in ours if w >= 640), default=640)
    q = {fmt: search(a, image, fmt, w640, len(ours[(fmt, w640)])) for fmt in ("webp", "avif")}
    theirs = sharp_files(a, image, q["webp"][0], q["avif"][0])
    ref = reference(image, w640)
    quality = {}
    for fmt in ("jpeg", "webp", "avif"):
        quality[fmt] = {
            "bytes": (sum(len(p) for (f, _), p in ours.items() if f == fmt),
                      sum(len(p) for (f, _), p in theirs.items() if f == fmt)),
            "bytes640": (len(ours[(fmt, w640)]), len(theirs[(fmt, w640)])),
            "ssim": (ssim(ref, ours[(fmt, w640)]), ssim(ref, theirs[(fmt, w640)])),
        }
    print(json.dumps({"q": q, "quality": quality}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wasm", required=True)
    ap.add_argument("--cwasm", required=True)
    ap.add_argument("--rust-host", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--only", nargs="*", default=DEFAULT_CLASSES, help="class file stems")
    ap.add_argument("--rounds", type=int, default=2, help="warm processes per tool and class")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per warm process")
    ap.add_argument("--match", type=float, default=0.05, help="byte tolerance of sharp's 640 px files")
    ap.add_argument("--memory", type=int, nargs="*", default=[512, 1024, 1769, 2048, 3008],
                    help="Lambda memory sizes (MB) for the cost table")
    ap.add_argument("--out", help="also write the tables to this file")
    ap.add_argument("--quality-child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.quality_child:
        quality_child(a, a.quality_child)
        return

    sizes = sorted({s.rsplit("-", 1)[1] for s in a.only})
    # In a child, as the quality phase: this process stays small.
    subprocess.run([sys.executable, str(ROOT / "tests" / "photos" / "classes.py"), "--sizes", *sizes], check=True,
                   stdout=subprocess.DEVNULL)
    dest = classes.default_dest()
    files = [dest / n for n in classes.names(tuple(sizes)) if Path(n).stem in a.only]
    head = machine()
    rust = [a.rust_host, a.cwasm]

    rows = []
    for image in files:
        # 1. Bytes and SSIM, in a child.
        p = subprocess.run([sys.executable, __file__, "--wasm", a.wasm, "--cwasm", a.cwasm, "--rust-host",
                            a.rust_host, "--node", a.node, "--quality-child", str(image)],
                           check=True, capture_output=True)
        got = json.loads(p.stdout)
        q, quality = got["q"], got["quality"]
        # 2. Time, interleaved.
        sargs = [a.node, str(HERE / "sharp_production.mjs"), str(image), str(q["webp"][0]), str(q["avif"][0]),
                 str(a.repeat)]
        margs = ["--widths", WIDTHS, "--quality", QUALITY, "--formats", FORMATS]
        tools = [(WASM, rust + [str(image), str(a.repeat)] + margs, {}), (SHARP1, sargs, ONE), (SHARP2, sargs, {})]
        wall = {t: [] for t, _, _ in tools}
        cpu = {t: [] for t, _, _ in tools}
        rss = {t: 0.0 for t, _, _ in tools}
        for _ in range(a.rounds):
            for t, argv, env in tools:
                _, _, peak, out = spawn(argv, env)
                w = json.loads(out.decode().strip().splitlines()[-1])
                wall[t].extend(w["wall_ms"])
                cpu[t].extend(w["cpu_ms"])
                rss[t] = max(rss[t], peak)
        med = {t: (statistics.median(wall[t]), statistics.median(cpu[t]), rss[t]) for t in wall}
        # Where pixport's time goes: the same run with a part of the set.
        parts = {}
        for spec in SUBSETS:
            argv = rust + [str(image), str(a.repeat), "--widths", WIDTHS, "--quality", QUALITY, "--formats", spec]
            _, _, _, out = spawn(argv, {})
            parts[spec] = statistics.median(json.loads(out.decode().strip().splitlines()[-1])["cpu_ms"])
        med[WASM] = (*med[WASM], parts)
        rows.append((image.stem, q, quality, med))
        print(f"  {image.stem:28} pixport {med[WASM][0]:6.0f} ms  sharp1 {med[SHARP1][0]:6.0f}  "
              f"sharp2 {med[SHARP2][0]:6.0f}  webp q{q['webp'][0]} avif q{q['avif'][0]}", file=sys.stderr, flush=True)

    lines = [
        f"Machine: {head}. Set: `--widths {WIDTHS} --quality {QUALITY} --formats {FORMATS}` (the Lambda's "
        f"defaults) against sharp making the same set (`sharp_production.mjs`: JPEG q82 4:2:0 / PNG for alpha, "
        f"WebP at the searched quality, AVIF at the searched quality, effort 2). Time: warm, median of "
        f"{a.rounds} processes x {a.repeat} runs, tools interleaved; pixport = resizer.wasm under the Lambda "
        f"host's Rust wasmtime. x = sharp's wall time / pixport's. SSIM at 640 px (RGB, 7x7) against Pillow "
        f"LANCZOS of the oriented source; KB = all widths of that format; sharp's WebP and AVIF qualities "
        f"searched so its 640 px file is within {a.match:.0%} of pixport's.",
        "",
        "| class | pixport ms (CPU) | sharp 1t ms (CPU) | sharp default ms (CPU) | x vs 1t | x vs default "
        "| JPEG KB / SSIM pixport : sharp | WebP KB / SSIM pixport : sharp (q) | AVIF KB / SSIM pixport : sharp (q) "
        "| verdict |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for stem, q, quality, med in rows:
        x1 = med[SHARP1][0] / med[WASM][0]
        x2 = med[SHARP2][0] / med[WASM][0]
        cells, notes = [], []
        for fmt in ("jpeg", "webp", "avif"):
            c = quality[fmt]
            (kb_o, kb_t), (s_o, s_t), (b_o, b_t) = c["bytes"], c["ssim"], c["bytes640"]
            qs = f" (q{q[fmt][0]})" if fmt in q else ""
            cells.append(f"{kb_o / 1000:.0f} / {s_o:.3f} : {kb_t / 1000:.0f} / {s_t:.3f}{qs}")
            if fmt in q and abs(b_t / b_o - 1) > a.match:
                notes.append(f"{fmt} bytes not matched ({b_t / b_o:.2f})")
            elif s_o < s_t:
                notes.append(f"{fmt} SSIM lower")
        speed = "1.5x moonshot met" if x2 >= 1.5 else (">= 1.0x met" if x2 >= 1.0 else "**>= 1.0x missed**")
        quality_verdict = "SSIM not lower: met" if not notes else "**" + "; ".join(notes) + "**"
        lines.append(
            f"| {stem} | {med[WASM][0]:.0f} ({med[WASM][1]:.0f}) | {med[SHARP1][0]:.0f} ({med[SHARP1][1]:.0f}) | "
            f"{med[SHARP2][0]:.0f} ({med[SHARP2][1]:.0f}) | {x1:.2f} | {x2:.2f} | " + " | ".join(cells)
            + f" | {speed}; {quality_verdict} |")

    # Cost per 1,000 uploads: the mean over the classes of each tool's
    # GB-seconds per upload, per memory size.
    lines += ["", "Cost per 1,000 uploads (mean over the classes above), GB-s and USD "
              f"(x86_64 / arm64 at {PRICE['x86_64']} / {PRICE['arm64']} USD per GB-s plus {PRICE_REQUEST * 1e6:.2f} USD "
              f"per million requests, us-east-1, {PRICE_DATE}); "
              f"billed time = the CPU time measured here / the function's vCPU share (memory / {FULL_VCPU_MB} MB, "
              "at most 1 vCPU for pixport and sharp 1 thread, 2 for sharp default); peak RSS per process:", "",
              "| memory MB | pixport GB-s | pixport USD x86 / arm | sharp 1t GB-s | sharp 1t USD x86 / arm "
              "| sharp default GB-s | sharp default USD x86 / arm |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for mb in a.memory:
        cells = []
        for t, threads in ((WASM, 1), (SHARP1, 1), (SHARP2, 2)):
            gbs = 1000 * statistics.mean(lambda_cost(m[t][1], mb, threads) for _, _, _, m in rows)
            req = 1000 * PRICE_REQUEST
            cells.append(f"{gbs:.0f} | {gbs * PRICE['x86_64'] + req:.3f} / {gbs * PRICE['arm64'] + req:.3f}")
        lines.append(f"| {mb} | " + " | ".join(cells) + " |")
    lines += ["", "| class | peak RSS MiB pixport / sharp 1t / sharp default |", "|---|---|"]
    for stem, _, _, med in rows:
        lines.append(f"| {stem} | {med[WASM][2]:.0f} / {med[SHARP1][2]:.0f} / {med[SHARP2][2]:.0f} |")
    lines += ["", "Where pixport's CPU goes (warm, median of one process x --repeat runs per part; "
              "WebP 1920 = `auto,webp` - `auto,webp:640`):", "",
              "| class | whole set ms | `auto` (decode, resize, JPEG/PNG, placeholders) ms | + WebP ms | "
              "of which WebP 1920 ms | + AVIF 640 + 320 ms |", "|---|---:|---:|---:|---:|---:|"]
    for stem, _, _, med in rows:
        p = med[WASM][3]
        lines.append(f"| {stem} | {med[WASM][1]:.0f} | {p['auto']:.0f} | {p['auto,webp'] - p['auto']:.0f} | "
                     f"{p['auto,webp'] - p['auto,webp:640']:.0f} | {p['auto,avif:640'] - p['auto']:.0f} |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        Path(a.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
