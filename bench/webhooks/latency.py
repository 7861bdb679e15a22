"""Ready-to-webhook latency (see bench/webhooks/run).

For each mode, a worker under `wrangler dev` with one owner's webhook
pointing at a receiver in this process; `n` small JPEGs uploaded one a
second (each resized by the local stack's real Lambda); a thread runs the
minute cron at every wall-clock minute as Cloudflare does. Per image, the
latency is the receiver's arrival time minus the moment the row turned
`ready` (the outbox row's `created_at`, written by the trigger in that
UPDATE; the database and this process share the machine's clock).

- `wake`: the worker on PIXPORT_WORKER_ADDR with WAKE_SECRET, where the
  Lambda's wake-up call reaches it (the cron stays the backstop);
- `cron only`: no WAKE_SECRET (the call is refused 404 and logged), so
  events wait for the next minute.
"""

from __future__ import annotations

import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import requests  # noqa: E402
from PIL import Image  # noqa: E402

from support import ports_env, wait_until  # noqa: E402
from tests.conftest import Sql  # noqa: E402
from tests.edge.workerctl import Worker  # noqa: E402


class Receiver:
    """Records when each image's event first arrived (wall clock)."""

    def __init__(self):
        self.first: dict[str, float] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with outer.lock:
                    outer.first.setdefault(body["data"]["id"], time.time())
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def minute_cron(w: Worker, stop: threading.Event) -> None:
    """`* * * * *` as Cloudflare runs it: at the start of every minute."""
    while not stop.wait(60 - time.time() % 60):
        try:
            requests.get(w.url + "/__scheduled", params={"cron": "* * * * *"}, timeout=120)
        except requests.RequestException:
            pass


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (64, 48), random.randbytes(64 * 48 * 3)).save(buf, "JPEG")
    return buf.getvalue()


def run_mode(label: str, wake: bool, n: int, sql: Sql) -> list[float]:
    env = ports_env()
    token = f"bench-{uuid.uuid4().hex[:10]}"
    auth = {"Authorization": f"Bearer {token}"}
    extra = {"API_TOKENS": token, "WEBHOOK_ALLOW_PRIVATE": "true",
             "WAKE_SECRET": env["PIXPORT_WAKE_SECRET"] if wake else ""}
    port = int(env["PIXPORT_WORKER_ADDR"].rsplit(":", 1)[1]) if wake else None
    w = Worker(extra, extra_args=["--test-scheduled"], port=port).start()
    rx, stop = Receiver(), threading.Event()
    try:
        requests.put(w.url + "/webhook", json={"url": f"http://127.0.0.1:{rx.port}/hook"}, headers=auth,
                     timeout=30).raise_for_status()
        threading.Thread(target=minute_cron, args=(w, stop), daemon=True).start()
        ids = []
        for _ in range(n):
            r = requests.post(w.url + "/images", files={"file": ("b.jpg", jpeg(), "image/jpeg")}, headers=auth,
                              timeout=60)
            r.raise_for_status()
            ids.append(r.json()["id"])
            time.sleep(1)
        wait_until(lambda: all(i in rx.first for i in ids), 600, f"{label}: every event", interval=0.5)
        ready = {}
        for i in ids:
            [row] = sql.rows("SELECT UNIX_TIMESTAMP(created_at) AS t FROM webhook_outbox WHERE image_id = :id "
                             "AND event_type = 'image.ready'", id=i)
            ready[i] = float(row["t"])
        return [max(0.0, rx.first[i] - ready[i]) for i in ids]
    finally:
        stop.set()
        requests.delete(w.url + "/webhook", headers=auth, timeout=30)
        rx.stop()
        w.stop()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    up = subprocess.run(["local/stack", "status"], cwd=ROOT, capture_output=True).returncode == 0
    if not up:
        subprocess.run(["local/stack", "start"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    sql = Sql(ports_env())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    try:
        results = [(label, run_mode(label, wake, n, sql)) for label, wake in (("wake", True), ("cron only", False))]
    finally:
        if not up:
            subprocess.run(["local/stack", "stop"], cwd=ROOT, stdout=subprocess.DEVNULL)
    print(f"{time.strftime('%Y-%m-%d', time.gmtime())}, commit {commit}; {cpu}, {os.cpu_count()} cores; "
          f"wrangler dev + local stack on loopback; {n} images per mode, one uploaded a second\n")
    print("| mode | images | p50 | p99 | max |")
    print("|---|---|---|---|---|")
    for label, xs in results:
        print(f"| {label} | {len(xs)} | {statistics.median(xs):.2f} s | {pct(xs, 99):.2f} s | {max(xs):.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
