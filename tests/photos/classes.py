"""Builds the input-class matrix: one photo per common input class, so the
resizer's speed and quality are measured on every kind of file people send,
not only on the landscape baseline 4:2:0 JPEGs of `generate.py`.

Classes (`CLASSES`): JPEG baseline 4:2:0, 4:2:2, 4:4:4 q95, progressive
4:2:0 and 4:4:4, restart markers (one per MCU row, as cameras write them),
a phone portrait stored landscape with EXIF orientation 6 and with 8,
greyscale, CMYK (Adobe, as Photoshop writes it); PNG RGB and RGBA; lossy
and lossless WebP; GIF. Every class at 12 MP (4000x3000); the JPEG classes
whose cost grows with size the most (baseline, 4:4:4, progressive, the
portrait) at 24 MP (6000x4000) too. The pictures are `generate.py`'s
photo-like scenes (a scikit-image sample, texture and seeded grain), other
samples than the test photos.

    python tests/photos/classes.py [--dest DIR] [--sizes 12mp 24mp] [--update]

DIR defaults to $PIXPORT_CLASSES, else $PIXPORT_CACHE/classes, else
~/.cache/pixport/classes; each size is a folder in it (`12mp/`, `24mp/`).
Every file is byte-stable for the pinned Pillow (its bundled libjpeg-turbo,
zlib, libwebp) and numpy: `classes.SHA256SUMS` beside this file holds what
the generator must make, checked as `generate.py` checks the photos.
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
sys.path.insert(0, str(HERE))
from generate import _exif, _photo  # noqa: E402

SUMS = HERE / "classes.SHA256SUMS"
SEED = 20261212
SIZES = {"12mp": (4000, 3000), "24mp": (6000, 4000)}
# Sources per size: scenes not used by generate.py's photos at that size.
SCENES = {"12mp": ("chelsea.png", "gravel.png"), "24mp": ("coffee.png", "grass.png")}

# class name -> (file extension, sizes it is made at)
CLASSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "jpeg-420": ("jpg", ("12mp", "24mp")),
    "jpeg-422": ("jpg", ("12mp",)),
    "jpeg-444-q95": ("jpg", ("12mp", "24mp")),
    "jpeg-progressive-420": ("jpg", ("12mp", "24mp")),
    "jpeg-progressive-444": ("jpg", ("12mp",)),
    "jpeg-restart": ("jpg", ("12mp",)),
    "jpeg-portrait-exif6": ("jpg", ("12mp", "24mp")),
    "jpeg-portrait-exif8": ("jpg", ("12mp",)),
    "jpeg-grey": ("jpg", ("12mp",)),
    "jpeg-cmyk": ("jpg", ("12mp",)),
    "png-rgb": ("png", ("12mp",)),
    "png-rgba": ("png", ("12mp",)),
    "webp-lossy": ("webp", ("12mp",)),
    "webp-lossless": ("webp", ("12mp",)),
    "gif": ("gif", ("12mp",)),
}


def default_dest() -> Path:
    if os.environ.get("PIXPORT_CLASSES"):
        return Path(os.environ["PIXPORT_CLASSES"])
    cache = os.environ.get("PIXPORT_CACHE") or str(Path.home() / ".cache" / "pixport")
    return Path(cache) / "classes"


def file_name(cls: str, size: str) -> str:
    return f"{cls}-{size}.{CLASSES[cls][0]}"


def names(sizes: tuple[str, ...] = tuple(SIZES)) -> list[str]:
    """`size/file` for every class made at one of `sizes`."""
    return [f"{s}/{file_name(c, s)}" for c, (_, made) in CLASSES.items() for s in made if s in sizes]


def _exif_oriented(img, orientation: int) -> bytes:
    """`generate.py`'s camera EXIF with another orientation."""
    from PIL import Image

    exif = Image.Exif()
    exif.load(_exif(img.width, img.height))
    exif[0x0112] = orientation
    out = exif.tobytes()
    check = Image.Exif()
    check.load(out)
    assert check[0x0112] == orientation
    return out


def _save(img, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _alpha(w: int, h: int):
    """An alpha mask as a cut-out has it: opaque middle, a soft edge, fully
    transparent corners."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot((x - w / 2) / (w / 2), (y - h / 2) / (h / 2))
    a = np.clip((1.25 - d) * 4 * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(a, "L")


def build_size(size: str) -> dict[str, bytes]:
    """Every class made at `size`, file name -> bytes."""
    w, h = SIZES[size]
    scene, texture = SCENES[size]
    rgb = _photo(scene, texture, (w, h), SEED + w)
    camera = {"exif": _exif(w, h), "optimize": False}
    makers = {
        "jpeg-420": lambda: _save(rgb, "JPEG", quality=90, subsampling="4:2:0", **camera),
        "jpeg-422": lambda: _save(rgb, "JPEG", quality=90, subsampling="4:2:2", **camera),
        "jpeg-444-q95": lambda: _save(rgb, "JPEG", quality=95, subsampling="4:4:4", **camera),
        "jpeg-progressive-420": lambda: _save(rgb, "JPEG", quality=90, subsampling="4:2:0", progressive=True, **camera),
        "jpeg-progressive-444": lambda: _save(rgb, "JPEG", quality=90, subsampling="4:4:4", progressive=True, **camera),
        "jpeg-restart": lambda: _save(rgb, "JPEG", quality=90, subsampling="4:2:0", restart_marker_rows=1, **camera),
        # A phone holds the sensor landscape and records the turn in EXIF.
        "jpeg-portrait-exif6": lambda: _save(rgb, "JPEG", quality=90, subsampling="4:2:0",
                                             exif=_exif_oriented(rgb, 6), optimize=False),
        "jpeg-portrait-exif8": lambda: _save(rgb, "JPEG", quality=90, subsampling="4:2:0",
                                             exif=_exif_oriented(rgb, 8), optimize=False),
        "jpeg-grey": lambda: _save(rgb.convert("L"), "JPEG", quality=90, **camera),
        "jpeg-cmyk": lambda: _save(rgb.convert("CMYK"), "JPEG", quality=90, **camera),
        "png-rgb": lambda: _save(rgb, "PNG"),
        "png-rgba": lambda: _save(_with_alpha(rgb), "PNG"),
        "webp-lossy": lambda: _save(rgb, "WEBP", quality=85, method=4),
        "webp-lossless": lambda: _save(rgb, "WEBP", lossless=True, quality=25, method=0),
        "gif": lambda: _save(rgb.quantize(256, method=0, dither=0), "GIF"),
    }
    return {file_name(c, size): makers[c]() for c, (_, made) in CLASSES.items() if size in made}


def _with_alpha(rgb):
    img = rgb.copy()
    img.putalpha(_alpha(rgb.width, rgb.height))
    return img


def read_sums() -> dict[str, str]:
    sums = {}
    if SUMS.exists():
        for line in SUMS.read_text().splitlines():
            if line.strip():
                digest, name = line.split(maxsplit=1)
                sums[name.strip()] = digest
    return sums


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _complete(dest: Path, size: str, sums: dict[str, str]) -> bool:
    want = {n: d for n, d in sums.items() if n.startswith(size + "/")}
    return bool(want) and all((dest / n).is_file() and sha256((dest / n).read_bytes()) == d for n, d in want.items())


def ensure(dest: Path | None = None, sizes: tuple[str, ...] = tuple(SIZES), *, update: bool = False) -> Path:
    """Makes sure `dest/<size>/` holds every class with its checked-in SHA-256."""
    dest = dest or default_dest()
    sums = read_sums()
    for size in sizes:
        if not update and _complete(dest, size, sums):
            continue
        files = build_size(size)
        got = {f"{size}/{n}": sha256(d) for n, d in files.items()}
        if update:
            sums = {**{n: d for n, d in sums.items() if not n.startswith(size + "/")}, **got}
            SUMS.write_text("".join(f"{sums[n]}  {n}\n" for n in sorted(sums)))
        else:
            want = {n: d for n, d in sums.items() if n.startswith(size + "/")}
            if got != want:
                changed = sorted(n for n in set(got) | set(want) if got.get(n) != want.get(n))
                raise SystemExit(
                    f"tests/photos/classes.py: the generator now makes different bytes for {', '.join(changed)}; "
                    "if that is intended, run `python tests/photos/classes.py --update`, "
                    "re-run the resizer tests and benchmark, and commit classes.SHA256SUMS")
        dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{size}-", dir=dest))
        tmp.chmod(0o755)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if (dest / size).exists():
            shutil.rmtree(dest / size)
        tmp.rename(dest / size)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=None)
    ap.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--update", action="store_true", help="rewrite classes.SHA256SUMS from what the generator makes now")
    args = ap.parse_args()
    print(ensure(args.dest, tuple(args.sizes), update=args.update))


if __name__ == "__main__":
    sys.exit(main())
