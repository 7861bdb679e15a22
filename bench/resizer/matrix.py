"""The input-class matrix (tests/photos/classes.py): resizer.wasm under the
Lambda host's Rust wasmtime against sharp on one thread and sharp default,
per process and warm, with peak memory, and node:wasi repeated on every
class; prints one markdown table with a verdict per target.

Targets (issue #12), against sharp on one thread, per process and warm
(wall time): every JPEG class >= 1.5x, PNG, WebP and GIF >= 1.2x; no class
behind sharp default (2 threads) in either mode; peak RSS <= 0.5x sharp one
thread's (per process, the figure a Lambda's memory setting is sized by).

node:wasi: each class runs --node-repeats (5) times under Node's node:wasi (with
--no-turbo-fast-api-calls, as documented for embedders) and its stdout must
be byte-identical to embedded wasmtime's (the PyPI package) every time, so
an intermittent crash shows as a count below the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "photos"))
sys.path.insert(0, str(ROOT / "packages" / "resizer-py" / "src"))
import classes  # noqa: E402
from bench import machine, spawn  # noqa: E402

WASM = "wasm (Lambda host)"
SHARP1 = "sharp 1 thread"
SHARP2 = "sharp default"
RUN_WASI = ROOT / "tests" / "resizer" / "run_wasi.mjs"


def target(name: str) -> float:
    return 1.5 if name.startswith("jpeg") else 1.2


def node_check(a: argparse.Namespace, image: Path, reference: bytes, repeats: int) -> tuple[int, int]:
    """(runs that exited 0, runs byte-identical to wasmtime) out of `repeats`."""
    ok = same = 0
    with tempfile.TemporaryDirectory() as d:
        out, err = Path(d) / "out", Path(d) / "err"
        for _ in range(repeats):
            p = subprocess.run([a.node, "--no-warnings=ExperimentalWarning", "--no-turbo-fast-api-calls",
                                str(RUN_WASI), a.wasm, str(image), str(out), str(err), "--"],
                               capture_output=True)
            if p.returncode == 0:
                ok += 1
                same += out.read_bytes() == reference
            else:
                print(f"  node:wasi {image.name}: exit {p.returncode} {p.stderr.decode()[-300:]}", file=sys.stderr)
    return ok, same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wasm", required=True)
    ap.add_argument("--cwasm", required=True)
    ap.add_argument("--rust-host", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--runs", type=int, default=3, help="per-process runs per tool and class")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per warm process")
    ap.add_argument("--warm-rounds", type=int, default=2, help="warm processes per tool and class")
    ap.add_argument("--node-repeats", type=int, default=5, help="node:wasi runs per class")
    ap.add_argument("--sizes", nargs="*", default=list(classes.SIZES))
    ap.add_argument("--only", nargs="*", default=None, help="class names (default: all)")
    ap.add_argument("--out", help="also write the table to this file")
    a = ap.parse_args()

    # In a child: wait4's peak RSS of a forked child includes this process's
    # pages, so this process stays small until the timings are done.
    subprocess.run([sys.executable, str(ROOT / "tests" / "photos" / "classes.py"), "--sizes", *a.sizes], check=True,
                   stdout=subprocess.DEVNULL)
    dest = classes.default_dest()

    files = [n for n in classes.names(tuple(a.sizes))
             if a.only is None or any(Path(n).name.startswith(c + "-") for c in a.only)]
    one = {"SHARP_CONCURRENCY": "1", "UV_THREADPOOL_SIZE": "1"}
    sharp = str(HERE / "sharp_resize.mjs")
    rust = [a.rust_host, a.cwasm]
    tools = [(WASM, rust, {}), (SHARP1, [a.node, sharp], one), (SHARP2, [a.node, sharp], {})]
    head = machine()

    rows = []
    for rel in files:
        image = dest / rel
        cold = {t: [] for t, _, _ in tools}
        warm = {t: [] for t, _, _ in tools}
        wrss = {t: [] for t, _, _ in tools}
        for _ in range(a.runs):  # interleaved, so load from others hits every tool alike
            for t, argv, env in tools:
                cold[t].append(spawn(argv + [str(image)], env))
        for _ in range(a.warm_rounds):
            for t, argv, env in tools:
                _, _, rss, out = spawn(argv + [str(image), str(a.repeat)], env)
                w = json.loads(out.decode().strip().splitlines()[-1])
                warm[t].extend(w["wall_ms"])
                wrss[t].append(rss)
        pp = {t: statistics.median(x[0] for x in cold[t]) for t in cold}
        rss = {t: max(x[2] for x in cold[t]) for t in cold}
        wm = {t: statistics.median(warm[t]) for t in warm}
        rows.append([rel, image.stat().st_size, pp, wm, rss, (0, 0)])
        print(f"  {rel:40} wasm {pp[WASM]:6.0f}/{wm[WASM]:6.0f} ms  sharp1 {pp[SHARP1]:6.0f}/{wm[SHARP1]:6.0f}"
              f"  sharp2 {pp[SHARP2]:6.0f}/{wm[SHARP2]:6.0f}", file=sys.stderr)

    # The hosts after the timings (this process grows with each decode).
    from pixport_resizer.wasi import Host

    host = Host(Path(a.wasm), cache=True)
    for row in rows:
        image = dest / row[0]
        ref = host.run([], image, memory_limit=1 << 30)
        assert ref.code == 0, (row[0], ref.code, ref.trap, ref.stderr)
        row[5] = node_check(a, image, ref.stdout, a.node_repeats)
        print(f"  {row[0]:40} node:wasi {row[5][0]}/{row[5][1]} of {a.node_repeats}", file=sys.stderr)

    lines = [
        f"Machine: {head}. Per process: median of {a.runs} processes (spawn to exit); warm: median of "
        f"{a.warm_rounds} processes x {a.repeat} in-process runs after 1 warm-up; tools interleaved. "
        f"wasm = `resizer.wasm` under the Lambda host's Rust wasmtime (`lambda/benches/wasi_host.rs`). "
        f"x = sharp's wall time / wasm's. RSS: peak per process. node:wasi: runs that exited 0 / that were "
        f"byte-identical to wasmtime, of {a.node_repeats}.",
        "",
        "| class | MB | wasm ms (pp / warm) | sharp 1t ms | x vs 1t (pp / warm) | sharp default ms | x vs default "
        "(pp / warm) | RSS MiB wasm / sharp 1t | node:wasi | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    misses = {"1t": [], "default": [], "memory": [], "hosts": []}
    for rel, size, pp, wm, rss, (nok, nsame) in rows:
        name = Path(rel).stem
        x1 = (pp[SHARP1] / pp[WASM], wm[SHARP1] / wm[WASM])
        x2 = (pp[SHARP2] / pp[WASM], wm[SHARP2] / wm[WASM])
        mem = rss[WASM] / rss[SHARP1]
        t = target(name)
        verdict = []
        if min(x1) >= t:
            verdict.append(f">= {t}x 1t: met")
        else:
            verdict.append(f">= {t}x 1t: **missed**")
            misses["1t"].append(name)
        if min(x2) >= 1.0:
            verdict.append("not behind default: met")
        else:
            verdict.append("not behind default: **missed**")
            misses["default"].append(name)
        if mem <= 0.5:
            verdict.append("memory: met")
        else:
            verdict.append("memory: **missed**")
            misses["memory"].append(name)
        if not (nok == nsame == a.node_repeats):
            misses["hosts"].append(name)
        lines.append(
            f"| {name} | {size / 1e6:.1f} | {pp[WASM]:.0f} / {wm[WASM]:.0f} | {pp[SHARP1]:.0f} / {wm[SHARP1]:.0f} | "
            f"{x1[0]:.2f} / {x1[1]:.2f} | {pp[SHARP2]:.0f} / {wm[SHARP2]:.0f} | {x2[0]:.2f} / {x2[1]:.2f} | "
            f"{rss[WASM]:.0f} / {rss[SHARP1]:.0f} ({mem:.2f}) | {nok}/{nsame} | {'; '.join(verdict)} |")
    n = len(rows)
    lines += [
        "",
        f"Summary over {n} files: sharp-1-thread target met by {n - len(misses['1t'])}"
        + (f" (missed: {', '.join(misses['1t'])})" if misses["1t"] else "")
        + f"; not behind sharp default: {n - len(misses['default'])}"
        + (f" (missed: {', '.join(misses['default'])})" if misses["default"] else "")
        + f"; memory <= 0.5x: {n - len(misses['memory'])}"
        + (f" (missed: {', '.join(misses['memory'])})" if misses["memory"] else "")
        + f"; node:wasi byte-identical every run: {n - len(misses['hosts'])}"
        + (f" (failed: {', '.join(misses['hosts'])})" if misses["hosts"] else "") + ".",
    ]
    table = "\n".join(lines)
    print(table)
    if a.out:
        Path(a.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
