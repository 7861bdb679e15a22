"""The hosts of the host matrix (test_host_matrix.py, `bench/resizer/run
--hosts`): one `resizer.wasm`, every runtime it is proven on, each run the
same way: a job of cases, each case repeated in one process (a crash that
happens one run in a few fails the job; every repeat must give the bytes of
the first), one output file per case.

Output per case: the raw stdout (`wasi` hosts: `node:wasi`), or the
manifest line and the variants' bytes as the host's API returns them
(`package` hosts), or `{"error": {"class": ...}}`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "packages" / "resizer-py" / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from support import budget  # noqa: E402

JS = HERE / "hosts" / "node_modules"  # tests/resizer/hosts/package.json
NODE22 = ROOT / "node_modules" / ".bin" / "node"


def _first(*paths: Path) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def _plat() -> tuple[str, str]:
    machine = os.uname().machine
    return ("arm64" if machine in ("aarch64", "arm64") else "x64"), ("aarch64" if machine in ("aarch64", "arm64") else "x64")


def node24() -> Path | None:
    node_arch, _ = _plat()
    return _first(JS / f"node24-linux-{node_arch}" / "bin" / "node")


def bun() -> Path | None:
    # npm puts the platform binary (@oven/bun-<os>-<arch>) in place of
    # bun/bin/bun.exe by the package's postinstall; the platform package
    # still has it when install scripts did not run.
    _, arch = _plat()
    return _first(JS / "bun" / "bin" / "bun.exe", JS / "@oven" / f"bun-linux-{arch}" / "bin" / "bun")


def deno() -> Path | None:
    node_arch, _ = _plat()
    return _first(JS / "deno" / "deno", JS / "@deno" / f"linux-{node_arch}-glibc" / "deno")


@dataclass(frozen=True)
class Case:
    input: Path
    # The same request twice: the package's options and the command line's.
    options: dict
    args: tuple[str, ...] = ()


@dataclass
class Host:
    name: str
    kind: str               # "package" | "wasi" | "rust" | "python"
    cmd: list[str] | None   # JS runtime command, or the Rust child
    missing: str | None = None  # why it cannot run here

    def run(self, wasm: Path, cases: list[Case], repeat: int, out_dir: Path) -> tuple[list[Path], list[list[float]]]:
        """Runs every case `repeat` times; returns each case's output file and its times (ms)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        outs = [out_dir / f"{self.name}-{i}" for i in range(len(cases))]
        if self.kind == "python":
            return outs, _run_python(wasm, cases, repeat, outs)
        if self.kind == "rust":
            return outs, _run_rust(self.cmd, wasm, cases, repeat, outs)
        job = out_dir / f"{self.name}.json"
        job.write_text(json.dumps({
            "mode": self.kind, "wasm": str(wasm), "repeat": repeat,
            "cases": [{"input": str(c.input), "out": str(o), "options": c.options, "args": list(c.args)}
                      for c, o in zip(cases, outs)],
        }))
        p = subprocess.run([*self.cmd, str(HERE / "run_host.mjs"), str(job)], capture_output=True,
                           timeout=budget(120 + 30 * repeat * len(cases)))
        assert p.returncode == 0, f"{self.name}: exit {p.returncode}: {p.stderr.decode()[-2000:]}"
        return outs, json.loads(p.stdout.decode().strip().splitlines()[-1])["ms"]


def _run_python(wasm: Path, cases: list[Case], repeat: int, outs: list[Path]) -> list[list[float]]:
    from pixport_resizer import ResizerError, resize
    kw_names = {"widths": "widths", "formats": "formats", "quality": "quality", "maxBytes": "max_bytes",
                "maxPixels": "max_pixels", "maxDimension": "max_dimension", "memoryLimit": "memory_limit"}
    ms = []
    for c, out in zip(cases, outs):
        kw = {kw_names[k]: v for k, v in c.options.items() if k in kw_names}
        if "timeoutMs" in c.options:
            kw["timeout"] = c.options["timeoutMs"] / 1000
        data = c.input.read_bytes()
        first, times = None, []
        for _ in range(repeat):
            t = time.perf_counter()
            try:
                r = resize(data, wasm=wasm, **kw)
                got = json.dumps(r.manifest).encode() + b"\n" + b"".join(r.variants)
            except ResizerError as e:
                got = json.dumps({"error": {"class": e.code, "exit_code": e.exit_code, "message": e.message}}).encode()
            times.append((time.perf_counter() - t) * 1000)
            assert first is None or got == first, f"python: {c.input.name}: a repeat differs"
            first = got
        out.write_bytes(first)
        ms.append(times)
    return ms


def _run_rust(child: list[str], wasm: Path, cases: list[Case], repeat: int, outs: list[Path]) -> list[list[float]]:
    exe, _, cwasm = child  # rust_child(): the precompiled module stands for `wasm`
    ms = []
    for c, out in zip(cases, outs):
        cmd = [exe, "--out", str(out)]
        if "memoryLimit" in c.options:
            cmd += ["--memory", str(c.options["memoryLimit"])]
        if "timeoutMs" in c.options:
            cmd += ["--timeout-ms", str(c.options["timeoutMs"])]
        p = subprocess.run([*cmd, cwasm, str(c.input), str(repeat), *c.args], capture_output=True,
                           timeout=budget(120 + 30 * repeat))
        assert p.returncode == 0, f"rust: {c.input.name}: exit {p.returncode}: {p.stderr.decode()[-2000:]}"
        ms.append(json.loads(p.stdout.decode().strip().splitlines()[-1])["wall_ms"])
    return ms


def hosts(rust_child: list[str] | None) -> list[Host]:
    """Every host, in the order of the docs' table; `missing` says why one cannot run here."""
    n24, b, d = node24(), bun(), deno()
    why_js = "not installed: npm ci in tests/resizer/hosts (scripts/setup does it)"
    deno_cmd = [str(d), "run", "--quiet", "--allow-read", "--allow-write", "--allow-env"] if d else None
    return [
        Host("wasmtime-rust", "rust", rust_child,
             None if rust_child else "the Lambda host's benchmark child was not built"),
        Host("wasmtime-python", "python", None),
        Host("node22-wasi", "wasi", [str(NODE22), "--no-warnings"], None if NODE22.exists() else "npm ci (root)"),
        Host("node22-package", "package", [str(NODE22)], None if NODE22.exists() else "npm ci (root)"),
        Host("node24-wasi", "wasi", [str(n24), "--no-warnings"] if n24 else None, None if n24 else why_js),
        Host("node24-package", "package", [str(n24)] if n24 else None, None if n24 else why_js),
        Host("bun-package", "package", [str(b)] if b else None, None if b else why_js),
        Host("deno-wasi", "wasi", deno_cmd, None if d else why_js),
        Host("deno-package", "package", deno_cmd, None if d else why_js),
    ]


# The Cargo profile of the Rust host's child and `bootstrap`: `local` (the
# stack's, release without LTO: the same wasmtime and the same machine code
# for the module, minutes less link time); PIXPORT_HOST_MATRIX_PROFILE=release
# builds them as shipped.
PROFILE = os.environ.get("PIXPORT_HOST_MATRIX_PROFILE", "local")


def rust_child(wasm: Path, work: Path) -> list[str]:
    """The Lambda host's benchmark child (lambda/benches/wasi_host.rs) and
    the module precompiled by `bootstrap --precompile`, as the Lambda ships
    it (so a process loads it instead of compiling it): `[child, --cwasm,
    PATH]`, the command `Host` runs."""
    p = subprocess.run(["cargo", "bench", "--quiet", "--no-run", "--message-format=json", "--profile", PROFILE,
                        "-p", "pixport-lambda", "--bench", "wasi_host"], cwd=ROOT, check=True, capture_output=True,
                       text=True)
    # The bench's own artifact: `bootstrap` (a bin of the same package) is built and listed too.
    exes = [m["executable"] for m in map(json.loads, p.stdout.splitlines())
            if m.get("executable") and m.get("target", {}).get("kind") == ["bench"]
            and m["target"].get("name") == "wasi_host"]
    subprocess.run(["cargo", "build", "--quiet", "--profile", PROFILE, "-p", "pixport-lambda", "--bin", "bootstrap"],
                   cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    cwasm = work / "resizer.cwasm"
    subprocess.run([str(target / PROFILE / "bootstrap"), "--precompile", str(wasm), str(cwasm)], check=True,
                   capture_output=True, timeout=budget(300))
    return [exes[-1], "--cwasm", str(cwasm)]


def split(out: bytes) -> tuple[dict, bytes] | dict:
    """(manifest, payload) of a success, or the error object."""
    if out.startswith(b'{"error"'):
        return json.loads(out)["error"]
    nl = out.index(b"\n")
    return json.loads(out[:nl]), out[nl + 1:]


def project(full, like):
    """`full` cut down to the keys `like` has (recursively, lists item by item)."""
    if isinstance(full, dict) and isinstance(like, dict):
        return {k: project(full[k], like[k]) for k in like if k in full}
    if isinstance(full, list) and isinstance(like, list) and len(full) == len(like):
        return [project(f, g) for f, g in zip(full, like)]
    return full


def same_result(host: Host, got: bytes, want: bytes) -> bool:
    """Whether a host's output is the reference's (wasmtime-py's stdout):
    byte for byte from a `wasi` host; the same manifest and variant bytes
    from a package; every field of the contract's manifest the Lambda host
    writes back (it parses it into pixport_contract::Manifest)."""
    if host.kind == "wasi":
        return got == want
    g, w = split(got), split(want)
    if isinstance(g, dict) or isinstance(w, dict):
        return g == w
    (gm, gp), (wm, wp) = g, w
    if host.kind == "rust":
        wm = project(wm, gm)
    return gm == wm and gp == wp

