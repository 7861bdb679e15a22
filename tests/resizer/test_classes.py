"""Every common input class (tests/photos/classes.py, the 12 MP set: the
benchmark's matrix) comes out right under both WASI hosts: embedded
wasmtime and Node's node:wasi give byte-identical stdout, and every variant
meets the quality thresholds of test_quality.py against Pillow's LANCZOS
resize of the oriented source. bench/resizer/run --matrix repeats the
node:wasi runs to catch an intermittent crash and times the same files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import decode, ok
from test_quality import CHROMA_PSNR_MIN, PSNR_MIN, SSIM_MIN, chroma, luma, psnr, ssim

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "photos"))
import classes  # noqa: E402

SIZE = "12mp"
NAMES = [Path(n).name for n in classes.names((SIZE,))]


@pytest.fixture(scope="module")
def class_dir() -> Path:
    """The 12 MP class files, made once per machine (cached, SHA-256 checked)."""
    return classes.ensure(sizes=(SIZE,)) / SIZE


def flatten(img: Image.Image) -> Image.Image:
    """RGB as seen over white: defined where alpha is 0, unlike raw RGB."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")


def test_matrix_is_complete():
    """The test covers every class the generator makes at this size."""
    assert {n.rsplit("-", 1)[0] for n in NAMES} == set(classes.CLASSES)


@pytest.mark.parametrize("name", NAMES)
def test_class_hosts_and_quality(run, node_run, class_dir, name, capsys):
    path = class_dir / name
    a = run(path)
    m, payloads = ok(a)
    b = node_run(path)
    assert b.code == 0, (b.code, b.stderr)
    assert a.stdout == b.stdout, f"{name}: node:wasi and wasmtime differ"

    with Image.open(path) as src:
        src.seek(0)
        oriented = ImageOps.exif_transpose(src)
        alpha = "A" in oriented.getbands()
        src_rgba = oriented.convert("RGBA") if alpha else None
        ref_src = flatten(oriented)
    assert (m["source"]["width"], m["source"]["height"]) == ref_src.size
    assert [v["width"] for v in m["variants"]] == [1920, 640, 320]
    rows = []
    for v, p in zip(m["variants"], payloads):
        got_img = decode(p)
        assert v["format"] == ("png" if alpha else "jpeg"), (name, v["format"])
        size = (v["width"], v["height"])
        ref = ref_src.resize(size, Image.Resampling.LANCZOS) if not alpha else \
            flatten(src_rgba.resize(size, Image.Resampling.LANCZOS))
        got = flatten(got_img)
        assert got.size == ref.size
        s, q = ssim(luma(got), luma(ref)), psnr(luma(got), luma(ref))
        c = psnr(chroma(got), chroma(ref))
        if alpha:
            a_ref = np.asarray(src_rgba.resize(size, Image.Resampling.LANCZOS).getchannel("A"), dtype=np.float64)
            a_got = np.asarray(got_img.convert("RGBA").getchannel("A"), dtype=np.float64)
            assert psnr(a_got, a_ref) >= PSNR_MIN, (name, v["width"], "alpha")
        rows.append((v["width"], round(s, 4), round(q, 2), round(c, 2)))
        assert s >= SSIM_MIN and q >= PSNR_MIN and c >= CHROMA_PSNR_MIN, (name, v["width"], s, q, c)
    with capsys.disabled():
        print(f"\n  quality {name}: " + ", ".join(f"{w}px SSIM {s} PSNR {q} dB chroma {c} dB" for w, s, q, c in rows))
