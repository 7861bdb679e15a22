"""Times each tool on the test photos (tests/photos/generate.py), per process (cold) and warm, and
prints one markdown table: median wall, CPU and peak RSS, and the speed-up
against sharp on one thread.

Per process = one child process per run, timed from spawn to exit; CPU and
peak RSS come from wait4() for that child alone. Warm = long-lived children
that each do one warm-up then REPEAT timed runs and report wall and CPU per
run themselves (runtime start excluded); peak RSS is the whole process's. A new host is one more
entry in `tools()`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from support import photos_dir  # noqa: E402

PHOTOS = photos_dir()
IMAGES = ["p12mp.jpg", "p24mp.jpg", "p48mp.jpg", "astronaut.png"]
BASELINE = "sharp 1 thread"


@dataclass
class Tool:
    name: str
    cold: list[str]          # argv; "{image}" is replaced
    warm: list[str]          # argv; "{image}" and "{repeat}" are replaced
    start: list[str]         # argv doing no image work: the runtime's own start
    env: dict[str, str] = field(default_factory=dict)


def tools(a: argparse.Namespace) -> list[Tool]:
    py = sys.executable
    child = str(HERE / "wasm_child.py")
    sharp = str(HERE / "sharp_resize.mjs")
    one = {"SHARP_CONCURRENCY": "1", "UV_THREADPOOL_SIZE": "1"}
    rust = [a.rust_host, a.cwasm]
    return [
        Tool("wasm (Rust wasmtime, Lambda host)", rust + ["{image}"], rust + ["{image}", "{repeat}"],
             rust + ["--version"]),
        Tool("wasm (wasmtime-py)", [py, child, a.wasm, "{image}"], [py, child, a.wasm, "{image}", "{repeat}"],
             [py, child, a.wasm, "--version"]),
        Tool("native", [a.native, "--input", "{image}"], [a.native_warm, "{image}", "{repeat}"],
             [a.native, "--version"]),
        Tool(BASELINE, [a.node, sharp, "{image}"], [a.node, sharp, "{image}", "{repeat}"], [a.node, sharp], one),
        Tool("sharp default", [a.node, sharp, "{image}"], [a.node, sharp, "{image}", "{repeat}"], [a.node, sharp]),
    ]


def spawn(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, bytes]:
    """Runs one child; returns (wall ms, cpu ms, peak RSS MiB, stdout)."""
    e = {**os.environ, **env}
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t) * 1000
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{argv} failed ({p.returncode}): {err.decode()[-500:]}")
    return wall, (ru.ru_utime + ru.ru_stime) * 1000, ru.ru_maxrss / 1024, out


def fill(argv: list[str], image: Path, repeat: int = 0) -> list[str]:
    return [x.replace("{image}", str(image)).replace("{repeat}", str(repeat)) for x in argv]


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}, load {load:.1f} at start"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--wasm", required=True)
    ap.add_argument("--native", required=True)
    ap.add_argument("--native-warm", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--rust-host", required=True, help="lambda/benches/wasi_host.rs: the Lambda host's runner")
    ap.add_argument("--cwasm", required=True, help="resizer.wasm precompiled by `bootstrap --precompile`")
    ap.add_argument("--runs", type=int, default=5, help="per-process runs per tool and image")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per warm process")
    ap.add_argument("--warm-rounds", type=int, default=3, help="warm processes per tool and image")
    ap.add_argument("--images", nargs="*", default=IMAGES)
    ap.add_argument("--out", help="also write the table to this file")
    a = ap.parse_args()

    # Precompile once so per-process runs measure deserialize + instantiate,
    # not Cranelift. In a child: wait4's peak RSS of a forked child includes
    # the parent's pages before exec, so this process must stay small.
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                    "from pixport_resizer.wasi import Host; from pathlib import Path; Host(Path(sys.argv[2]), cache=True)",
                    str(ROOT / "packages" / "resizer-py" / "src"), a.wasm], check=True)

    results: dict[tuple[str, str, str], tuple[float, float, float]] = {}
    ts = tools(a)
    for name in a.images:
        image = PHOTOS / name
        # Rounds interleave the tools, so load from other processes on this
        # shared machine hits every tool alike instead of one tool's streak.
        cold: dict[str, list] = {t.name: [] for t in ts}
        warm: dict[str, list] = {t.name: [] for t in ts}
        for _ in range(a.runs):
            for t in ts:
                cold[t.name].append(spawn(fill(t.cold, image), t.env))
        for _ in range(a.warm_rounds):
            for t in ts:
                _, _, rss, out = spawn(fill(t.warm, image, a.repeat), t.env)
                w = json.loads(out.decode().strip().splitlines()[-1])
                warm[t.name].append((w["wall_ms"], w["cpu_ms"], rss))
        for t in ts:
            c = cold[t.name]
            results[(name, "per process", t.name)] = (
                statistics.median(x[0] for x in c), statistics.median(x[1] for x in c), max(x[2] for x in c))
            ws = warm[t.name]
            results[(name, "warm", t.name)] = (
                statistics.median(v for x in ws for v in x[0]),
                statistics.median(v for x in ws for v in x[1]),
                max(x[2] for x in ws))
            print(f"  {name:14} {t.name:20} cold {results[(name, 'per process', t.name)][0]:7.0f} ms"
                  f"  warm {results[(name, 'warm', t.name)][0]:7.0f} ms", file=sys.stderr)

    lines = [
        f"Machine: {machine()}. Per process: median of {a.runs} processes per cell; warm: median of "
        f"{a.warm_rounds} processes x {a.repeat} in-process runs (each after 1 warm-up); tools interleaved. "
        f"Speed-up (wall and CPU) and RSS are relative to `{BASELINE}`.",
        "",
        "| image | mode | tool | wall ms | CPU ms | peak RSS MiB | speed-up (wall) | speed-up (CPU) | RSS vs sharp 1t |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in a.images:
        for mode in ("per process", "warm"):
            base = results[(name, mode, BASELINE)]
            for t in ts:
                wall, cpu, rss = results[(name, mode, t.name)]
                lines.append(f"| {name} | {mode} | {t.name} | {wall:.0f} | {cpu:.0f} | {rss:.0f} | "
                             f"{base[0] / wall:.2f}x | {base[1] / max(cpu, 1):.2f}x | {rss / base[2]:.2f} |")
    lines += ["", "Runtime start alone (no image; median of the same number of processes):", "",
              "| tool | wall ms | CPU ms | peak RSS MiB |", "|---|---:|---:|---:|"]
    for t in ts:
        st = [spawn(t.start, t.env) for _ in range(a.runs)]
        lines.append(f"| {t.name} | {statistics.median(x[0] for x in st):.0f} | "
                     f"{statistics.median(x[1] for x in st):.0f} | {max(x[2] for x in st):.0f} |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        Path(a.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
