"""Load (and faults under load) through the release worker, then checks that
nothing was lost or half-made.

The stack is tests/faults' FaultStack (own S3, Data API and Lambda emulator
on free ports, database `pixport_load` in the local MariaDB, retry schedule
in seconds) so its parts can be SIGKILLed without touching the shared stack;
the worker is `wrangler dev` serving the release build (PIXPORT_EDGE_RELEASE=1).

After the uploads: wait until no row is `pending`; with --faults, rows an
outage left `uploading` are aged past the sweep's grace period and the
worker's cron sweep is fired (`/__scheduled`), as an hour later in
production. Then S3 is listed against the table: every 201 has its row
`ready`, its original (same size) and exactly its variants; no object lacks
a row; no row lacks its objects; refusals left nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench" / "edge"), str(ROOT)]
from faults.faultstack import FaultStack  # noqa: E402
from stack.stackctl import ensure_stack  # noqa: E402
from support import cargo_build, state_dir  # noqa: E402
from tests.edge.workerctl import Worker  # noqa: E402
from upload_bench import jpeg_of_size, status_kib, workerd_pids  # noqa: E402

# 200 concurrent uploads are many users, not one: each token is held by
# TOKENS_EVERY uploads, so the per-token burst limit (wrangler.toml,
# 100 writes per 10 s) is not what the run measures.
TOKENS = [f"load-{i:02d}" for i in range(20)]
INVALID = [
    ("page.jpg", b"<!doctype html><html><body>" + b"<p>not a photo</p>" * 2000 + b"</body></html>", "image/jpeg"),
    ("notes.jpg", b"just some text, named like a photo\n" * 3000, "image/jpeg"),
    ("noise.png", bytes(random.Random(7).getrandbits(8) for _ in range(200_000)), "image/png"),
    ("cut.jpg", None, "image/jpeg"),  # a real JPEG cut short: filled in below
]


def payloads(n: int, lo_mb: float, hi_mb: float, seed: int = 14) -> list[tuple[str, bytes, str, bool]]:
    rnd = random.Random(seed)
    cut = jpeg_of_size(300_000)[:20_000]
    out = []
    for i in range(n):
        if i % 10 == 9:
            name, body, ctype = INVALID[(i // 10) % len(INVALID)]
            out.append((name, body if body is not None else cut, ctype, False))
        else:
            size = int(math.exp(rnd.uniform(math.log(lo_mb), math.log(hi_mb))) * 1_000_000)
            out.append((f"p{i}.jpg", jpeg_of_size(size), "image/jpeg", True))
    return out


class Sampler(threading.Thread):
    """The worker's wasm memory (its /healthz) and workerd's RSS, sampled
    every 0.25 s while the load runs; the peaks are reported."""

    def __init__(self, worker: Worker):
        super().__init__(daemon=True)
        self.worker, self.url, self.stop_ = worker, worker.url, threading.Event()
        self.wasm_peak = self.reserved_peak = 0
        self.rss_peak_kib = 0
        self.healthz_failures = 0

    def rss(self) -> None:
        """workerd processes come and go (wrangler restarts them), so the
        peak is sampled from whichever are alive."""
        try:
            total = status_kib(workerd_pids(self.worker), "VmHWM")
        except (OSError, ValueError):
            return
        self.rss_peak_kib = max(self.rss_peak_kib, total)

    def run(self) -> None:
        while not self.stop_.is_set():
            try:
                h = requests.get(self.url + "/healthz", timeout=5).json()
                self.wasm_peak = max(self.wasm_peak, h["wasm_memory_bytes"])
                self.reserved_peak = max(self.reserved_peak, h["upload_reserved_bytes"])
            except (requests.RequestException, ValueError, KeyError):
                self.healthz_failures += 1
            self.rss()
            time.sleep(0.25)

    def rss_peak_mib(self) -> float:
        return self.rss_peak_kib / 1024


class Faults(threading.Thread):
    """SIGKILLs each part in turn, down `down` seconds, starting it again on
    the same port and data. MariaDB is the fault stack's own (own_mariadb),
    never the shared one."""

    ORDER = ("s3", "dataapi", "mariadb", "runtime")

    def __init__(self, fs: FaultStack, start: float, down: float, gap: float):
        super().__init__(daemon=True)
        self.fs, self.start_, self.down, self.gap = fs, start, down, gap
        self.log: list[tuple[str, float, float]] = []

    def run(self) -> None:
        t0 = self.t0 = time.monotonic()
        time.sleep(self.start_)
        for name in self.ORDER:
            k = time.monotonic() - t0
            self.fs.kill(name)
            time.sleep(self.down)
            self.fs.start(name)
            self.log.append((name, k, time.monotonic() - t0))
            time.sleep(self.gap)


MAX_TRIES = 40
# Seconds after a restart whose answers are still counted for that fault.
SETTLE = 2.0
# What a client waits past Retry-After at most: the extra grows with each
# refusal (capped exponential backoff) and is drawn at random (jitter), so
# refused clients neither come back early nor all at once.
BACKOFF_CAP = 30.0
# 409 is `duplicate_in_progress` (the same bytes still being stored by an
# earlier try of this upload) or `idempotency_in_progress`: both say to send
# again after Retry-After.
RETRYABLE = (0, 409, 429, 502, 503)


def backoff(retry_after: str | None, refusals: int, rnd: random.Random) -> float:
    """Retry-After is a floor; the jitter above it doubles per refusal."""
    try:
        floor = max(0.0, float(retry_after))
    except (TypeError, ValueError):
        floor = 1.0
    spread = min(BACKOFF_CAP, max(floor, 1.0) * 2 ** (refusals - 1))
    return floor + rnd.uniform(0, spread)


def upload(url: str, item, go: threading.Event) -> dict:
    """One upload as a well-behaved client sends it: a 409/429/502/503 (or a
    connection closed on it) is retried after `Retry-After` plus a growing,
    random extra, up to MAX_TRIES; every answer on the way is counted, and
    the bytes sent in requests that were refused."""
    name, body, ctype, valid = item
    rnd = random.Random(name)
    go.wait()
    t0 = time.perf_counter()
    answers: list[str] = []
    times: list[float] = []
    resent = unclean = no_retry_after = 0
    while True:
        out = attempt(url, name, body, ctype, valid)
        answers.append(out["code"])
        times.append(time.monotonic())
        unclean += out["status"] not in (0, 201) and not out.get("clean")
        no_retry_after += out["status"] in (429, 502, 503) and not out.get("retry_after")
        if out["status"] not in RETRYABLE or len(answers) >= MAX_TRIES:
            break
        resent += len(body)
        time.sleep(backoff(out.get("retry_after"), len(answers), rnd))
    out["secs"] = time.perf_counter() - t0
    out["answers"], out["times"] = answers, times
    out["resent"] = resent
    out["unclean"], out["no_retry_after"] = unclean, no_retry_after
    return out


def attempt(url: str, name: str, body: bytes, ctype: str, valid: bool) -> dict:
    token = TOKENS[int.from_bytes(name.encode(), "little") % len(TOKENS)]
    try:
        r = requests.post(url + "/images", files={"file": (name, body, ctype)}, data={"title": name},
                          headers={"Authorization": f"Bearer {token}"}, timeout=600)
    except requests.RequestException as e:
        return {"valid": valid, "status": 0, "code": f"client: {type(e).__name__}", "bytes": len(body)}
    out = {"valid": valid, "status": r.status_code, "bytes": len(body)}
    try:
        doc = r.json()
    except ValueError:
        doc = None
    if r.status_code == 201:
        out["id"] = doc["id"]
        out["code"] = "201"
    else:
        err = (doc or {}).get("error") or {}
        out["code"] = f"{r.status_code} {err.get('code', 'NOT JSON')}"
        out["clean"] = bool(err.get("code") and err.get("message"))
        out["retry_after"] = r.headers.get("Retry-After")
    return out


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile, nearest rank."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def list_keys(s3, bucket: str, prefix: str) -> dict[str, int]:
    keys, token = {}, None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **kw)
        keys.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


def settle(fs: FaultStack, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            n = fs.sql("SELECT COUNT(*) AS n FROM images WHERE status = 'pending'")[0]["n"]
            if int(n) == 0:
                return time.monotonic() - t0
        except Exception:  # noqa: BLE001 - the Data API may be restarting
            pass
        time.sleep(1)
    return float("nan")


def sweep(fs: FaultStack, worker: Worker) -> int:
    """What an hour later looks like: stale `uploading` rows past the grace
    period, then the cron sweep."""
    stale = fs.sql("SELECT id FROM images WHERE status IN ('uploading', 'deleting')")
    if stale:
        fs.sql("UPDATE images SET created_at = created_at - INTERVAL 2 HOUR, updated_at = updated_at - INTERVAL 2 HOUR "
               "WHERE status IN ('uploading', 'deleting')")
        deadline = time.monotonic() + 120
        while fs.sql("SELECT id FROM images WHERE status IN ('uploading', 'deleting')") and time.monotonic() < deadline:
            requests.get(worker.url + "/__scheduled", params={"cron": "*/30 * * * *"}, timeout=120).raise_for_status()
            time.sleep(1)
    return len(stale)


def check(fs: FaultStack, results: list[dict]) -> dict:
    s3 = fs.s3()
    rows = {r["id"]: r for r in fs.sql("SELECT id, status, bytes, original_key, variants FROM images")}
    originals = list_keys(s3, fs.bucket, "originals/")
    variants = list_keys(s3, fs.bucket, "variants/")
    accepted = {r["id"]: r for r in results if r["status"] == 201}
    c = Counter()
    for id_, res in accepted.items():
        row = rows.get(id_)
        if row is None:
            c["201 without row"] += 1
            continue
        if row["status"] != "ready":
            c[f"201 ended {row['status']}"] += 1
        if originals.get(row["original_key"]) != res["bytes"]:
            c["201 without its original"] += 1
        want = {v["key"] for v in json.loads(row["variants"] or "[]")}
        have = {k for k in variants if k.startswith(f"variants/{id_}/")}
        if not want or want != have:
            c["201 without exactly its variants"] += 1
    for id_, row in rows.items():
        if id_ not in accepted:
            c[f"row without a 201 ({row['status']})"] += 1
    row_keys = {r["original_key"] for r in rows.values()}
    c["objects without a row"] = sum(1 for k in originals if k not in row_keys) + sum(
        1 for k in variants if k.split("/")[1] not in rows)
    c["rows without their original"] = sum(1 for r in rows.values() if r["original_key"] not in originals
                                           and r["status"] in ("pending", "ready"))
    c["objects listed"] = len(originals) + len(variants)
    c["rows"] = len(rows)
    return c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faults", action="store_true", help="SIGKILL S3, Data API, MariaDB, Lambda runtime in turn")
    ap.add_argument("--uploads", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--min-mb", type=float, default=0.1)
    ap.add_argument("--max-mb", type=float, default=20.0)
    ap.add_argument("--down", type=float, default=5.0, help="seconds each part stays down")
    a = ap.parse_args()

    shared = ensure_stack()
    bootstrap = Path(os.environ.get("PIXPORT_BOOTSTRAP") or cargo_build("pixport-lambda", bin="bootstrap", profile="local"))
    module = cargo_build("resizer-wasi", target="wasm32-wasip1", bin="resizer")
    name = "load_faults" if a.faults else "load"
    state = state_dir() / name
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    fs = FaultStack(shared, state, bootstrap, module, db_name=f"pixport_{name}", own_mariadb=a.faults)
    worker = None
    try:
        fs.start_all()
        fs.sql("DELETE FROM images")
        items = payloads(a.uploads, a.min_mb, a.max_mb)
        worker = Worker(extra_vars={"S3_ENDPOINT": f"http://{fs.addr['s3']}",
                                    "DATA_API_ENDPOINT": f"http://{fs.addr['dataapi']}", "DB_NAME": fs.db_name,
                                    "API_TOKENS": ",".join(TOKENS)},
                        extra_args=["--test-scheduled"], release=True).start()
        sampler = Sampler(worker)
        sampler.start()
        go = threading.Event()
        faults = Faults(fs, start=1.0, down=a.down, gap=2.0) if a.faults else None
        with ThreadPoolExecutor(max_workers=a.concurrency) as pool:
            futs = [pool.submit(upload, worker.url, it, go) for it in items]
            time.sleep(0.5)
            t0 = time.perf_counter()
            go.set()
            if faults:
                faults.start()
            results = [f.result() for f in futs]
            wall = time.perf_counter() - t0
        if faults:
            faults.join()
        sampler.stop_.set()
        sampler.join()
        settled = settle(fs, 600)
        swept = sweep(fs, worker) if a.faults else 0
        if swept:
            settled = settle(fs, 600)
        counts = check(fs, results)
        (state / "results.json").write_text(json.dumps({"results": results, "counts": counts}, indent=1))
        report(a, results, wall, sampler, counts, settled, swept, faults)
    finally:
        if worker:
            worker.stop()
        fs.stop_all()


def report(a, results, wall, sampler, counts, settled, swept, faults) -> None:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    ok = [r for r in results if r["status"] == 201]
    lat = [r["secs"] for r in results]
    sent = sum(r.get("bytes", 0) for r in results)
    codes = Counter(r["code"] for r in results)
    every = Counter(c for r in results for c in r["answers"])
    tries = [len(r["answers"]) for r in results]
    unclean = sum(r["unclean"] for r in results)
    ok_valid = sum(1 for r in results if r["valid"] and r["status"] == 201)
    no_retry = sum(r["no_retry_after"] for r in results)
    bad_accepted = sum(1 for r in results if r["status"] == 201 and not r["valid"])
    print(f"Machine: {cpu}, {os.cpu_count()} cores; release worker under wrangler dev + local S3, Data API, "
          f"Lambda emulator (bootstrap + resizer.wasm) on loopback")
    print(f"{a.uploads} uploads, {a.concurrency} at once, {a.min_mb}-{a.max_mb} MB, 10 % invalid"
          + (f"; faults (SIGKILL, {a.down:.0f} s down): " + ", ".join(
              f"{n} at {k:.1f}-{e:.1f} s" for n, k, e in faults.log) if faults else "") + "\n")
    print("| measure | value |\n|---|---:|")
    rows = [
        ("wall time of the burst", f"{wall:.1f} s"),
        ("throughput", f"{len(results) / wall:.1f} uploads/s, {sent / wall / 1e6:.1f} MB/s"),
        ("latency p50 / p99 / max", f"{pct(lat, 50) * 1000:.0f} / {pct(lat, 99) * 1000:.0f} / {max(lat) * 1000:.0f} ms"),
        ("requests sent (with retries)", f"{sum(tries)}; max {max(tries)} for one upload"),
        ("bytes sent again after a refusal", f"{sum(r['resent'] for r in results) / 1e6:.0f} MB"),
        ("201 accepted", f"{len(ok)} of {sum(1 for r in results if r['valid'])} valid"),
        ("invalid accepted", f"{bad_accepted}"),
        ("refusals (any answer) not clean JSON", f"{unclean}"),
        ("429/502/503 (any answer) without Retry-After", f"{no_retry}"),
        ("worker wasm memory peak", f"{sampler.wasm_peak / 2**20:.0f} MiB"),
        ("upload bytes reserved peak", f"{sampler.reserved_peak / 2**20:.0f} MiB"),
        ("workerd peak RSS", f"{sampler.rss_peak_mib():.0f} MiB"),
        ("settled (no row pending) after", f"{settled:.1f} s"),
        ("uploading rows swept", f"{swept}"),
    ]
    rows += [(k, str(v)) for k, v in sorted(counts.items())]
    for k, v in rows:
        print(f"| {k} | {v} |")
    print("\n| response | final answers | all answers |\n|---|---:|---:|")
    for code in sorted(set(codes) | set(every)):
        print(f"| {code} | {codes.get(code, 0)} | {every.get(code, 0)} |")
    if faults:
        # Every answer that came back while a part was down or within
        # SETTLE s of its restart (requests in flight across the restart).
        print(f"\n| fault | down (s into the burst) | answers meanwhile (until {SETTLE:.0f} s after the restart) |\n|---|---|---|")
        for n, k, e in faults.log:
            lo, hi = faults.t0 + k, faults.t0 + e + SETTLE
            seen = Counter(c for r in results for c, t in zip(r["answers"], r["times"]) if lo <= t <= hi)
            print(f"| {n} | {k:.1f}-{e:.1f} | " + ", ".join(f"{v} × {c}" for c, v in seen.most_common()) + " |")
    lost = sum(v for k, v in counts.items() if k not in ("objects listed", "rows"))
    print(f"\nnothing lost (S3 listed against the table): {'yes' if lost == 0 else f'NO ({lost} problems)'}")
    valid = sum(1 for r in results if r["valid"])
    print(f"every valid upload accepted (after retries): {'yes' if ok_valid == valid else f'NO ({ok_valid}/{valid})'}")
    sys.exit(0 if lost == 0 and unclean == 0 and no_retry == 0 and bad_accepted == 0 and ok_valid == valid else 1)


if __name__ == "__main__":
    main()
