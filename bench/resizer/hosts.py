"""The host matrix at full size: every input class of tests/photos/classes.py
(12 and 24 MP) on every host of tests/resizer/hostmatrix.py, each class
`--repeat` times in one process per host, every output compared with
embedded wasmtime's (the PyPI package, the suite's reference); prints one
markdown table: per host the median time of a run after the first (warm:
the module compiled and tiered up) over the 12 MP classes and over the
24 MP ones, the first run's (includes the JIT's first compile), and how
many runs were byte-identical.

    bench/resizer/run --hosts [--repeat 5] [--hosts node24-package deno-package ...]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "photos"))
sys.path.insert(0, str(ROOT / "tests" / "resizer"))
import classes  # noqa: E402
import hostmatrix  # noqa: E402
from bench import machine  # noqa: E402
from pixport_resizer.wasi import Host as WasmtimePy  # noqa: E402


def version(host: hostmatrix.Host) -> str:
    if host.kind in ("rust", "python"):
        return {"rust": "wasmtime 48 (Rust)", "python": "wasmtime 50.0.1 (PyPI)"}[host.kind]
    p = subprocess.run([host.cmd[0], "--version"], capture_output=True, text=True)
    # "deno 2.9.6 (stable, ...)" -> "deno 2.9.6"; "v24.22.3" -> "Node 24.22.3"; "1.4.5" -> "Bun 1.4.5"
    words = p.stdout.split() if p.returncode == 0 else ["?"]
    if words[0] == "deno":
        return f"Deno {words[1]}"
    return f"Node {words[0][1:]}" if words[0].startswith("v") else f"Bun {words[0]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wasm", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hosts", nargs="*", help="only these hosts (names as in the table)")
    a = ap.parse_args()
    wasm = Path(a.wasm)
    dest = classes.ensure()
    files = [dest / n for n in classes.names()]
    cases = [hostmatrix.Case(f, {}) for f in files]
    where = machine()
    print(f"Machine: {where}. {datetime.date.today()}, {a.repeat} runs per class per host.", file=sys.stderr)

    ref_host = WasmtimePy(wasm, cache=True)
    refs = {}
    for f in files:
        r = ref_host.run([], f, memory_limit=1 << 30)
        assert r.code == 0, (f, r.stderr)
        refs[f] = r.stdout

    with tempfile.TemporaryDirectory() as tmp:
        child = hostmatrix.rust_child(wasm, Path(tmp))
        rows = []
        for host in hostmatrix.hosts(child):
            if a.hosts and host.name not in a.hosts:
                continue
            if host.missing:
                rows.append(f"| {host.name} | – | – | – | – | not run: {host.missing} |")
                continue
            print(f"  {host.name} ...", file=sys.stderr)
            outs, ms = host.run(wasm, cases, a.repeat, Path(tmp) / host.name)
            same = 0
            for f, out in zip(files, outs):
                same += hostmatrix.same_result(host, out.read_bytes(), refs[f])
            warm = {s: [t for f, times in zip(files, ms) if f.parent.name == s for t in times[1:]] for s in ("12mp", "24mp")}
            first = [times[0] for times in ms]
            rows.append(f"| {host.name} | {version(host)} | {statistics.median(warm['12mp']):.0f} | "
                        f"{statistics.median(warm['24mp']):.0f} | {statistics.median(first):.0f} | "
                        f"{same * a.repeat}/{len(files) * a.repeat} |")
            print(rows[-1], file=sys.stderr)

    print(f"Machine: {where}. {datetime.date.today()}. {len(files)} classes "
          f"({sum(f.parent.name == '12mp' for f in files)} at 12 MP, {sum(f.parent.name == '24mp' for f in files)} at 24 MP), "
          f"{a.repeat} runs each per host in one process; warm = median of the runs after each class's first; "
          "identical = runs whose output equals embedded wasmtime's (every repeat must equal its first, "
          "so a differing or crashed run fails the host).\n")
    print("| host | runtime | warm 12 MP (ms) | warm 24 MP (ms) | first run (ms) | identical |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
