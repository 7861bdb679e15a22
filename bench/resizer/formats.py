"""Modern formats per input class (issue #16): for every class of
tests/photos/classes.py, under embedded wasmtime (the PyPI package, the
engine the Lambda host embeds), with the release builds:

- per width, the encode time of the `auto` format (JPEG, PNG for a
  transparent source), lossy WebP and AVIF (`resizer-wasi/benches/formats.rs`,
  median of --repeat; AVIF above 640 px once), their bytes, and SSIM / PSNR
  against the lossless resize (`resizer.wasm --formats png,...`), composited on
  white where the source is transparent;
- per class, the whole run with `--formats auto` against the default set
  (wall time of one warm run each, peak linear memory).

Prints two markdown tables.

    bench/resizer/run --formats [--classes jpeg-420-12mp ...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "photos"))
sys.path.insert(0, str(ROOT / "packages" / "resizer-py" / "src"))
import classes  # noqa: E402
from bench import machine  # noqa: E402
from pixport_resizer.wasi import Host  # noqa: E402

DEFAULT_SET = "auto,webp,avif:640"


def on_white(img: Image.Image) -> np.ndarray:
    """What a page shows: colour under transparent pixels does not count."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def quality(ref: bytes, got: bytes) -> tuple[float, float]:
    a, b = on_white(Image.open(io.BytesIO(ref))), on_white(Image.open(io.BytesIO(got)))
    assert a.shape == b.shape, (a.shape, b.shape)
    return (structural_similarity(a, b, channel_axis=2, data_range=255),
            peak_signal_noise_ratio(a, b, data_range=255))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wasm", type=Path, required=True, help="release resizer.wasm")
    ap.add_argument("--formats-child", type=Path, required=True, help="benches/formats.rs built for wasm32-wasip1")
    ap.add_argument("--classes", nargs="*", help="file names (jpeg-420-12mp.jpg) or stems; default all")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    dest = classes.ensure()
    files = [dest / n for n in classes.names()]
    if a.classes:
        files = [f for f in files if f.name in a.classes or f.stem in a.classes]
    resizer, child = Host(a.wasm, cache=True), Host(a.formats_child, cache=True)

    per_width, per_class = [], []
    for f in files:
        r = child.run([f"/in/{f.name}", str(a.repeat)], preopens={str(f.parent): "/in"})
        assert r.code == 0, (f.name, r.code, r.trap, r.stderr)
        timings = [json.loads(line) for line in r.stdout.decode().splitlines()]
        q = resizer.run(["--formats", "png,jpeg,webp,avif"], f)
        assert q.code == 0, (f.name, q.stderr)
        manifest, payloads = q.framed()
        by = {(v["width"], v["format"]): p for v, p in zip(manifest["variants"], payloads)}
        for w in sorted({t["width"] for t in timings}, reverse=True):
            row = {t["format"]: t for t in timings if t["width"] == w}
            auto = "png" if "png" in row else "jpeg"
            cells = {}
            for fmt in (auto, "webp", "avif"):
                ssim, psnr = (1.0, float("inf")) if fmt == "png" else quality(by[(w, "png")], by[(w, fmt)])
                cells[fmt] = (row[fmt]["ms"], row[fmt]["bytes"], ssim, psnr)
            per_width.append((f.stem, w, auto, cells))
        # Whole runs: one warm-up, then one timed run of each.
        runs = {}
        for spec in ("auto", DEFAULT_SET):
            resizer.run(["--formats", spec], f)
            t = time.perf_counter()
            res = resizer.run(["--formats", spec], f)
            runs[spec] = ((time.perf_counter() - t) * 1000, res.memory_bytes >> 20, res.code)
            assert res.code == 0, (f.name, spec, res.stderr)
        per_class.append((f.stem, runs))
        print(f"{f.stem}: done", file=sys.stderr, flush=True)

    print("| class | width | auto ms | WebP ms | AVIF ms | auto KB | WebP KB | AVIF KB | SSIM auto / WebP / AVIF | PSNR dB auto / WebP / AVIF |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for stem, w, auto, c in per_width:
        fmt = lambda k: c[k]  # noqa: E731
        label = "PNG" if auto == "png" else "JPEG"
        psnr = " / ".join("lossless" if fmt(k)[3] == float("inf") else f"{fmt(k)[3]:.1f}" for k in (auto, "webp", "avif"))
        print(f"| {stem} | {w} | {fmt(auto)[0]:.0f} ({label}) | {fmt('webp')[0]:.0f} | {fmt('avif')[0]:.0f} | "
              f"{fmt(auto)[1] / 1000:.1f} | {fmt('webp')[1] / 1000:.1f} | {fmt('avif')[1] / 1000:.1f} | "
              f"{fmt(auto)[2]:.3f} / {fmt('webp')[2]:.3f} / {fmt('avif')[2]:.3f} | {psnr} |")
    print()
    print(f"| class | run, `auto` ms | run, `{DEFAULT_SET}` ms | peak memory `auto` / default set MiB |")
    print("|---|---:|---:|---:|")
    for stem, runs in per_class:
        x, y = runs["auto"], runs[DEFAULT_SET]
        print(f"| {stem} | {x[0]:.0f} | {y[0]:.0f} | {x[1]} / {y[1]} |")
    print(f"\n{machine()}; resizer.wasm {a.wasm.stat().st_size} bytes")


if __name__ == "__main__":
    main()
