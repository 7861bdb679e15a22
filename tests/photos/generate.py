"""Builds the test photos from scikit-image's bundled sample images.

The suites and benchmarks need photos the size of what phones and cameras
send (12, 24 and 48 MP JPEGs, a PNG, a small JPEG). Nothing outside the repo
is read: the sources ship inside the pinned `scikit-image` wheel, the
detail that makes a big JPEG cost what a real one costs (texture, sensor
grain) comes from a seeded generator, and the encoders are the pinned
Pillow's. `SHA256SUMS` beside this file holds what the generator must make,
so a change to it, to Pillow or to numpy is noticed instead of silently
moving every quality and speed figure.

    python tests/photos/generate.py [--dest DIR] [--update]

DIR defaults to $PIXPORT_PHOTOS, else $PIXPORT_CACHE/photos, else
~/.cache/pixport/photos. A DIR that already holds the expected files is
left alone, so setup runs this every time at no cost.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUMS = HERE / "SHA256SUMS"
SEED = 20261130


def default_dest() -> Path:
    if os.environ.get("PIXPORT_PHOTOS"):
        return Path(os.environ["PIXPORT_PHOTOS"])
    cache = os.environ.get("PIXPORT_CACHE") or str(Path.home() / ".cache" / "pixport")
    return Path(cache) / "photos"


def _sample(name: str):
    """One of scikit-image's bundled sample files, opened with Pillow."""
    from PIL import Image
    import skimage

    return Image.open(Path(skimage.__file__).parent / "data" / name)


def _exif(width: int, height: int) -> bytes:
    """Camera EXIF as a phone writes it, GPS included, so the tests can check
    that none of it reaches a variant."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "pixport"  # Make
    exif[0x0110] = "fixture camera"  # Model
    exif[0x0112] = 1  # Orientation: as stored
    exif[0x0131] = "tests/photos/generate.py"  # Software
    exif[0xA002] = width  # PixelXDimension
    exif[0xA003] = height  # PixelYDimension
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # GPS
    return exif.tobytes()


def _photo(source: str, texture: str, size: tuple[int, int], seed: int):
    """A photo-like RGB image: the source scene scaled to cover `size`, with
    a real photographic texture at full resolution and per-pixel grain, so
    that JPEG's entropy coder has a camera's amount of work to do."""
    import numpy as np
    from PIL import Image

    w, h = size
    src = _sample(source).convert("RGB")
    scale = max(w / src.width, h / src.height)
    cover = src.resize((round(src.width * scale + 0.5), round(src.height * scale + 0.5)), Image.Resampling.BICUBIC)
    left, top = (cover.width - w) // 2, (cover.height - h) // 2
    base = np.asarray(cover.crop((left, top, left + w, top + h)), dtype=np.int16)

    # The same scene at more megapixels shows its texture over more pixels
    # (a 48 MP sensor resolves the grass more finely, not more grass).
    tex_img = _sample(texture).convert("L")
    grow = max(1.0, w / 4000)
    tex_img = tex_img.resize((round(tex_img.width * grow), round(tex_img.height * grow)), Image.Resampling.BICUBIC)
    tex = np.asarray(tex_img, dtype=np.int16)
    reps = (h // tex.shape[0] + 1, w // tex.shape[1] + 1)
    detail = np.tile(tex - int(tex.mean()), reps)[:h, :w] // 6
    rng = np.random.default_rng(seed)
    out = base
    out += detail[:, :, None]
    out += rng.normal(0.0, 4.0, size=(h, w, 3)).astype(np.int16)
    np.clip(out, 0, 255, out=out)
    return Image.fromarray(out.astype(np.uint8), "RGB")


def _jpeg(img, *, quality: int = 90, exif: bool = True) -> bytes:
    buf = io.BytesIO()
    extra = {"exif": _exif(img.width, img.height)} if exif else {}
    img.save(buf, "JPEG", quality=quality, subsampling="4:2:0", optimize=False, progressive=False, **extra)
    return buf.getvalue()


def build() -> dict[str, bytes]:
    """Every photo, name -> bytes. Deterministic for pinned Pillow and numpy."""
    photos: dict[str, bytes] = {}
    # Landscape camera photos: 4:3 at 12 and 48 MP, 3:2 at 24 MP.
    for name, source, texture, size, seed in [
        ("p12mp.jpg", "coffee.png", "grass.png", (4000, 3000), SEED + 12),
        ("p24mp.jpg", "motorcycle_right.png", "grass.png", (6000, 4000), SEED + 24),
        ("p48mp.jpg", "motorcycle_left.png", "gravel.png", (8000, 6000), SEED + 48),
    ]:
        photos[name] = _jpeg(_photo(source, texture, size, seed))
    # A small real photograph, exactly as scikit-image ships it (1411 px).
    photos["retina.jpg"] = (Path(__import__("skimage").__file__).parent / "data" / "retina.jpg").read_bytes()
    # An opaque RGB PNG (512 px).
    buf = io.BytesIO()
    _sample("astronaut.png").convert("RGB").save(buf, "PNG")
    photos["astronaut.png"] = buf.getvalue()
    return photos


def read_sums() -> dict[str, str]:
    sums = {}
    for line in SUMS.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip()] = digest
    return sums


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_complete(dest: Path, sums: dict[str, str]) -> bool:
    for name, digest in sums.items():
        path = dest / name
        if not path.is_file() or sha256(path.read_bytes()) != digest:
            return False
    return True


def ensure(dest: Path | None = None, *, update: bool = False) -> Path:
    """Makes sure `dest` holds every photo with its checked-in SHA-256."""
    dest = dest or default_dest()
    sums = {} if update else read_sums()
    if sums and is_complete(dest, sums):
        return dest
    photos = build()
    got = {name: sha256(data) for name, data in photos.items()}
    if update:
        SUMS.write_text("".join(f"{got[n]}  {n}\n" for n in sorted(got)))
    elif got != sums:
        changed = sorted(n for n in set(got) | set(sums) if got.get(n) != sums.get(n))
        raise SystemExit(
            f"tests/photos: the generator now makes different bytes for {', '.join(changed)}; "
            "if that is intended, run `python tests/photos/generate.py --update`, "
            "re-run the quality tests and benchmarks, and commit SHA256SUMS"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".photos-", dir=dest.parent))
    tmp.chmod(0o755)
    for name, data in photos.items():
        (tmp / name).write_bytes(data)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=None)
    ap.add_argument("--update", action="store_true", help="rewrite SHA256SUMS from what the generator makes now")
    args = ap.parse_args()
    print(ensure(args.dest, update=args.update))


if __name__ == "__main__":
    sys.exit(main())
