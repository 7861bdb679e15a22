"""Fixtures for the resizer tests: the embedded-wasmtime host, the Node host,
and builders for special images (made here with Pillow, never checked in)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The wasmtime host lives in the Python package (packages/resizer-py); the
# tests import it from the source tree, the one copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packages" / "resizer-py" / "src"))
from pixport_resizer.wasi import Host, Run as Result  # noqa: E402

from support import budget  # noqa: E402

HERE = Path(__file__).resolve().parent
NODE = HERE.parent.parent / "node_modules" / ".bin" / "node"

# Caps every test run gets: 1 GiB of linear memory, as the Lambda host sets
# it, and an epoch deadline that only stops a runaway module. The deadline
# counts wall-clock time, and a 48 MP photo on a cold, loaded 2-core machine
# takes far longer than on an idle one, so it is not the deployed 30 s:
# these tests are about outputs; the caps themselves are tested with tight
# values in test_errors.py.
MEMORY_CAP = 1 << 30
TIME_CAP_S = budget(180)


@pytest.fixture(scope="session")
def host(resizer_wasm: Path) -> Host:
    return Host(resizer_wasm, cache=True)


@pytest.fixture(scope="session")
def run(host: Host):
    def _run(data: bytes | Path, *args: str, **kw) -> Result:
        kw.setdefault("memory_limit", MEMORY_CAP)
        kw.setdefault("timeout_s", TIME_CAP_S)
        return host.run(list(args), data, **kw)
    return _run


@pytest.fixture(scope="session")
def node_run(resizer_wasm: Path, tmp_path_factory):
    """Runs the same module under Node 22's node:wasi; returns a Result."""
    assert NODE.exists(), f"Node 22 missing at {NODE}: npm ci installs it from the package for this OS and CPU (package.json optionalDependencies)"

    def _run(data: bytes | Path, *args: str, preopens: dict[str, str] | None = None) -> Result:
        d = tmp_path_factory.mktemp("node")
        stdin = d / "stdin"
        if isinstance(data, Path):
            stdin = data
        else:
            stdin.write_bytes(data)
        # --no-turbo-fast-api-calls: Node 22.23's node:wasi still segfaults on the
        # 48 MP photo without it (the nodejs/node#53087 family); with it, all pass.
        cmd = [str(NODE), "--no-warnings=ExperimentalWarning", "--no-turbo-fast-api-calls", str(HERE / "run_wasi.mjs"), str(resizer_wasm), str(stdin), str(d / "out"), str(d / "err")]
        for h, g in (preopens or {}).items():
            cmd += ["--dir", f"{h}={g}"]
        cmd += ["--", *args]
        p = subprocess.run(cmd, capture_output=True, timeout=budget(600))
        assert not p.stderr, p.stderr.decode()
        return Result(p.returncode, (d / "out").read_bytes(), (d / "err").read_bytes())
    return _run


def ok(r: Result) -> tuple[dict, list[bytes]]:
    assert r.code == 0, (r.code, r.trap, r.stderr)
    return r.framed()


def image_bytes(img: Image.Image, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def gradient(w: int, h: int, mode: str = "RGB") -> Image.Image:
    """A smooth, asymmetric test picture: quadrants are distinguishable after any rotation."""
    import numpy as np
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1)).astype("uint8")
    g = (y * 255 // max(h - 1, 1)).astype("uint8")
    b = np.full_like(r, 60)
    img = Image.fromarray(np.dstack([r, g, b]), "RGB")
    return img.convert(mode) if mode != "RGB" else img


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def manifest_summary(m: dict) -> str:
    return json.dumps({k: m[k] for k in ("source", "skipped")})
