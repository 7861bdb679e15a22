"""Modern formats (issue #16): one run with the default set
(`auto,webp,avif:640`, contract/src/outputs.rs) writes every format at every
width the set names, under both WASI hosts byte for byte, and each file
decodes with Pillow (libwebp, libavif) at the manifest's size, close to the
JPEG (PNG for a transparent source) of the same width, alpha kept, with no
EXIF and no ICC profile (outputs are sRGB after conversion).

Three 12 MP classes: a 4:2:0 JPEG (the YCbCr path), a transparent PNG
(alpha) and a greyscale JPEG (one channel into RGB-only encoders).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import decode, ok
from test_quality import luma, psnr, ssim

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "photos"))
import classes  # noqa: E402

DEFAULT_SET = "auto,webp,avif:640"
# Luma against the JPEG/PNG variant of the same width: lossy WebP and AVIF
# at the qualities encode.rs maps 82 to measure SSIM 0.911-0.961 and PSNR
# 32.3-39.0 dB on these three classes (grey WebP lowest in PSNR, AVIF at
# 640 lowest in SSIM); a wrong picture, size or orientation is far below.
SSIM_MIN = 0.89
PSNR_MIN = 31.0
PILLOW_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}


@pytest.fixture(scope="module")
def class_dir() -> Path:
    return classes.ensure(sizes=("12mp",)) / "12mp"


def expected_order(auto: str) -> list[tuple[int, str]]:
    return [(1920, auto), (1920, "webp"),
            (640, auto), (640, "webp"), (640, "avif"),
            (320, auto), (320, "webp"), (320, "avif")]


@pytest.mark.parametrize("name,auto", [("jpeg-420-12mp.jpg", "jpeg"),
                                       ("png-rgba-12mp.png", "png"),
                                       ("jpeg-grey-12mp.jpg", "jpeg")])
def test_default_set_decodes_close_to_the_jpeg(run, node_run, class_dir, name, auto):
    path = class_dir / name
    a = run(path, "--formats", DEFAULT_SET)
    m, payloads = ok(a)
    b = node_run(path, "--formats", DEFAULT_SET)
    assert b.code == 0, (b.code, b.stderr)
    assert a.stdout == b.stdout, f"{name}: node:wasi and wasmtime differ"

    assert [(v["width"], v["format"]) for v in m["variants"]] == expected_order(auto)
    by = {(v["width"], v["format"]): (v, decode(p)) for v, p in zip(m["variants"], payloads)}
    for (w, fmt), (v, img) in by.items():
        assert img.format == PILLOW_FORMAT[fmt], (name, w, fmt, img.format)
        assert img.size == (v["width"], v["height"]), (name, w, fmt)
        assert v["content_type"] == f"image/{fmt}"
        assert not img.info.get("exif") and not img.getexif(), (name, w, fmt, "EXIF written")
        assert not img.info.get("icc_profile"), (name, w, fmt, "ICC written")
        assert float(np.asarray(img.convert("L")).std()) > 10, (name, w, fmt, "blank")
        if fmt == auto:
            continue
        ref_v, ref = by[(w, auto)]
        s = ssim(luma(flat(img)), luma(flat(ref)))
        q = psnr(luma(flat(img)), luma(flat(ref)))
        assert s >= SSIM_MIN and q >= PSNR_MIN, (name, w, fmt, round(s, 4), round(q, 2))
        # Smaller than the JPEG: the point of making them.
        if auto == "jpeg":
            assert v["bytes"] < ref_v["bytes"], (name, w, fmt, v["bytes"], ref_v["bytes"])
        if auto == "png":
            assert img.mode == "RGBA", (name, w, fmt, img.mode)
            a_ref = np.asarray(ref.getchannel("A"), dtype=np.float64)
            a_got = np.asarray(img.getchannel("A"), dtype=np.float64)
            if fmt == "webp":
                # VP8 colour, lossless ALPH: the alpha is the PNG's exactly.
                assert np.array_equal(a_got, a_ref), (name, w, "alpha changed")
            else:
                assert psnr(a_got, a_ref) >= 35.0, (name, w, fmt, "alpha")


def flat(img: Image.Image) -> Image.Image:
    """As seen over white (colour under alpha 0 is undefined)."""
    if "A" not in img.getbands():
        return img.convert("RGB")
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")


def test_single_format_flag_and_caps(run):
    """`--format avif` is the one-entry set; a cap keeps a format off the
    wider widths; a bad set is a usage error that names the problem."""
    img = Image.new("RGB", (900, 600), (30, 120, 200))
    for x in range(0, 900, 60):
        img.paste((250, 200, 20), (x, 0, x + 30, 600))
    import io
    buf = io.BytesIO()
    img.save(buf, "PNG")
    data = buf.getvalue()

    m, payloads = ok(run(data, "--format", "avif", "--widths", "640,320"))
    assert [(v["width"], v["format"]) for v in m["variants"]] == [(640, "avif"), (320, "avif")]
    assert decode(payloads[0]).size == (640, 427)

    m, _ = ok(run(data, "--formats", "webp:320,jpeg", "--widths", "640,320"))
    assert [(v["width"], v["format"]) for v in m["variants"]] == [(640, "jpeg"), (320, "webp"), (320, "jpeg")]

    for bad, words in [("avif:640", "no width cap"), ("webp,tiff", "tiff"), ("webp:0,auto", "width cap")]:
        r = run(data, "--formats", bad)
        assert r.code != 0 and r.error is not None and r.error["class"] == "usage", (bad, r.stderr)
        assert words in r.error["message"], (bad, r.error["message"])
