"""Candidate encoders side by side under wasm (embedded wasmtime, the PyPI
package): encode time, bytes, PSNR and SSIM against the resized source, per
width, for a few input classes. Prints one markdown table.

    cd bench/codecs   # with CARGO_TARGET_DIR set as for the workspace
    cargo build --release --target wasm32-wasip1              # webp-rust, ravif
    # + vaam-image-webp: with fat LTO and +simd128 it crashes LLVM here
    # (docs/resizer.md), so this build is without LTO:
    CARGO_PROFILE_RELEASE_LTO=false cargo build --release --target wasm32-wasip1 --features vaam
    python compare.py [--classes jpeg-420 png-rgba ...] [--configs "vaam q90" ...] [--repeat 3]

The source for each width is the class photo resized by Pillow (Lanczos),
as PNG; JPEG q82 4:2:0 by Pillow is the reference row.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import wasmtime
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

HERE = Path(__file__).resolve().parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", HERE / "target"))
WASM = TARGET / "wasm32-wasip1" / "release" / "codec-candidates.wasm"
CLASSES = Path(os.environ.get("PIXPORT_CLASSES", Path(os.environ.get("PIXPORT_CACHE", Path.home() / ".cache/pixport")) / "classes"))

CONFIGS = {
    "webp-rust q80 m4": ("webp-rust", 80, 4),
    "webp-rust q80 m2": ("webp-rust", 80, 2),
    "webp-rust q90 m2": ("webp-rust", 90, 2),
    "webp-rust q80 m1": ("webp-rust", 80, 1),
    "webp-rust q80 m0": ("webp-rust", 80, 0),
    "webp-rust q70 m0": ("webp-rust", 70, 0),
    "vaam q80": ("vaam-webp", 80, 0),
    "vaam q90": ("vaam-webp", 90, 0),
    "vaam q70": ("vaam-webp", 70, 0),
    "ravif q80 s10": ("ravif", 80, 10),
    "ravif q70 s10": ("ravif", 70, 10),
    "ravif q70 s8": ("ravif", 70, 8),
    "ravif q60 s10": ("ravif", 60, 10),
}


class Runner:
    def __init__(self, wasm: Path) -> None:
        self.engine = wasmtime.Engine()
        self.module = wasmtime.Module.from_file(self.engine, str(wasm))
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()

    def run(self, args: list[str], data: bytes) -> tuple[bytes, float]:
        with tempfile.TemporaryDirectory() as d:
            inp, out, err = Path(d) / "in", Path(d) / "out", Path(d) / "err"
            inp.write_bytes(data)
            cfg = wasmtime.WasiConfig()
            cfg.argv = ["codec", *args]
            cfg.stdin_file = str(inp)
            cfg.stdout_file = str(out)
            cfg.stderr_file = str(err)
            store = wasmtime.Store(self.engine)
            store.set_wasi(cfg)
            inst = self.linker.instantiate(store, self.module)
            try:
                inst.exports(store)["_start"](store)
            except wasmtime.ExitTrap as e:
                if e.code != 0:
                    raise RuntimeError(err.read_text()) from e
            return out.read_bytes(), json.loads(err.read_text().strip().splitlines()[-1])["encode_ms"]


def on_white(img: Image.Image) -> Image.Image:
    """What a page shows: colour under transparent pixels does not count."""
    if img.mode != "RGBA":
        return img.convert("RGB")
    bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, img).convert("RGB")


def metrics(ref: Image.Image, encoded: bytes) -> tuple[float, float]:
    got = Image.open(io.BytesIO(encoded))
    got.load()
    if ref.mode == "RGBA":
        assert got.mode == "RGBA", f"alpha lost: {got.mode}"
    a = np.asarray(on_white(ref), dtype=np.uint8)
    b = np.asarray(on_white(got.convert(ref.mode)), dtype=np.uint8)
    assert a.shape == b.shape, (a.shape, b.shape)
    psnr = peak_signal_noise_ratio(a, b, data_range=255)
    ssim = structural_similarity(a, b, channel_axis=2, data_range=255)
    return psnr, ssim


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--classes", nargs="+", default=["jpeg-420", "png-rgba", "jpeg-grey"])
    ap.add_argument("--widths", nargs="+", type=int, default=[1920, 640, 320])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    runner = Runner(WASM)
    print("| class | width | encoder | encode ms (median) | bytes | PSNR dB | SSIM |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name in a.classes:
        src = next((CLASSES / "12mp").glob(f"{name}-12mp.*"))
        full = Image.open(src)
        full = full.convert("RGBA" if full.mode in ("RGBA", "LA", "P") and "A" in full.convert("RGBA").getbands() and full.mode != "RGB" else "RGB")
        for w in a.widths:
            h = round(full.height * w / full.width)
            ref = full.resize((w, h), Image.LANCZOS)
            png = io.BytesIO()
            ref.save(png, "PNG", compress_level=1)
            jpg = io.BytesIO()
            on_white(ref).save(jpg, "JPEG", quality=82, subsampling=2)
            psnr, ssim = metrics(on_white(ref), jpg.getvalue())
            print(f"| {name} | {w} | JPEG q82 (Pillow, reference) | | {len(jpg.getvalue())} | {psnr:.2f} | {ssim:.4f} |")
            for label in a.configs:
                codec, q, s = CONFIGS[label]
                times = []
                for _ in range(a.repeat):
                    out, ms = runner.run([codec, str(q), str(s)], png.getvalue())
                    times.append(ms)
                psnr, ssim = metrics(ref, out)
                print(f"| {name} | {w} | {label} | {statistics.median(times):.0f} | {len(out)} | {psnr:.2f} | {ssim:.4f} |", flush=True)
    print(f"\nmachine: {os.cpu_count()} cores; wasm {WASM.stat().st_size} bytes")


if __name__ == "__main__":
    sys.exit(main())
