"""Measures POST /images for 1, 10 and 90 MB JPEGs under wrangler dev.

For each size a fresh `wrangler dev` is started so workerd's peak RSS
(VmHWM) belongs to that size alone; the idle RSS right after start is shown
beside it. Latency is client-observed, request start to 201.
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.edge.workerctl import Worker  # noqa: E402

SIZES_MB = [1, 10, 90]
AUTH = {"Authorization": "Bearer local-dev-token"}


def jpeg_of_size(total: int) -> bytes:
    """A valid JPEG padded to `total` bytes with comment segments (<= 64 KiB
    each) placed between the frame header and the scan, as encoders place tables."""
    img = Image.new("RGB", (1600, 1200), (90, 140, 200))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    base = buf.getvalue()
    pad = bytearray()
    need = total - len(base)
    while need > 4:
        n = min(need - 4, 65533)
        pad += b"\xff\xfe" + (n + 2).to_bytes(2, "big") + os.urandom(n)
        need -= n + 4
    sos = base.index(b"\xff\xda")
    return base[:sos] + bytes(pad) + base[sos:]


def workerd_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "workerd serve"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    up = subprocess.run(["local/stack", "status"], cwd=ROOT, capture_output=True).returncode == 0
    if not up:
        subprocess.run(["local/stack", "start"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    rows = []
    try:
        for mb in SIZES_MB:
            data = jpeg_of_size(mb * 1_000_000)
            before = set(workerd_pids())
            w = Worker().start()
            try:
                pids = [p for p in workerd_pids() if p not in before]
                idle = sum(rss_kib(p, "VmRSS") for p in pids)
                times = []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    r = requests.post(w.url + "/images", params={"duplicates": "allow"}, files={"file": ("b.jpg", data, "image/jpeg")},
                                      headers=AUTH, timeout=600)
                    times.append(time.perf_counter() - t0)
                    if r.status_code != 201:
                        raise SystemExit(f"{mb} MB upload failed: {r.status_code} {r.text}")
                peak = sum(rss_kib(p, "VmHWM") for p in pids)
                wasm = requests.get(w.url + "/healthz", timeout=10).json()["wasm_memory_bytes"]
            finally:
                w.stop()
            rows.append((mb, rounds, statistics.median(times), pct(times, 99), idle / 1024, peak / 1024,
                         wasm / 2**20))
    finally:
        if not up:
            subprocess.run(["local/stack", "stop"], cwd=ROOT, stdout=subprocess.DEVNULL)
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    print(f"Machine: {cpu}, {os.cpu_count()} cores; wrangler dev (workerd) + local S3 + Data API on loopback\n")
    print("| upload | rounds | p50 latency | p99 latency | worker wasm memory | workerd RSS idle | workerd peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for mb, n, p50, p99, idle, peak, wasm in rows:
        print(f"| {mb} MB | {n} | {p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms | {wasm:.0f} MiB | {idle:.0f} MiB "
              f"| {peak:.0f} MiB |")


if __name__ == "__main__":
    main()
