"""All 8 EXIF orientations are applied (JPEG and PNG sources)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import decode, image_bytes, ok

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


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation(run, orientation, fmt):
    stored = quadrants(1000, 700)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = image_bytes(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
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
