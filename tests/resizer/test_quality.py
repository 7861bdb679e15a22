"""Output quality: SSIM and PSNR of every variant against a high-quality
reference (Pillow LANCZOS from the full-size source, uncompressed).

SSIM is computed on luma (BT.601) with a 7x7 uniform window (scikit-image's
default), with numpy only. The threshold covers both the resize (shrink-on-load
+ Lanczos3 cascade) and JPEG q82 4:2:0 compression of the output.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import decode, ok

SSIM_MIN = 0.93
PSNR_MIN = 33.0
# Colour: JPEG sources are resized in their own YCbCr planes (chroma at its
# stored resolution), so colour gets its own check.
CHROMA_PSNR_MIN = 35.0


def luma(img: Image.Image) -> np.ndarray:
    a = np.asarray(img.convert("RGB"), dtype=np.float64)
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def chroma(img: Image.Image) -> np.ndarray:
    """Cb and Cr (BT.601, JFIF), stacked."""
    a = np.asarray(img.convert("RGB"), dtype=np.float64)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    return np.stack([-0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b])


def box(a: np.ndarray, k: int = 7) -> np.ndarray:
    """Mean over each k x k window (valid region), via an integral image."""
    s = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]) / (k * k)


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    n = 49
    mx, my = box(x), box(y)
    # Sample covariance as scikit-image does (n / (n - 1)).
    vx = (box(x * x) - mx * mx) * n / (n - 1)
    vy = (box(y * y) - my * my) * n / (n - 1)
    cxy = (box(x * y) - mx * my) * n / (n - 1)
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = float(np.mean((x - y) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def test_ssim_self_check():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (64, 64))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, rng.uniform(0, 255, (64, 64))) < 0.1


@pytest.mark.parametrize("name", ["p12mp.jpg", "p24mp.jpg", "p48mp.jpg", "retina.jpg", "astronaut.png"])
def test_variant_quality(run, photos, name, record_property, capsys):
    m, payloads = ok(run(photos / name))
    with Image.open(photos / name) as src:
        src = ImageOps.exif_transpose(src).convert("RGB")
        rows = []
        for v, p in zip(m["variants"], payloads):
            ref = src.resize((v["width"], v["height"]), Image.Resampling.LANCZOS)
            got = decode(p)
            assert got.size == ref.size
            s, q = ssim(luma(got), luma(ref)), psnr(luma(got), luma(ref))
            c = psnr(chroma(got), chroma(ref))
            rows.append((v["width"], round(s, 4), round(q, 2), round(c, 2)))
            record_property(f"{name}@{v['width']}", f"ssim={s:.4f} psnr={q:.2f} chroma_psnr={c:.2f}")
            assert s >= SSIM_MIN and q >= PSNR_MIN and c >= CHROMA_PSNR_MIN, (name, v["width"], s, q, c)
    with capsys.disabled():
        print(f"\n  quality {name}: "
              + ", ".join(f"{w}px SSIM {s} PSNR {q} dB chroma {c} dB" for w, s, q, c in rows))


@pytest.mark.parametrize("save", [{"progressive": True}, {"restart_marker_blocks": 1}, {"subsampling": 0}, {"subsampling": 1}],
                         ids=["progressive", "restart-markers", "444", "422"])
def test_jpeg_flavours_decode_right(run, photos, save, tmp_path):
    """The entropy decoder (a vendored, optimised jpeg-decoder) on JPEG
    flavours the test photos do not cover, checked the same way."""
    with Image.open(photos / "retina.jpg") as src:
        src = src.convert("RGB")
        path = tmp_path / "in.jpg"
        src.save(path, "JPEG", quality=92, **save)
    m, payloads = ok(run(path))
    with Image.open(path) as ref_src:
        ref_src = ref_src.convert("RGB")
        for v, p in zip(m["variants"], payloads):
            ref = ref_src.resize((v["width"], v["height"]), Image.Resampling.LANCZOS)
            got = decode(p)
            s = ssim(luma(got), luma(ref))
            c = psnr(chroma(got), chroma(ref))
            assert s >= SSIM_MIN and c >= CHROMA_PSNR_MIN, (save, v["width"], s, c)
