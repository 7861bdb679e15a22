"""CPU and subrequests per request, route by route, on the release worker.

For each route one unmeasured call, then N calls one after another:
- CPU ms: workerd's user + system time over the N calls, divided by N (as
  in upload_bench.py; it includes workerd's own share of the request);
- subrequests: the worker identity's (EdgeUser) S3 requests and Data API
  calls over the N calls, divided by N, from the local stand-ins' counters
  (`/__pixport/counters`), which is what Cloudflare counts as subrequests;
- wall ms: client-observed median.

Against Workers' limits per request: CPU 10 ms on the Free plan, 30 s by
default on Paid (up to 5 min); subrequests 50 Free, 10,000 Paid. Prints a
Markdown table for docs/edge.md."""

from __future__ import annotations

import base64
import hashlib
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
from support import ports_env  # noqa: E402
from support.issuer import Issuer  # noqa: E402
from support.padded import padded_jpeg  # noqa: E402
from tests.edge.workerctl import Worker  # noqa: E402
from upload_bench import cpu_seconds, machine_line, workerd_pids  # noqa: E402

AUTH = {"Authorization": "Bearer local-dev-token"}
EDGE = "EdgeUser"
LIMITER_PERIOD_S = 10


def noise(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (w, h), random.randbytes(w * h * 3)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def subrequests(env: dict[str, str]) -> int:
    total = 0
    for addr in (env["PIXPORT_S3_ADDR"], env["PIXPORT_DATAAPI_ADDR"]):
        body = requests.get(f"http://{addr}/__pixport/counters", timeout=10).json()
        total += sum(body.get(EDGE, {}).values())
    return total


def routes(url: str, issuer: Issuer) -> list[tuple[str, int, object]]:
    """(name, calls measured, a function making one call)."""
    made = requests.post(url + "/images", params={"duplicates": "allow"},
                         files={"file": ("p.jpg", noise(400, 300), "image/jpeg")}, headers=AUTH, timeout=60)
    made.raise_for_status()
    iid = made.json()["id"]
    deadline = time.monotonic() + 300
    while requests.get(f"{url}/images/{iid}", headers=AUTH, timeout=30).json()["status"] != "ready":
        if time.monotonic() > deadline:
            raise SystemExit("the image never became ready")
        time.sleep(0.5)
    small = {n: noise(80, 60) for n in range(40)}
    mb = padded_jpeg(1_000_000)
    small_iter = iter(small.values())

    def direct():
        data = noise(64, 48)
        sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
        return requests.post(f"{url}/uploads", params={"duplicates": "allow"}, headers=AUTH, timeout=30,
                             json={"content_type": "image/jpeg", "bytes": len(data), "sha256": sha})

    def signed_in(kid: str):
        token = issuer.token(kid, sub="bench", exp=int(time.time()) + 3600)
        return lambda: requests.get(url + "/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)

    return [
        ("GET /healthz", 40, lambda: requests.get(url + "/healthz", timeout=30)),
        # What a caller's credential costs: the same route with a server
        # token and with a sign-in JWT of each algorithm (JWKS cached).
        ("GET /me, server token", 40, lambda: requests.get(url + "/me", headers=AUTH, timeout=30)),
        ("GET /me, JWT RS256", 40, signed_in("rsa-1")),
        ("GET /me, JWT ES256", 40, signed_in("ec-1")),
        ("GET /me, JWT EdDSA", 40, signed_in("ed-1")),
        ("GET /images/{id}", 40, lambda: requests.get(f"{url}/images/{iid}", headers=AUTH, timeout=30)),
        ("GET /images/{id}/320", 40, lambda: requests.get(f"{url}/images/{iid}/320", timeout=30)),
        ("GET /images/{id}/320?format=jpeg", 40, lambda: requests.get(f"{url}/images/{iid}/320",
                                                                       params={"format": "jpeg"}, timeout=30)),
        ("GET /images/{id}/original", 20, lambda: requests.get(f"{url}/images/{iid}/original", headers=AUTH,
                                                               timeout=30)),
        ("GET /images?limit=50", 20, lambda: requests.get(f"{url}/images", params={"limit": 50}, headers=AUTH,
                                                          timeout=60)),
        ("PATCH /images/{id}", 20, lambda: requests.patch(f"{url}/images/{iid}", json={"title": "b"}, headers=AUTH,
                                                          timeout=30)),
        ("POST /images 20 KB", 20, lambda: requests.post(
            url + "/images", files={"file": ("p.jpg", next(small_iter), "image/jpeg")}, headers=AUTH, timeout=60)),
        ("POST /images 1 MB", 10, lambda: requests.post(
            url + "/images", params={"duplicates": "allow"}, files={"file": ("p.jpg", mb, "image/jpeg")},
            headers=AUTH, timeout=60)),
        ("POST /uploads", 20, direct),
        ("GET /s3/params", 20, lambda: requests.get(
            f"{url}/s3/params", params={"filename": "a.jpg", "type": "image/jpeg", "metadata[size]": "1000"},
            headers=AUTH, timeout=30)),
        ("POST /s3/multipart", 20, lambda: requests.post(
            f"{url}/s3/multipart", json={"filename": "a.jpg", "type": "image/jpeg", "metadata": {"size": "60000000"}},
            headers=AUTH, timeout=30)),
    ]


def main() -> None:
    env = ports_env()
    up = subprocess.run(["local/stack", "status"], cwd=ROOT, capture_output=True).returncode == 0
    if not up:
        subprocess.run(["local/stack", "start"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    rows = []
    issuer = Issuer()
    w = Worker(issuer.worker_vars(), release=True).start()
    try:
        pids = workerd_pids(w)
        for name, n, call in routes(w.url, issuer):
            # One burst limiter window (wrangler.toml: 100 writes per 10 s
            # per token) between routes, so no route's calls meet the last
            # route's count.
            time.sleep(LIMITER_PERIOD_S)
            call()
            c0, s0 = cpu_seconds(pids), subrequests(env)
            walls = []
            for _ in range(n):
                t0 = time.perf_counter()
                r = call()
                walls.append(time.perf_counter() - t0)
                if r.status_code >= 400:
                    raise SystemExit(f"{name}: {r.status_code} {r.text[:300]}")
            cpu = (cpu_seconds(pids) - c0) / n
            sub = (subrequests(env) - s0) / n
            rows.append((name, n, cpu * 1000, sub, statistics.median(walls) * 1000))
            print(f"  {name}: {cpu * 1000:.1f} ms CPU, {sub:.1f} subrequests", file=sys.stderr)
    finally:
        w.stop()
        issuer.stop()
        if not up:
            subprocess.run(["local/stack", "stop"], cwd=ROOT, stdout=subprocess.DEVNULL)
    print(machine_line() + "; release worker under wrangler dev")
    print("| request | calls | CPU ms | of Free's 10 ms | of Paid's 30 s | subrequests | wall ms |")
    print("|---|---|---|---|---|---|---|")
    for name, n, cpu, sub, wall in rows:
        print(f"| {name} | {n} | {cpu:.1f} | {cpu / 10:.1f}x | {cpu / 30_000:.2%} | {sub:.1f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
