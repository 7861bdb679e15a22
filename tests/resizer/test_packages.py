"""The two packages build from the repository (`packages/build`), carry what
a registry needs (name, version, licence, files, the bundled module), and
their README examples run as written against what was built: every `js`
block on Node 22 and Deno with the packed tarball installed,
every `python` block with the wheel; a `// ...` or `# ...` comment right
after a line that prints is output the run must show. (The README's `html`
block is the browser's: tests/browser runs the package in Chromium.)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import hostmatrix
from support import budget

ROOT = Path(__file__).resolve().parents[2]
JS_PKG = ROOT / "packages" / "resizer-js"
PY_PKG = ROOT / "packages" / "resizer-py"


def blocks(readme: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", readme.read_text(), re.S | re.M)


def expected_output(code: str, comment: str) -> list[str]:
    """Comment lines that directly follow a printing line: what it prints."""
    out, printing = [], False
    for line in code.splitlines():
        s = line.strip()
        if printing and s.startswith(comment):
            out.append(s[len(comment):].strip())
            continue
        printing = "print(" in s or "console.log(" in s
    return out


@pytest.fixture(scope="module")
def built(resizer_wasm) -> tuple[Path, Path]:
    """(npm tarball, wheel), built by packages/build from the release module."""
    for old in [*JS_PKG.glob("*.tgz"), *(PY_PKG / "dist").glob("*.whl")]:
        old.unlink()
    subprocess.run([str(ROOT / "packages" / "build"), "--wasm", str(resizer_wasm)], check=True,
                   capture_output=True, timeout=budget(300))
    return next(JS_PKG.glob("*.tgz")), next((PY_PKG / "dist").glob("*.whl"))


def test_npm_package_is_publishable(built, resizer_wasm):
    tgz, _ = built
    with tarfile.open(tgz) as t:
        names = set(t.getnames())
        meta = json.load(t.extractfile("package/package.json"))
        bundled = t.extractfile("package/resizer.wasm").read()
    assert meta["name"] == "@pixport/resizer" and meta["version"] == "0.1.0"
    assert meta["license"] == "Apache-2.0" and meta["type"] == "module"
    assert meta["exports"]["."] == {"types": "./index.d.ts", "default": "./src/index.js"}
    assert not meta.get("dependencies"), "the package must run with nothing else installed"
    assert {"package/LICENSE", "package/README.md", "package/index.d.ts", "package/src/index.js",
            "package/src/wasi.js", "package/src/capmemory.js", "package/src/wasm.js"} <= names
    assert not any("scripts/" in n or n.endswith(".tgz") for n in names), names
    assert bundled == resizer_wasm.read_bytes()


def test_wheel_is_publishable(built, resizer_wasm):
    _, whl = built
    assert whl.name == "pixport_resizer-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl) as z:
        meta = z.read("pixport_resizer-0.1.0.dist-info/METADATA").decode()
        assert z.read("pixport_resizer/resizer.wasm") == resizer_wasm.read_bytes()
        assert "pixport_resizer-0.1.0.dist-info/licenses/LICENSE" in z.namelist()
    assert "Name: pixport-resizer" in meta and "License-Expression: Apache-2.0" in meta
    assert "Requires-Dist: wasmtime==50.0.1" in meta


@pytest.fixture(scope="module")
def npm_project(built, photos, tmp_path_factory) -> Path:
    """A project that installed the packed tarball (no registry: it has no dependencies)."""
    tgz, _ = built
    d = tmp_path_factory.mktemp("npm-project")
    (d / "package.json").write_text('{"name": "readme-examples", "private": true, "type": "module"}')
    subprocess.run(["npm", "install", "--offline", "--no-audit", "--no-fund", "--loglevel=error", str(tgz)],
                   cwd=d, check=True, capture_output=True, timeout=budget(120))
    shutil.copy(photos / "p12mp.jpg", d / "photo.jpg")
    return d


# Node 22 (the project's) and Deno (its own module resolution and
# permissions); Node 24 and Bun run the same package in test_host_matrix.py.
JS_RUNTIMES = {
    "node22": lambda: [str(hostmatrix.NODE22)],
    "deno": lambda: [str(hostmatrix.deno()), "run", "--quiet", "--allow-read", "--allow-write", "--allow-env"]
    if hostmatrix.deno() else None,
}
JS_BLOCKS = blocks(JS_PKG / "README.md", "js")


def test_readme_has_examples():
    assert len(JS_BLOCKS) >= 3 and len(blocks(PY_PKG / "README.md", "python")) >= 3


@pytest.mark.parametrize("runtime", sorted(JS_RUNTIMES))
@pytest.mark.parametrize("index", range(len(JS_BLOCKS)))
def test_js_readme_example(runtime, index, npm_project):
    cmd = JS_RUNTIMES[runtime]()
    assert cmd, f"{runtime} is not installed: npm ci in tests/resizer/hosts (scripts/setup)"
    code = JS_BLOCKS[index]
    script = npm_project / f"example{index}.mjs"
    script.write_text(code)
    p = subprocess.run([*cmd, str(script)], cwd=npm_project, capture_output=True, text=True, timeout=budget(180))
    assert p.returncode == 0, f"{runtime}: example {index}: {p.stderr[-2000:]}"
    for line in expected_output(code, "//"):
        assert line in p.stdout, (runtime, index, line, p.stdout)


@pytest.fixture(scope="module")
def wheel_dir(built, photos, tmp_path_factory) -> Path:
    """The wheel unpacked as an installer lays it out; wasmtime comes from this venv."""
    _, whl = built
    d = tmp_path_factory.mktemp("wheel")
    zipfile.ZipFile(whl).extractall(d / "site")
    shutil.copy(photos / "p12mp.jpg", d / "photo.jpg")
    return d


@pytest.mark.parametrize("index", range(len(blocks(PY_PKG / "README.md", "python"))))
def test_python_readme_example(index, wheel_dir):
    code = blocks(PY_PKG / "README.md", "python")[index]
    p = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(wheel_dir / 'site')!r})\n"
                        + code], cwd=wheel_dir, capture_output=True, text=True, timeout=budget(180))
    assert p.returncode == 0, f"example {index}: {p.stderr[-2000:]}"
    for line in expected_output(code, "#"):
        assert line in p.stdout, (index, line, p.stdout)


def test_types_check(npm_project):
    """index.d.ts describes the API as the README uses it (Deno's bundled TypeScript checks it)."""
    d = hostmatrix.deno()
    assert d, "deno is not installed: npm ci in tests/resizer/hosts (scripts/setup)"
    (npm_project / "check.ts").write_text("""
import { resize, ResizerError, EXIT_CODES, type ResizeOptions, type ResizeResult } from '@pixport/resizer';
const opts: ResizeOptions = { widths: [640], formats: ['auto', 'webp'], quality: 80, memoryLimit: 1 << 28, timeoutMs: 1000 };
const r: ResizeResult = await resize(new Uint8Array(10), opts).catch((e: ResizerError) => {
  const c: 'corrupt' | string = e.code;
  console.log(c, e.exitCode ?? EXIT_CODES.corrupt);
  throw e;
});
const w: number = r.manifest.variants[0].width;
const b: Uint8Array = r.variants[0];
console.log(w, b.length, r.manifest.placeholder?.thumbhash);
""")
    bad = npm_project / "bad.ts"
    bad.write_text("import { resize } from '@pixport/resizer';\nawait resize(new Uint8Array(1), { widths: '640' });\n")
    ok = subprocess.run([str(d), "check", "--quiet", "check.ts"], cwd=npm_project, capture_output=True, text=True,
                        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "HOME": str(npm_project)}, timeout=budget(120))
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run([str(d), "check", "--quiet", "bad.ts"], cwd=npm_project, capture_output=True, text=True,
                           env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "HOME": str(npm_project)},
                           timeout=budget(120))
    assert wrong.returncode != 0 and "widths" in wrong.stderr, wrong.stderr


def test_bundles_for_browsers(npm_project):
    """A page bundles the package as it is (esbuild, the repository's, for
    browsers): no Node built-in is pulled in, and the module is inside."""
    (npm_project / "worker.js").write_text(
        "import { resize } from '@pixport/resizer';\n"
        "self.onmessage = async (e) => self.postMessage((await resize(e.data, { widths: [320] })).manifest);\n")
    p = subprocess.run([str(ROOT / "node_modules" / ".bin" / "esbuild"), "worker.js", "--bundle", "--format=esm",
                        "--platform=browser", "--outfile=bundle.js", "--log-level=error"],
                       cwd=npm_project, capture_output=True, text=True, timeout=budget(120))
    assert p.returncode == 0, p.stderr
    bundle = (npm_project / "bundle.js").read_text()
    assert "wasi_snapshot_preview1" in bundle and len(bundle) > 4_000_000


def test_js_option_errors(npm_project):
    """Bad options are `usage` errors, as on the command line; the module
    judges values (exit code 2), the package names and types."""
    (npm_project / "options.mjs").write_text("""
import { resize, ResizerError } from '@pixport/resizer';
const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
const out = [];
for (const opts of [{ quality: 0 }, { widths: [0] }, { formats: ['gif'] }, { qualty: 80 }, { memoryLimit: 1000 },
                    { timeoutMs: -1 }]) {
  try {
    await resize(png, opts);
    out.push('resolved');
  } catch (e) {
    out.push(e instanceof ResizerError ? `${e.code}:${e.exitCode}` : `other:${e}`);
  }
}
console.log(JSON.stringify(out));
""")
    p = subprocess.run([str(hostmatrix.NODE22), "options.mjs"], cwd=npm_project, capture_output=True, text=True,
                       timeout=budget(120))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == ["usage:2"] * 6


def test_python_option_errors(wheel_dir):
    code = """
from pixport_resizer import ResizerError, resize
out = []
for kw in ({"quality": 0}, {"widths": [0]}, {"formats": ["gif"]}, {"memory_limit": 1000}, {"timeout": -1}):
    try:
        resize(b"\\x89PNG", **kw)
        out.append("returned")
    except ResizerError as e:
        out.append(f"{e.code}:{e.exit_code}")
try:
    resize("not bytes")
except ResizerError as e:
    out.append(f"{e.code}:{e.exit_code}")
print(out)
"""
    p = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(wheel_dir / 'site')!r})\n"
                        + code], cwd=wheel_dir, capture_output=True, text=True, timeout=budget(180))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(["usage:2"] * 6)
