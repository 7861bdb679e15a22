"""POST /images per upload: pixport's release build against the idiomatic
JavaScript Worker (bench/edge/js-worker), both under `wrangler dev`.

For each worker one `wrangler dev` serves every size, smallest first, after
WARM_UP unmeasured uploads (the isolate's code optimised, as in a busy
isolate). Per size: one unmeasured upload, then N uploads one after
another.

- CPU ms per upload: workerd's user + system time (utime + stime in
  /proc/<pid>/stat, every workerd process of that `wrangler dev`) over the
  N uploads, divided by N. It includes what workerd itself spends on the
  request (HTTP parsing, the body stream, the S3 and Data API subrequests),
  which both workers pay alike; the clock tick is 10 ms, so N is chosen to
  make it small against the result.
- pixport runs twice: as configured by default (`LOG_LEVEL=info`, one
  JSON log line per stored upload) and with `LOG_LEVEL=warn` (no line for
  a success), since under `wrangler dev` each `console.log` costs several
  ms of workerd's CPU (the JS worker logs nothing).
- wall ms: client-observed, request start to 201, median.
- memory: the worker's wasm memory from /healthz (pixport only: the JS
  worker has none), and workerd's RSS after the size and its peak (VmHWM)
  so far; sizes run in ascending order, so the peak is that of the largest
  size run so far.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
from support.padded import padded_jpeg  # noqa: E402
from tests.edge.workerctl import Worker, stack_vars  # noqa: E402

# Uploads of the smallest size before anything is measured.
WARM_UP = 30
# (bytes, uploads measured) per size.
SIZES = [(20_000, 40), (1_000_000, 20), (3_400_000, 12), (10_000_000, 6), (90_000_000, 3)]
TOKEN = "local-dev-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JS_CONFIG = "bench/edge/js-worker/wrangler.toml"
TICK = os.sysconf("SC_CLK_TCK")


def jpeg_of_size(total: int) -> bytes:
    """A photo-sized progressive JPEG padded to `total` bytes."""
    return padded_jpeg(total, size=(1600, 1200), quality=90)


def js_vars() -> dict[str, str]:
    """pixport's [vars] and local secrets (.dev.vars), passed to the JS
    worker, whose config lives elsewhere and so does not read them."""
    out = {k: str(v) for k, v in tomllib.loads((ROOT / "wrangler.toml").read_text())["vars"].items()}
    path = ROOT / ".dev.vars"
    if not path.exists():
        path = ROOT / ".dev.vars.example"
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return {**out, **stack_vars()}


def workerd_pids(w: Worker) -> list[int]:
    """workerd processes of this `wrangler dev` (its own session)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if comm == "workerd" and int(fields[3]) == w.proc.pid:  # field 6: session id
            pids.append(int(d.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def status_kib(pids: list[int], field: str) -> int:
    total = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return total


def upload(url: str, data: bytes) -> float:
    t0 = time.perf_counter()
    r = requests.post(url + "/images", params={"duplicates": "allow"}, files={"file": ("b.jpg", data, "image/jpeg")}, data={"title": "bench"},
                      headers=AUTH, timeout=600)
    dt = time.perf_counter() - t0
    if r.status_code != 201:
        raise SystemExit(f"{url}: {len(data)} B upload failed: {r.status_code} {r.text[:500]}")
    return dt


def measure(name: str, w: Worker, scale: float, bodies: dict[int, bytes]) -> list[dict]:
    pids = workerd_pids(w)
    if not pids:
        raise SystemExit(f"{name}: no workerd process found")
    idle = status_kib(pids, "VmRSS")
    # A fresh isolate compiles its code again, optimised, as it runs hot
    # (V8's tier-up, on workerd's background threads, so in its CPU time):
    # measured from the first upload on, the first size would carry that
    # one-off cost. Measured here: a warm isolate, as a busy one runs.
    for _ in range(WARM_UP):
        upload(w.url, bodies[SIZES[0][0]])
    rows = []
    for size, n in SIZES:
        n = max(2, round(n * scale))
        upload(w.url, bodies[size])
        c0 = cpu_seconds(pids)
        walls = [upload(w.url, bodies[size]) for _ in range(n)]
        cpu = (cpu_seconds(pids) - c0) / n
        health = requests.get(w.url + "/healthz", timeout=10).json()
        wasm = health.get("wasm_memory_bytes")
        rows.append(dict(worker=name, size=size, n=n, cpu_ms=cpu * 1000, wall_ms=statistics.median(walls) * 1000,
                         wasm_mib=None if wasm is None else wasm / 2**20, idle_mib=idle / 1024,
                         rss_mib=status_kib(pids, "VmRSS") / 1024, peak_mib=status_kib(pids, "VmHWM") / 1024))
        print(f"  {name} {size / 1e6:g} MB: {rows[-1]['cpu_ms']:.1f} ms CPU, {rows[-1]['wall_ms']:.0f} ms wall",
              file=sys.stderr)
    return rows


def machine_line() -> str:
    """Where and when a table was measured: CPU, cores, UTC time, commit."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return f"Machine: {cpu}, {os.cpu_count()} cores, shared; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; " \
           f"commit {commit}"


def label(size: int) -> str:
    return f"{size // 1000} KB" if size < 1_000_000 else f"{size / 1e6:g} MB"


def main() -> None:
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    up = subprocess.run(["local/stack", "status"], cwd=ROOT, capture_output=True).returncode == 0
    if not up:
        subprocess.run(["local/stack", "start"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    bodies = {size: jpeg_of_size(size) for size, _ in SIZES}
    secrets = js_vars()
    results = {}
    try:
        # The write limiter still runs on every upload; its limit (100 per
        # 10 s) would refuse a run this fast.
        limits = {"WRITE_LIMITER": 100_000}
        workers = [("pixport", lambda: Worker(release=True, ratelimits=limits)),
                   ("pixport-warn", lambda: Worker({"LOG_LEVEL": "warn"}, release=True, ratelimits=limits)),
                   ("js", lambda: Worker(extra_vars=secrets, extra_args=["--config", JS_CONFIG], release=False))]
        for name, make in workers:
            w = make().start()
            try:
                results[name] = measure(name, w, scale, bodies)
            finally:
                w.stop()
    finally:
        if not up:
            subprocess.run(["local/stack", "stop"], cwd=ROOT, stdout=subprocess.DEVNULL)

    print(machine_line() + "; wrangler dev (workerd) + local S3 + Data API on loopback\n")
    print("| upload | uploads | CPU ms pixport | CPU ms pixport, `LOG_LEVEL=warn` | CPU ms JS | pixport / JS "
          "| pixport warn / JS | wall ms pixport | wall ms JS | pixport wasm memory | workerd RSS pixport (peak) "
          "| workerd RSS JS (peak) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p, q, j in zip(results["pixport"], results["pixport-warn"], results["js"]):
        print(f"| {label(p['size'])} | {p['n']} | {p['cpu_ms']:.1f} | {q['cpu_ms']:.1f} | {j['cpu_ms']:.1f} "
              f"| {p['cpu_ms'] / j['cpu_ms']:.2f} | {q['cpu_ms'] / j['cpu_ms']:.2f} "
              f"| {p['wall_ms']:.0f} | {j['wall_ms']:.0f} "
              f"| {p['wasm_mib']:.1f} MiB | {p['rss_mib']:.0f} ({p['peak_mib']:.0f}) MiB "
              f"| {j['rss_mib']:.0f} ({j['peak_mib']:.0f}) MiB |")
    p0, j0 = results["pixport"][0], results["js"][0]
    print(f"\nworkerd RSS idle before the first upload: pixport {p0['idle_mib']:.0f} MiB, JS {j0['idle_mib']:.0f} MiB.")


if __name__ == "__main__":
    main()
