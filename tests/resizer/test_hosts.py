"""One resizer.wasm, two WASI hosts: embedded wasmtime and Node 22 node:wasi
must produce byte-identical results (stdout framing and --out-dir files).

Node's node:wasi has crashed intermittently (segfaults on large inputs, the
V8 fast-API bug); each Node run is repeated so a crash that happens one run
in a few fails the test rather than passing by luck.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import gradient, image_bytes

NODE_REPEATS = 3


@pytest.mark.parametrize("name", ["p12mp.jpg", "p24mp.jpg", "p48mp.jpg", "retina.jpg", "astronaut.png"])
def test_stdout_identical(run, node_run, photos, name):
    a = run(photos / name)
    assert a.code == 0, a.stderr
    for _ in range(NODE_REPEATS):
        b = node_run(photos / name)
        assert b.code == 0, (b.code, b.stderr)
        assert a.stdout == b.stdout


@pytest.fixture(scope="module")
def large_inputs(tmp_path_factory):
    """12 MP photo-like pictures (seeded noise over gradients) as PNG (27 MB)
    and lossy WebP: without --no-turbo-fast-api-calls Node 22.23 segfaulted
    on every run of this PNG."""
    rng = np.random.default_rng(12)
    h, w = 3000, 4000
    y, x = np.mgrid[0:h, 0:w]
    base = np.dstack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)]).astype(np.int16)
    img = Image.fromarray(np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype("uint8"), "RGB")
    d = tmp_path_factory.mktemp("large")
    img.save(d / "p12.png")
    img.save(d / "p12.webp", quality=85)
    return d


@pytest.mark.parametrize("name", ["p12.png", "p12.webp"])
def test_large_inputs_repeated(run, node_run, large_inputs, name):
    a = run(large_inputs / name)
    assert a.code == 0, a.stderr
    for _ in range(2 * NODE_REPEATS):
        b = node_run(large_inputs / name)
        assert b.code == 0, (b.code, b.stderr)
        assert a.stdout == b.stdout


@pytest.mark.parametrize("args", [["--format", "webp"], ["--format", "png", "--widths", "500,120"]])
def test_other_formats_identical(run, node_run, args):
    img = gradient(800, 600, "RGBA")
    img.putalpha(200)
    data = image_bytes(img, "PNG")
    a, b = run(data, *args), node_run(data, *args)
    assert a.code == 0 and a.stdout == b.stdout


def test_out_dir_identical(host, node_run, photos, tmp_path):
    wt, nd = tmp_path / "wasmtime", tmp_path / "node"
    wt.mkdir()
    nd.mkdir()
    args = ["--input", "/in/p12mp.jpg", "--out-dir", "/out"]
    a = host.run(args, None, preopens={str(photos): "/in", str(wt): "/out"})
    b = node_run(b"", *args, preopens={str(photos): "/in", str(nd): "/out"})
    assert a.code == 0 and b.code == 0, (a.stderr, b.stderr)
    names = sorted(p.name for p in wt.iterdir())
    assert names == sorted(p.name for p in nd.iterdir()) == ["1920.jpg", "320.jpg", "640.jpg", "manifest.json"]
    for n in names:
        assert (wt / n).read_bytes() == (nd / n).read_bytes(), n


def test_errors_identical(run, node_run):
    for data in (b"not an image", image_bytes(gradient(300, 300), "JPEG")[:500]):
        a, b = run(data), node_run(data)
        assert (a.code, a.stderr) == (b.code, b.stderr)
        assert a.code in (3, 4)
