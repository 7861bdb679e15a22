"""A seeded photo of at least 40 MB for the browser tests' resumable upload.

A camera JPEG of 48 MP is ~8 MB; 40 MB takes detail a camera would call
noise. The 48 MP test photo is upscaled to 6400 x 4800 (30.7 MP, within
the worker's limits) and given seeded grain, saved at quality 98 with
4:4:4 chroma: a real, decodable JPEG that the resizer handles like any
other. Made once and cached beside the other test photos.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 15
SIZE = (6400, 4800)
MIN_BYTES = 40 * 1024 * 1024


def make(source: Path, dest: Path) -> Path:
    if dest.exists() and dest.stat().st_size >= MIN_BYTES:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    img = Image.open(source).convert("RGB").resize(SIZE, Image.Resampling.BILINEAR)
    px = np.asarray(img, dtype=np.int16)
    grain = rng.integers(-40, 41, size=px.shape, dtype=np.int16)
    out = Image.fromarray(np.clip(px + grain, 0, 255).astype(np.uint8))
    tmp = dest.with_suffix(".tmp")
    out.save(tmp, "JPEG", quality=98, subsampling=0)
    tmp.rename(dest)
    if dest.stat().st_size < MIN_BYTES:
        raise RuntimeError(f"{dest} is only {dest.stat().st_size} bytes")
    return dest


if __name__ == "__main__":
    print(make(Path(sys.argv[1]), Path(sys.argv[2])))
