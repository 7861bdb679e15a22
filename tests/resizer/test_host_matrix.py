"""One resizer.wasm, every host: wasmtime (Rust, the Lambda's; Python, the
pixport-resizer package), Node 22 and Node 24 (`node:wasi` and the
@pixport/resizer package), Bun (the package) and Deno (`node:wasi` and the
package) give byte-identical results, refuse the same bombs with the same
class, and stop at the same memory and time caps (hostmatrix.py runs them).

The reference is the wasmtime-py run of tests/resizer/conftest.py. `wasi`
hosts must give its stdout byte for byte; `package` hosts the same manifest
(parsed) and the same bytes for every variant.

Default tier: the classes of `DEFAULT_CLASSES` (12 MP JPEG 4:2:0, PNG RGBA,
lossy WebP) and one multi-format case (JPEG to JPEG, WebP, AVIF), each run
`DEFAULT_REPEAT` times per host in one process.
`PIXPORT_HOST_MATRIX=full` runs every class of tests/photos/classes.py (12
and 24 MP) `FULL_REPEAT` times; `bench/resizer/run --hosts` does that and
prints the speed table (docs/benchmarks.md).

Not here: Bun's `node:wasi` ignores the `stdin`/`stdout`/`stderr` it is
given (it uses the process's own) and returns no exit code, so only the
package runs on Bun; browsers are tests/browser's (the same package).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import hostmatrix
from hostmatrix import Case
from test_errors import jpeg_header_bomb, png_decompression_bomb, png_header_bomb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "photos"))
import classes  # noqa: E402

FULL = os.environ.get("PIXPORT_HOST_MATRIX") == "full"
# One per decoder family (JPEG with the planar 4:2:0 path, PNG with alpha,
# lossy WebP); the multi-format case adds the WebP and AVIF encoders.
DEFAULT_CLASSES = ("jpeg-420", "png-rgba", "webp-lossy")
DEFAULT_REPEAT = 2
FULL_REPEAT = 5
# Deno, Bun and Node 24 are tests/resizer/hosts/package.json's; Node 22 the root's.
HOSTS = hostmatrix.hosts(None)


@pytest.fixture(scope="module")
def rust_child(resizer_wasm, tmp_path_factory) -> list[str]:
    return hostmatrix.rust_child(resizer_wasm, tmp_path_factory.mktemp("rust"))


@pytest.fixture(scope="module")
def matrix_cases() -> list[Case]:
    if FULL:
        d = classes.ensure()
        files = [d / n for n in classes.names()]
    else:
        d = classes.ensure(sizes=("12mp",)) / "12mp"
        files = [d / classes.file_name(c, "12mp") for c in DEFAULT_CLASSES]
    cases = [Case(f, {}) for f in files]
    # Every encoder: WebP and AVIF beside JPEG, on the first class.
    cases.append(Case(files[0], {"widths": [640, 320], "formats": ["auto", "webp", "avif:320"]},
                      ("--widths", "640,320", "--formats", "auto,webp,avif:320")))
    return cases


def _host(name: str, request) -> hostmatrix.Host:
    """The host `name`; the Rust one's child is built only when it runs."""
    child = request.getfixturevalue("rust_child") if name == "wasmtime-rust" else None
    h = next(h for h in hostmatrix.hosts(child) if h.name == name)
    if h.missing:
        pytest.fail(f"{name} cannot run: {h.missing}")
    return h


@pytest.fixture(scope="module")
def references(run, matrix_cases) -> list[bytes]:
    """wasmtime-py's stdout per case: what every host must give."""
    out = []
    for case in matrix_cases:
        r = run(case.input, *case.args)
        assert r.code == 0, r.stderr
        out.append(r.stdout)
    return out


@pytest.mark.parametrize("name", [h.name for h in HOSTS])
def test_host_gives_identical_bytes(name, references, resizer_wasm, matrix_cases, tmp_path, capsys, request):
    host = _host(name, request)
    repeat = FULL_REPEAT if FULL else DEFAULT_REPEAT
    outs, ms = host.run(resizer_wasm, matrix_cases, repeat, tmp_path)
    for case, want, out, times in zip(matrix_cases, references, outs, ms):
        got = out.read_bytes()
        if host.kind == "wasi":
            assert got == want, f"{name}: {case.input.name} {case.args}: stdout differs from wasmtime's"
        else:
            assert not isinstance(hostmatrix.split(got), dict), (name, case.input.name, hostmatrix.split(got))
            assert hostmatrix.same_result(host, got, want), f"{name}: {case.input.name}: manifest or variants differ"
        with capsys.disabled():
            print(f"\n  {name} {case.input.name} {' '.join(case.args)}: {', '.join(f'{t:.0f}' for t in times)} ms")


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> list[tuple[Case, str]]:
    d = tmp_path_factory.mktemp("bombs")
    out = []
    for name, make in (("png-header-50000", png_header_bomb), ("jpeg-header-50000", jpeg_header_bomb),
                       ("png-decompression-144mp", png_decompression_bomb)):
        (d / name).write_bytes(make())
        out.append((Case(d / name, {}), "over_limits"))
    (d / "text.jpg").write_bytes(b"this is a text file, not a jpeg\n")
    out.append((Case(d / "text.jpg", {}), "unsupported_format"))
    return out


@pytest.mark.parametrize("name", [h.name for h in HOSTS])
def test_host_refuses_bombs_alike(name, resizer_wasm, bombs, tmp_path, request):
    host = _host(name, request)
    outs, _ = host.run(resizer_wasm, [c for c, _ in bombs], 1, tmp_path)
    for (case, cls), out in zip(bombs, outs):
        got = hostmatrix.split(out.read_bytes())
        assert isinstance(got, dict), f"{name}: {case.input.name} was not refused"
        assert got["class"] == cls, (name, case.input.name, got)


CAPPED = [h.name for h in HOSTS if h.kind != "wasi"]


@pytest.mark.parametrize("name", CAPPED)
def test_host_caps_alike(name, resizer_wasm, photos, tmp_path, request):
    """A valid 49 MP PNG (48 KB: within every limit) under a 32 MiB memory
    cap is `over_limits` with the host's "memory cap" message (the cap
    stops the decoder's pixel buffer: a trap the host reports, never a
    crash of the host process); the 48 MP photo under a 50 ms time cap is
    `timeout`; on every host with caps. `node:wasi` has none of its own
    (the package adds them)."""
    host = _host(name, request)
    png = tmp_path / "grey-49mp.png"
    png.write_bytes(png_decompression_bomb(7000))
    cases = [Case(png, {"memoryLimit": 32 << 20}),
             Case(photos / "p48mp.jpg", {"timeoutMs": 50})]
    outs, _ = host.run(resizer_wasm, cases, 1, tmp_path)
    mem, slow = (hostmatrix.split(o.read_bytes()) for o in outs)
    assert isinstance(mem, dict) and mem["class"] == "over_limits", (name, mem)
    assert "memory cap" in mem["message"], (name, mem)
    assert isinstance(slow, dict) and slow["class"] == "timeout", (name, slow)
