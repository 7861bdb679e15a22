"""Wide-gamut sources come out as sRGB, matching littleCMS (Pillow ImageCms).

The sources are Display P3 and Adobe RGB pictures tagged with profiles built
from their primaries (tests/support/wide_gamut.py, seeded). The threshold is
the mean absolute difference per channel in 8-bit levels against littleCMS's
relative colorimetric conversion of the same pixels: at most 0.25 (max 3)
for PNG output, where only the two CMMs' arithmetic differs (measured 0.03-0.04,
max 2), at most 1.0 (max 6) for a PNG source against littleCMS on the source
(measured 0.04, max 2; the margin covers a resize at the source's width),
and for JPEG output at most 0.75 over the JPEG encoder's own error. Leaving
the numbers unconverted is ~14 levels off, so no test passes by doing nothing.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import image_bytes, ok

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.wide_gamut import SPACES, cmyk_picture, cmyk_profile, icc_profile, picture, srgb_profile, to_srgb  # noqa: E402


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB")).astype(np.int16)


def mean_delta(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


@pytest.mark.parametrize("space", sorted(SPACES))
def test_png_converted_to_srgb_like_littlecms(run, space):
    icc = icc_profile(space)
    src = picture(480, 320, seed=16)
    m, payloads = ok(run(image_bytes(src, "PNG", icc_profile=icc), "--widths", "480", "--format", "png"))
    assert (m["source"]["icc_to_srgb"], m["source"]["icc"]) == (True, False)
    out = Image.open(io.BytesIO(payloads[0]))
    assert out.info.get("icc_profile") is None, "sRGB variants carry no profile"
    reference = to_srgb(src, icc)
    assert mean_delta(out, reference) <= 1.0
    assert int(np.abs(pixels(out) - pixels(reference)).max()) <= 6
    assert mean_delta(src, reference) > 10, "the source must really differ from sRGB"


@pytest.mark.parametrize("space", sorted(SPACES))
def test_jpeg_photo_variants_are_srgb(run, space):
    """Through shrink-on-load, the YCbCr planes and every width: the resizer
    converting before encoding matches littleCMS converting its unconverted
    (`--icc keep`) output afterwards."""
    icc = icc_profile(space)
    data = image_bytes(picture(1200, 800, seed=17), "JPEG", quality=95, icc_profile=icc)
    m, png = ok(run(data, "--format", "png"))
    _, kept_png = ok(run(data, "--format", "png", "--icc", "keep"))
    _, jpeg = ok(run(data))
    _, kept_jpeg = ok(run(data, "--icc", "keep"))
    assert m["source"]["icc_to_srgb"] is True
    for v, *outs in zip(m["variants"], png, kept_png, jpeg, kept_jpeg):
        png_out, kept, jpeg_out, kept_j = (Image.open(io.BytesIO(o)) for o in outs)
        assert "icc_profile" not in png_out.info and "icc_profile" not in jpeg_out.info
        reference = to_srgb(kept.convert("RGB"), icc)
        assert mean_delta(png_out, reference) <= 0.25, v["width"]
        assert int(np.abs(pixels(png_out) - pixels(reference)).max()) <= 3, v["width"]
        assert mean_delta(kept, reference) > 10, "unconverted numbers must be far off"
        # JPEG output: q82's own error (measured here, ~3.5 on this noisy
        # picture) plus at most 0.75 for the conversion.
        floor = mean_delta(kept_j, kept)
        assert mean_delta(jpeg_out, reference) <= floor + 0.75, (v["width"], floor)


def test_srgb_profile_is_kept_not_converted(run):
    icc = srgb_profile()
    src = picture(480, 320, seed=18)
    m, payloads = ok(run(image_bytes(src, "PNG", icc_profile=icc), "--widths", "480", "--format", "png"))
    assert (m["source"]["icc_to_srgb"], m["source"]["icc"]) == (False, True)
    out = Image.open(io.BytesIO(payloads[0]))
    assert out.info.get("icc_profile") == icc
    assert mean_delta(out, src) == 0


def test_cmyk_jpeg_goes_through_its_profile_like_littlecms(run):
    """A print-ready CMYK JPEG with its press profile (a synthetic lut16 one,
    tests/support/wide_gamut.py): converted through the profile, not by the
    naive ink formula, which is ~29 levels off here."""
    icc = cmyk_profile()
    data = image_bytes(cmyk_picture(480, 320, seed=19), "JPEG", quality=95, icc_profile=icc)
    m, payloads = ok(run(data, "--widths", "480", "--format", "png"))
    assert (m["source"]["icc_to_srgb"], m["source"]["icc"]) == (True, False)
    out = Image.open(io.BytesIO(payloads[0]))
    assert out.info.get("icc_profile") is None
    decoded = Image.open(io.BytesIO(data))  # the same CMYK samples, as libjpeg decodes them
    reference = to_srgb(decoded, icc)
    naive = decoded.convert("RGB")
    assert mean_delta(naive, reference) > 20, "the profile must matter"
    print(f"\nCMYK via profile vs littleCMS: mean {mean_delta(out, reference):.3f}, "
          f"max {int(np.abs(pixels(out) - pixels(reference)).max())}; naive formula mean {mean_delta(naive, reference):.1f}")
    assert mean_delta(out, reference) <= 1.0
    assert int(np.abs(pixels(out) - pixels(reference)).max()) <= 8


def test_cmyk_jpeg_without_a_profile_keeps_the_ink_formula(run):
    data = image_bytes(cmyk_picture(480, 320, seed=20), "JPEG", quality=95)
    m, payloads = ok(run(data, "--widths", "480", "--format", "png"))
    assert m["source"]["icc_to_srgb"] is False
    out = Image.open(io.BytesIO(payloads[0]))
    assert mean_delta(out, Image.open(io.BytesIO(data)).convert("RGB")) <= 0.5
