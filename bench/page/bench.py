"""Measures the upload page's preview and opt-in shrink in Chromium (see
`run`). Each run is a fresh page (the Web Worker fetches and compiles
resizer.wasm anew, as on a first visit), one photo picked and uploaded
through the page; the bytes are the stored original's (every part is sent
once: the same number), the times the page's own (`performance.now()` at
Uppy's file-added, at the preview, at the shrunk copy)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
from support import photos_dir  # noqa: E402
from support.issuer import Issuer  # noqa: E402
from tests.edge.workerctl import Worker  # noqa: E402

PHOTOS = ("p12mp.jpg", "p48mp.jpg")
# A far client's uplink, to put the bytes in seconds (computed, not measured).
UPLINK_MBIT = 10
ISSUER = Issuer()
TOKEN = ISSUER.token("ec-1", sub="page-bench", exp=int(time.time()) + 3 * 3600)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def chromium() -> str:
    return next(p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if os.access(p, os.X_OK))


def one(browser, worker, photo: Path, shrink: bool) -> dict:
    ctx = browser.new_context()
    ctx.set_default_timeout(300_000)
    page = ctx.new_page()
    page.goto(worker.url + "/")
    page.get_by_label("Sign-in token").fill(TOKEN)
    page.get_by_label("Sign-in token").press("Enter")
    page.get_by_text("Signed in for this tab.").wait_for()
    if shrink:
        page.locator("#shrink").check()
    page.locator("input.uppy-Dashboard-input[name='files[]']").first.set_input_files([photo])
    row = page.locator(f"li.local[data-file='{photo.name}']")
    row.and_(page.locator("[data-state='preview'], [data-state='shrinking'], [data-state='shrunk'], "
                          "[data-state='kept']")).wait_for()
    if shrink:
        row.and_(page.locator("[data-state='shrunk'], [data-state='kept']")).wait_for()
    t = page.evaluate("""() => [...window.pixport.local.values()].map(e => [e.added, e.previewed, e.shrunk ?? null,
                             e.sentSize ?? [e.source.width, e.source.height]])[0]""")
    page.locator(".uppy-StatusBar-actionBtn--upload").click()
    page.wait_for_function("() => window.pixport.uppy.getFiles().every(f => f.progress.uploadComplete)")
    iid = page.evaluate("() => window.pixport.uppy.getFiles()[0].response.body.image.id")
    img = requests.get(f"{worker.url}/images/{iid}", headers=AUTH, timeout=10).json()
    ctx.close()
    requests.delete(f"{worker.url}/images/{iid}", headers=AUTH, timeout=30)
    return {"preview_ms": t[1] - t[0], "shrunk_ms": None if t[2] is None else t[2] - t[0],
            "bytes": img["bytes"], "size": f"{t[3][0]} × {t[3][1]}"}


def machine_line() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return f"Machine: {cpu}, {os.cpu_count()} cores, shared; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; " \
           f"commit {commit}"


def main() -> None:
    from playwright.sync_api import sync_playwright

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    up = subprocess.run(["local/stack", "status"], cwd=ROOT, capture_output=True).returncode == 0
    if not up:
        subprocess.run(["local/stack", "start"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    rows = []
    try:
        worker = Worker(ISSUER.worker_vars()).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
                for name in PHOTOS:
                    photo = photos_dir() / name
                    for shrink in (False, True):
                        got = [one(browser, worker, photo, shrink) for _ in range(runs)]
                        rows.append((name, photo.stat().st_size, shrink, got))
                        print(f"  {name} shrink={shrink}: {got}", file=sys.stderr)
                browser.close()
        finally:
            worker.stop()
    finally:
        if not up:
            subprocess.run(["local/stack", "stop"], cwd=ROOT, stdout=subprocess.DEVNULL)

    med = lambda xs: statistics.median(xs)  # noqa: E731
    print(f"{machine_line()}; Chromium {browser.version} headless; median of {runs} fresh pages each\n")
    print("| photo | picked | opt-in shrink | time to preview | time to shrunk copy | sent and stored "
          f"| sent size | upload at {UPLINK_MBIT} Mbit/s (computed) |")
    print("|---|---:|---|---:|---:|---:|---|---:|")
    for name, size, shrink, got in rows:
        sent = med([g["bytes"] for g in got])
        shrunk = [g["shrunk_ms"] for g in got if g["shrunk_ms"] is not None]
        print(f"| {name} | {size / 1e6:.1f} MB | {'on' if shrink else 'off'} | {med([g['preview_ms'] for g in got]):.0f} ms "
              f"| {f'{med(shrunk):.0f} ms' if shrunk else '–'} | {sent / 1e6:.2f} MB | {got[0]['size']} "
              f"| {sent * 8 / (UPLINK_MBIT * 1e6):.1f} s |")


if __name__ == "__main__":
    main()
