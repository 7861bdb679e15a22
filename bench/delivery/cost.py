"""The resizer's added cost for placeholders and colour conversion.

Each input class runs once per width (`--widths W`) under the `wasmtime`
PyPI package (the tests' host, shaped like the Lambda's), with everything
off (`--placeholders off --icc keep`), placeholders only, and the default
(placeholders + ICC -> sRGB). The figure is the CPU time of the least of
`--repeat` runs: on a shared machine wall time moves by +-100 ms between
runs, CPU time far less.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packages" / "resizer-py" / "src"))
sys.path.insert(0, str(ROOT / "tests"))
from pixport_resizer.wasi import Host  # noqa: E402
from support.wide_gamut import icc_profile, picture  # noqa: E402

CONFIGS = {
    "off": ["--placeholders", "off", "--icc", "keep"],
    "placeholders": ["--icc", "keep"],
    "default": [],
}


def inputs(photos: Path) -> dict[str, bytes]:
    out = {name: (photos / f).read_bytes() for name, f in
           (("12 MP JPEG (sRGB)", "p12mp.jpg"), ("24 MP JPEG (sRGB)", "p24mp.jpg"),
            ("48 MP JPEG (sRGB)", "p48mp.jpg"), ("0.3 MP PNG (astronaut)", "astronaut.png"))}
    pic = picture(4000, 3000, seed=16)
    for space, label in (("display-p3", "Display P3"), ("adobe-rgb", "Adobe RGB")):
        buf = io.BytesIO()
        pic.save(buf, "JPEG", quality=90, icc_profile=icc_profile(space))
        out[f"12 MP JPEG ({label})"] = buf.getvalue()
    return out


def fastest(host: Host, data: bytes, args: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        r = host.run(args, data, memory_limit=1 << 30, timeout_s=60)
        best = min(best, time.process_time() - t)
        assert r.code == 0, (r.code, r.trap, r.stderr)
    return best * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--wasm", type=Path, required=True)
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", help="run only the inputs whose name contains this")
    ap.add_argument("--widths", nargs="+", default=["1920", "640", "320", "1920,640,320"],
                    help="width sets, one run each (the last default is the production set)")
    a = ap.parse_args()
    host = Host(a.wasm, cache=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"wasmtime (PyPI), CPU time, least of {a.repeat}")
    print()
    print("| input | width | off (ms) | + placeholders (ms) | + ICC -> sRGB (default, ms) | added (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, data in inputs(a.photos).items():
        if a.only and a.only not in name:
            continue
        for w in a.widths:
            ms = {k: fastest(host, data, ["--widths", w, *args], a.repeat) for k, args in CONFIGS.items()}
            print(f"| {name} | {w} | {ms['off']:.1f} | {ms['placeholders']:.1f} | {ms['default']:.1f} | "
                  f"{ms['default'] - ms['off']:+.1f} |", flush=True)


if __name__ == "__main__":
    main()
