"""All 8 EXIF orientations are applied, from every container that carries
them: JPEG APP1, PNG eXIf, WebP EXIF (lossy and lossless), checked against
Pillow's `ImageOps.exif_transpose`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import decode, gradient, image_bytes, ok

QUAD = [(230, 20, 20), (20, 230, 20), (20, 20, 230), (235, 235, 235)]  # TL, TR, BL, BR


def quadrants(w: int, h: int) -> Image.Image:
    a = np.zeros((h, w, 3), "uint8")
    a[: h // 2, : w // 2] = QUAD[0]
    a[: h // 2, w // 2:] = QUAD[1]
    a[h // 2:, : w // 2] = QUAD[2]
    a[h // 2:, w // 2:] = QUAD[3]
    return Image.fromarray(a, "RGB")


def corner_colours(img: Image.Image) -> list[tuple[int, ...]]:
    w, h = img.size
    rgb = img.convert("RGB")
    return [rgb.getpixel((x, y)) for x, y in ((w // 4, h // 4), (3 * w // 4, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4))]


def close(a, b, tol=40):
    return all(abs(x - y) <= tol for x, y in zip(a, b))


SAVE = {
    "JPEG": ("JPEG", {"quality": 95}),
    "PNG": ("PNG", {}),
    "WEBP": ("WEBP", {"quality": 95}),
    "WEBP_LOSSLESS": ("WEBP", {"lossless": True}),
}


def with_orientation(stored: Image.Image, fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    pil_fmt, save = SAVE[fmt]
    return image_bytes(stored, pil_fmt, exif=exif.tobytes(), **save)


@pytest.mark.parametrize("fmt", sorted(SAVE))
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation(run, orientation, fmt):
    stored = quadrants(1000, 700)
    data = with_orientation(stored, fmt, orientation)
    expected = ImageOps.exif_transpose(decode(data))
    m, payloads = ok(run(data, "--widths", "640,320"))
    assert m["source"]["orientation"] == orientation
    assert (m["source"]["width"], m["source"]["height"]) == expected.size
    for v, p in zip(m["variants"], payloads):
        out = decode(p)
        ew = v["width"]
        eh = round(expected.size[1] * ew / expected.size[0])
        assert out.size == (ew, eh)
        got, want = corner_colours(out), corner_colours(expected)
        assert all(close(g, w) for g, w in zip(got, want)), (orientation, got, want)
        # The applied orientation is not written again.
        assert 0x0112 not in out.getexif()


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("fmt", sorted(SAVE))
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_pixels_match_pillow(run, orientation, fmt):
    """Every variant against Pillow's exif_transpose + Lanczos resize of the
    same decoded source, pixel by pixel: a smooth picture with a different
    gradient on each axis, so any wrong flip or transposition costs > 20 dB."""
    data = with_orientation(gradient(900, 600), fmt, orientation)
    expected = ImageOps.exif_transpose(decode(data))
    m, payloads = ok(run(data, "--widths", "640,320"))
    assert m["source"]["orientation"] == orientation
    for v, p in zip(m["variants"], payloads):
        out = decode(p)
        want = expected.resize(out.size, Image.Resampling.LANCZOS)
        assert psnr(out, want) > 32, (orientation, fmt, v["width"], psnr(out, want))
        if orientation != 1:
            # The same picture unrotated is far off: the check can fail.
            unrotated = decode(data).resize(out.size, Image.Resampling.LANCZOS)
            assert out.size != unrotated.size or psnr(out, unrotated) < 25
