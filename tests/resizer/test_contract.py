"""The stdio/files contract: framing, manifest, widths, formats, usage errors."""

from __future__ import annotations

import hashlib
import json

import pytest
from PIL import Image

from conftest import decode, gradient, image_bytes, ok

PHOTOS = {
    "p12mp.jpg": (4000, 3000),
    "p24mp.jpg": (6000, 4000),
    "p48mp.jpg": (8000, 6000),
    "retina.jpg": (1411, 1411),
    "astronaut.png": (512, 512),
}


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_shared_photos_default_widths(run, photos, name):
    sw, sh = PHOTOS[name]
    m, payloads = ok(run(photos / name))
    assert (m["source"]["width"], m["source"]["height"]) == (sw, sh)
    want = [w for w in (1920, 640, 320) if w <= sw]
    assert [v["width"] for v in m["variants"]] == want
    assert [s["width"] for s in m["skipped"]] == [w for w in (1920, 640, 320) if w > sw]
    assert all(s["reason"] == "would upscale" for s in m["skipped"])
    for v, data in zip(m["variants"], payloads):
        assert v["height"] == round(sh * v["width"] / sw)
        assert v["sha256"] == hashlib.sha256(data).hexdigest()
        assert v["bytes"] == len(data)
        img = decode(data)
        assert img.size == (v["width"], v["height"])
        # The astronaut PNG is opaque, so it goes out as JPEG like a photo.
        assert v["format"] == "jpeg" and img.format == "JPEG" and v["content_type"] == "image/jpeg"


def test_jpeg_is_420(run, photos):
    from PIL import JpegImagePlugin
    m, payloads = ok(run(photos / "p12mp.jpg"))
    assert JpegImagePlugin.get_sampling(decode(payloads[0])) == 2  # 4:2:0


def test_no_upscale_small_source(run):
    """Narrower than every width: nothing larger is made, and one copy at the
    source's own size (re-encoded, so without its metadata) is."""
    m, payloads = ok(run(image_bytes(gradient(300, 200), "PNG")))
    assert m["skipped"] == [{"width": w, "reason": "would upscale"} for w in (1920, 640, 320)]
    assert [(v["width"], v["height"]) for v in m["variants"]] == [(300, 200)]
    assert decode(payloads[0]).size == (300, 200)
    assert m["payload_bytes"] == len(payloads[0])


def test_custom_widths_and_quality(run):
    src = image_bytes(gradient(1000, 500), "JPEG", quality=95)
    lo, _ = ok(run(src, "--widths", "800,100", "--quality", "40"))
    hi, _ = ok(run(src, "--widths=100,800", "--quality=95"))
    assert [(v["width"], v["height"]) for v in lo["variants"]] == [(800, 400), (100, 50)]
    assert lo["variants"][0]["bytes"] < hi["variants"][0]["bytes"]


def test_out_dir_mode(run, host, tmp_path, photos):
    r = host.run(["--input", "/in/retina.jpg", "--out-dir", "/out"], None,
                 preopens={str(photos): "/in", str(tmp_path): "/out"})
    assert r.code == 0, r.stderr
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert json.loads(r.stdout) == m
    assert sorted(p.name for p in tmp_path.iterdir()) == ["320.jpg", "640.jpg", "manifest.json"]
    for v in m["variants"]:
        data = (tmp_path / v["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == v["sha256"]


def test_alpha_png_stays_png(run):
    img = gradient(800, 600, "RGBA")
    img.putalpha(Image.linear_gradient("L").resize((800, 600)))
    m, payloads = ok(run(image_bytes(img, "PNG")))
    assert [v["format"] for v in m["variants"]] == ["png", "png"]
    out = decode(payloads[0])
    assert out.mode == "RGBA" and out.size == (640, 480)
    a = out.getchannel("A")
    assert a.getextrema()[0] < 10 and a.getextrema()[1] > 245


def test_alpha_forced_jpeg_is_flattened_on_white(run):
    img = Image.new("RGBA", (700, 700), (255, 0, 0, 0))
    m, payloads = ok(run(image_bytes(img, "PNG"), "--format", "jpeg"))
    px = decode(payloads[0]).convert("RGB").getpixel((10, 10))
    assert all(c > 245 for c in px), px


def test_webp_output(run):
    m, payloads = ok(run(image_bytes(gradient(1000, 800), "JPEG"), "--format", "webp"))
    assert [v["format"] for v in m["variants"]] == ["webp", "webp"]
    assert all(v["content_type"] == "image/webp" for v in m["variants"])
    assert decode(payloads[0]).format == "WEBP"


@pytest.mark.parametrize("fmt", ["WEBP", "GIF", "PNG"])
def test_other_inputs(run, fmt):
    src = gradient(900, 600)
    extra = {"lossless": True} if fmt == "WEBP" else {}
    m, payloads = ok(run(image_bytes(src, fmt, **extra)))
    assert m["source"]["format"] == fmt.lower()
    assert [(v["width"], v["height"]) for v in m["variants"]] == [(640, 427), (320, 213)]


def test_gif_first_frame(run):
    frames = [Image.new("RGB", (700, 400), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    _, payloads = ok(run(data))
    r, g, b = decode(payloads[0]).convert("RGB").getpixel((50, 50))
    assert r > 200 and b < 60


def test_grayscale_jpeg(run):
    m, payloads = ok(run(image_bytes(gradient(1000, 700, "L"), "JPEG")))
    assert decode(payloads[0]).mode == "L"


def test_cmyk_jpeg_falls_back(run):
    m, payloads = ok(run(image_bytes(gradient(800, 600, "CMYK"), "JPEG")))
    assert decode(payloads[0]).mode == "RGB"


@pytest.mark.parametrize("args", [["--widths", "0"], ["--quality", "500"], ["--format", "tiff"], ["--nope"]])
def test_usage_errors(run, args):
    r = run(b"", *args)
    assert r.code == 2 and r.error["class"] == "usage"


def test_help_and_version(run):
    assert run(b"", "--help").stdout.startswith(b"usage: resizer")
    assert run(b"", "--version").stdout.startswith(b"resizer ")


def test_missing_input_file_is_io(host, tmp_path):
    r = host.run(["--input", "/in/missing.jpg"], None, preopens={str(tmp_path): "/in"})
    assert r.code == 6 and r.error["class"] == "io"


def test_small_jpeg_is_decoded_whole(run):
    """A JPEG narrower than every width is served at its own size, from a
    full-size decode (not a 1/8 shrink-on-load scaled back up)."""
    import numpy as np

    rng = np.random.default_rng(7)
    texture = Image.fromarray(rng.integers(0, 256, (120, 200, 3), dtype=np.uint8))
    m, payloads = ok(run(image_bytes(texture, "JPEG", quality=95)))
    assert (m["source"]["decoded_width"], m["source"]["decoded_height"]) == (200, 120)
    assert [(v["width"], v["height"]) for v in m["variants"]] == [(200, 120)]
    got = np.asarray(decode(payloads[0]).convert("L"), dtype=np.float64)
    ref = np.asarray(texture.convert("L"), dtype=np.float64)
    # Noise survives a q82 re-encode far better than an 8x upscale would let it.
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.9
