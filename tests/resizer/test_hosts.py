"""One resizer.wasm, two WASI hosts: embedded wasmtime and Node 22 node:wasi
must produce byte-identical results (stdout framing and --out-dir files)."""

from __future__ import annotations

import pytest

from conftest import gradient, image_bytes


@pytest.mark.parametrize("name", ["p12mp.jpg", "p24mp.jpg", "p48mp.jpg", "retina.jpg", "astronaut.png"])
def test_stdout_identical(run, node_run, photos, name):
    a = run(photos / name)
    b = node_run(photos / name)
    assert a.code == 0 and b.code == 0, (a.stderr, b.stderr)
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
