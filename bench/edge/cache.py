"""Repeat reads of a public variant with the delivery cache and without it.

One release worker with the cache (`DELIVERY_CACHE_SECONDS=60`, the
default) and one without (`0`), one after the other, each reading the same
ready images' variants N times, round-robin: the negotiated URL
(`/images/{id}/640`, `Accept: image/webp`) and a pinned one
(`?format=jpeg`). Per configuration: workerd's CPU per read, the client's
wall time (p50, p99), and the S3 requests and Data API calls per 1,000
reads, from the local stand-ins' per-identity counters. The first read of
each URL (the miss that fills the cache) is not measured. Prints a
Markdown table for docs/benchmarks.md."""

from __future__ import annotations

import argparse
import io
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT), str(ROOT / "bench" / "edge")]
from support import ports_env, wait_until  # noqa: E402
from tests.edge.workerctl import Worker  # noqa: E402
from upload_bench import cpu_seconds, machine_line, workerd_pids  # noqa: E402

AUTH = {"Authorization": "Bearer local-dev-token"}
EDGE = "EdgeUser"


def counters(env: dict[str, str]) -> tuple[int, int]:
    out = []
    for addr in (env["PIXPORT_S3_ADDR"], env["PIXPORT_DATAAPI_ADDR"]):
        body = requests.get(f"http://{addr}/__pixport/counters", timeout=10).json()
        out.append(sum(body.get(EDGE, {}).values()))
    return out[0], out[1]


def photo(seed: int) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", (2400, 1600))
    img.putdata([(rng.randrange(256), (i // 2400) % 256, 90) for i in range(2400 * 1600)])
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88)
    return buf.getvalue()


def ready_ids(url: str, n: int) -> list[str]:
    ids = []
    for seed in range(n):
        r = requests.post(url + "/images", params={"duplicates": "allow"},
                          files={"file": (f"b{seed}.jpg", photo(seed), "image/jpeg")}, headers=AUTH, timeout=120)
        r.raise_for_status()
        ids.append(r.json()["id"])
    for id_ in ids:
        wait_until(lambda: requests.get(f"{url}/images/{id_}", headers=AUTH, timeout=30).json()["status"] == "ready",
                   300, f"the resize of {id_}", interval=0.5)
    return ids


def measure(cache_secs: int, reads: int, images: int, env: dict[str, str]) -> dict:
    w = Worker({"DELIVERY_CACHE_SECONDS": str(cache_secs)}, release=True).start()
    try:
        ids = ready_ids(w.url, images)
        calls = [(f"{w.url}/images/{i}/640", {"Accept": "image/webp,image/*"}) for i in ids]
        calls += [(f"{w.url}/images/{i}/320?format=jpeg", {}) for i in ids]
        for url, headers in calls:  # the misses that fill the cache
            requests.get(url, headers=headers, timeout=30).raise_for_status()
        time.sleep(2)  # the cache stores run after their answers
        pids = workerd_pids(w)
        c0, (s0, d0) = cpu_seconds(pids), counters(env)
        walls = []
        for k in range(reads):
            url, headers = calls[k % len(calls)]
            t0 = time.perf_counter()
            r = requests.get(url, headers=headers, timeout=30)
            walls.append(time.perf_counter() - t0)
            r.raise_for_status()
        cpu = (cpu_seconds(pids) - c0) / reads
        s1, d1 = counters(env)
        walls.sort()
        return {"cpu_ms": cpu * 1000, "p50": statistics.median(walls) * 1000,
                "p99": walls[min(len(walls) - 1, int(len(walls) * 0.99))] * 1000,
                "s3": (s1 - s0) * 1000 / reads, "db": (d1 - d0) * 1000 / reads}
    finally:
        w.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reads", type=int, default=400)
    p.add_argument("--images", type=int, default=4)
    a = p.parse_args()
    env = ports_env()
    up = subprocess.run(["local/stack", "status"], cwd=ROOT, capture_output=True).returncode == 0
    if not up:
        subprocess.run(["local/stack", "start"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    try:
        rows = [(label, measure(secs, a.reads, a.images, env)) for label, secs in
                (("delivery cache on (60 s)", 60), ("delivery cache off", 0))]
    finally:
        if not up:
            subprocess.run(["local/stack", "stop"], cwd=ROOT, stdout=subprocess.DEVNULL)
    print(machine_line() + f"; release worker under wrangler dev; {a.reads} repeat reads over {a.images} images")
    print("| repeat reads | CPU ms / read | wall p50 ms | wall p99 ms | S3 requests / 1,000 | Data API calls / 1,000 |")
    print("|---|---|---|---|---|---|")
    for label, m in rows:
        print(f"| {label} | {m['cpu_ms']:.2f} | {m['p50']:.1f} | {m['p99']:.1f} | {m['s3']:.0f} | {m['db']:.0f} |")


if __name__ == "__main__":
    main()
