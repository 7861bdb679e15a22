"""The host matrix's browser rows: the same resizer.wasm, through the
@pixport/resizer package's own WASI glue bundled as a web app would bundle
it (esbuild, the module inside the bundle), gives byte-identical output in
Chromium and Firefox to wasmtime's (the pixport-resizer Python package,
the reference of tests/resizer/test_host_matrix.py), and refuses the same
bombs with the same class.

Chromium: Debian's chromium through Playwright. Firefox: Debian's
firefox-esr through puppeteer-core over WebDriver BiDi (hostpage/firefox.mjs;
Playwright drives only its own patched Firefox builds, which are a
download). Each case runs `REPEAT` times in one page, so a crash or a
wrong answer that happens one run in a few fails the test.

The classes are test_host_matrix.py's default tier (12 MP: baseline JPEG,
the EXIF-6 phone portrait, RGBA PNG, lossy WebP) and one multi-format case
(JPEG, WebP, AVIF). `-s` prints each browser's time per case and run.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from PIL import Image

from browser.test_upload_page import chromium, ms
from support import ROOT, budget

sys.path.insert(0, str(ROOT / "tests" / "photos"))
sys.path.insert(0, str(ROOT / "packages" / "resizer-py" / "src"))
import classes  # noqa: E402
from pixport_resizer import ResizerError, resize  # noqa: E402

HERE = Path(__file__).resolve().parent / "hostpage"
NODE = ROOT / "node_modules" / ".bin" / "node"
FIREFOX = os.environ.get("PIXPORT_FIREFOX", "/usr/bin/firefox-esr")
CLASSES = ("jpeg-420", "jpeg-portrait-exif6", "png-rgba", "webp-lossy")
# Runs per case in one page; `PIXPORT_BROWSER_REPEAT=5` for the figures in
# docs/benchmarks.md (the first run of the first case compiles the module).
REPEAT = int(os.environ.get("PIXPORT_BROWSER_REPEAT", "2"))


@pytest.fixture(scope="module")
def site(resizer_wasm, tmp_path_factory):
    """A static origin with the harness bundle and the inputs, on a port
    the kernel picks (127.0.0.1 only)."""
    d = tmp_path_factory.mktemp("hostpage")
    pkg = ROOT / "packages" / "resizer-js"
    # The package with this build's module inside (its own build step).
    subprocess.run([str(NODE), str(pkg / "scripts" / "build.mjs"), str(resizer_wasm)], check=True,
                   capture_output=True, timeout=budget(60))
    subprocess.run([str(ROOT / "node_modules" / ".bin" / "esbuild"), str(HERE / "harness.js"), "--bundle",
                    "--format=esm", "--target=es2020", f"--alias:@pixport/resizer={pkg / 'src' / 'index.js'}",
                    f"--outfile={d / 'harness.js'}", "--log-level=warning"],
                   check=True, timeout=budget(60))
    (d / "index.html").write_text('<!doctype html><meta charset="utf-8"><script type="module" src="/harness.js"></script>')
    (d / "inputs").mkdir()
    src = classes.ensure(sizes=("12mp",)) / "12mp"
    for c in CLASSES:
        shutil.copyfile(src / classes.file_name(c, "12mp"), d / "inputs" / classes.file_name(c, "12mp"))
    bombs(d / "inputs")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript"}

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(d)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield d, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def bombs(d: Path) -> None:
    """Bombs as tests/resizer/test_errors.py makes them, each to be refused
    from its header before any pixel buffer: a PNG and a JPEG claiming
    50000 x 50000, a valid 12000 x 12000 PNG (144 MP) that compresses to
    ~150 KB, and text named .jpg."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    def png(w: int, h: int, idat: bytes) -> bytes:
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")

    (d / "png-header-50000.png").write_bytes(png(50_000, 50_000, zlib.compress(b"\0" * 1000)))
    side = 12_000
    comp = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    (d / "png-decompression-144mp.png").write_bytes(
        png(side, side, b"".join(comp.compress(row) for _ in range(side)) + comp.flush()))
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 150)).save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    struct.pack_into(">HH", jpeg, jpeg.index(b"\xff\xc0") + 5, 50_000, 50_000)
    (d / "jpeg-header-50000.jpg").write_bytes(bytes(jpeg))
    (d / "text.jpg").write_bytes(b"this is a text file, not a jpeg\n")


BOMBS = {"png-header-50000.png": "over_limits", "jpeg-header-50000.jpg": "over_limits",
         "png-decompression-144mp.png": "over_limits", "text.jpg": "unsupported_format"}


def cases() -> list[dict]:
    out = [{"input": f"/inputs/{classes.file_name(c, '12mp')}", "options": {}} for c in CLASSES]
    # Every encoder: WebP and AVIF beside JPEG, on the first class.
    out.append({"input": out[0]["input"], "options": {"widths": [640, 320], "formats": ["auto", "webp", "avif:320"]}})
    out += [{"input": f"/inputs/{n}", "options": {}} for n in BOMBS]
    return out


@pytest.fixture(scope="module")
def wasmtime(site, resizer_wasm) -> list[dict]:
    """wasmtime's answer per case (the Python package, this build's module):
    the manifest and its variants' SHA-256, or the error's class."""
    d, _ = site
    out = []
    for c in cases():
        opts = c["options"]
        try:
            r = resize((d / c["input"].lstrip("/")).read_bytes(), widths=opts.get("widths"),
                       formats=opts.get("formats"), wasm=resizer_wasm)
        except ResizerError as e:
            out.append({"error": {"class": e.code}})
            continue
        out.append({"manifest": r.manifest, "hashes": [hashlib.sha256(v).hexdigest() for v in r.variants]})
    return out


def check(browser_name: str, reference: list[dict], results: list[dict], capsys) -> None:
    want_cases = cases()
    assert [r["input"] for r in results] == [c["input"] for c in want_cases]
    for case, want, got in zip(want_cases, reference, results):
        what = f"{browser_name}: {case['input']} {case['options'] or ''}"
        assert got["same"], f"{what}: the {REPEAT} runs differ"
        if "error" in want:
            assert got["result"].get("error", {}).get("class") == want["error"]["class"], (what, got["result"])
        else:
            assert "error" not in got["result"], (what, got["result"])
            assert got["result"]["manifest"] == want["manifest"], f"{what}: manifest differs from wasmtime's"
            assert got["result"]["hashes"] == want["hashes"], f"{what}: variant bytes differ from wasmtime's"
        with capsys.disabled():
            print(f"\n  {browser_name} {case['input']} {case['options'] or ''}: "
                  f"{', '.join(f'{t:.0f}' for t in got['ms'])} ms")


def matrix_budget_s() -> float:
    # 12 MP in wasm is a second or two on an idle core; a cold, loaded
    # 2-core machine gets far more.
    return budget(60 + 20 * REPEAT * len(cases()))


def test_chromium_gives_wasmtime_bytes(site, wasmtime, capsys):
    from playwright.sync_api import sync_playwright

    _, url = site
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        try:
            page = b.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            page.wait_for_function("() => window.harnessReady === true", timeout=ms(60))
            page.set_default_timeout(matrix_budget_s() * 1000)
            results = page.evaluate("([c, r]) => window.runMatrix(c, r)", [cases(), REPEAT])
            assert not errors, errors
            check(f"chromium {b.version}", wasmtime, results, capsys)
        finally:
            b.close()


def test_firefox_gives_wasmtime_bytes(site, wasmtime, tmp_path, capsys):
    if not os.access(FIREFOX, os.X_OK):
        pytest.fail(f"Debian's firefox-esr is missing at {FIREFOX}: ./run setup installs it (apt-get install firefox-esr)")
    _, url = site
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"cases": cases(), "repeat": REPEAT, "timeoutMs": int(matrix_budget_s() * 1000)}))
    p = subprocess.run([str(NODE), str(HERE / "firefox.mjs"), url + "/", str(job)], capture_output=True,
                       cwd=ROOT, timeout=matrix_budget_s() + budget(60))
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    out = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert not out["errors"], out["errors"]
    check(out["browser"], wasmtime, out["results"], capsys)
