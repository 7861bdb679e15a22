"""Benchmarks the real `bootstrap` against in-process stand-ins.

The Runtime API, S3 and the Data API are tiny loopback servers here, so the
numbers are the function's own cost (process start, engine + `.cwasm` load,
HTTP client, per-image GET/resize/PUT/UPDATE) and not the local stack's.

* init: process start -> first `GET /runtime/invocation/next` (what Lambda
  bills as Init), over several cold starts of a fresh process.
* per image: `/next` answered -> `/response` received (the handler), next to
  the time the module itself ran (instantiate + `_start`, reported by the
  handler), on the test photos (tests/photos/generate.py).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "pixport" / "target"))
sys.path.insert(0, str(ROOT / "tests"))
from support import photos_dir  # noqa: E402

PHOTOS = photos_dir()
BUCKET = "bench"


class State:
    def __init__(self):
        self.events: queue.Queue = queue.Queue()
        self.first_next: float | None = None
        self.sent: dict[str, float] = {}
        self.done: queue.Queue = queue.Queue()
        self.objects: dict[str, bytes] = {}


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, *a):  # quiet
        pass

    def reply(self, code: int, body: bytes = b"", headers: dict | None = None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            if STATE.first_next is None:
                STATE.first_next = time.perf_counter()
            payload = STATE.events.get()
            rid = str(uuid.uuid4())
            STATE.sent[rid] = time.perf_counter()
            self.reply(200, json.dumps(payload).encode(), {
                "Lambda-Runtime-Aws-Request-Id": rid,
                "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 900_000),
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:000000000000:function:bench",
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                "Content-Type": "application/json"})
        elif self.path.startswith(f"/{BUCKET}/"):
            key = self.path[len(BUCKET) + 2:]
            data = STATE.objects.get(key)
            if data is None:
                self.reply(404, b"<Error><Code>NoSuchKey</Code><Message>no</Message></Error>",
                           {"Content-Type": "application/xml"})
            else:
                self.reply(200, data, {"Content-Type": "application/octet-stream", "ETag": '"x"'})
        else:
            self.reply(404)

    def do_PUT(self):
        data = self.body()
        STATE.objects[self.path[len(BUCKET) + 2:]] = data
        self.reply(200, b"", {"ETag": '"x"'})

    def do_POST(self):
        data = self.body()
        if "/runtime/invocation/" in self.path:
            rid = self.path.split("/")[-2]
            kind = self.path.rsplit("/", 1)[-1]
            STATE.done.put((rid, kind, time.perf_counter() - STATE.sent.pop(rid, time.perf_counter()), data))
            self.reply(202, b"{}", {"Content-Type": "application/json"})
        elif "/runtime/init/error" in self.path:
            print("init error:", data.decode(errors="replace"), file=sys.stderr)
            self.reply(202, b"{}")
        elif self.path == "/Execute":
            sql = json.loads(data)["sql"].lstrip().upper()
            if sql.startswith("SELECT"):
                out = {"records": [], "formattedRecords": json.dumps([{"status": "pending", "attempts": 1}])}
            else:
                out = {"numberOfRecordsUpdated": 1, "generatedFields": []}
            self.reply(200, json.dumps(out).encode(), {"Content-Type": "application/json"})
        else:
            self.reply(404)


def event(key: str, seq: int) -> dict:
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2025-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "bench",
               "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "x"}, "arn": f"arn:aws:s3:::{BUCKET}"},
               "object": {"key": key, "size": 1, "eTag": "x", "sequencer": f"{seq:016X}"}}}]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--debug", action="store_true", help="use the debug bootstrap")
    ap.add_argument("--starts", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-build", action="store_true", help="use the binaries already in $CARGO_TARGET_DIR")
    args = ap.parse_args()
    profile = "debug" if args.debug else "release"

    build = ["cargo", "build", "-q", "-p", "pixport-lambda", "--bin", "bootstrap"] + ([] if args.debug else ["--release"])
    if not args.no_build:
        subprocess.run(build, cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "resizer-wasi", "--target", "wasm32-wasip1", "--bin", "resizer"],
                       cwd=ROOT, check=True)
    bootstrap = TARGET / profile / "bootstrap"
    wasm = TARGET / "wasm32-wasip1" / "release" / "resizer.wasm"
    tmp = Path(tempfile.mkdtemp(prefix="pixport-bench-"))
    cwasm = tmp / "resizer.cwasm"
    t = time.perf_counter()
    subprocess.run([str(bootstrap), "--precompile", "--target", "x86_64-unknown-linux-gnu", str(wasm), str(cwasm)], check=True)
    print(f"precompile (package time, not init): {time.perf_counter() - t:.1f} s, {cwasm.stat().st_size / 1e6:.1f} MB")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.handle_error = lambda *a: None  # killed cold-start processes leave broken pipes
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{srv.server_address[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIXPORT_"))}
    env.update(AWS_LAMBDA_RUNTIME_API=addr, AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="2048", AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/bench",
               AWS_LAMBDA_LOG_STREAM_NAME="bench", AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="AK", AWS_SECRET_ACCESS_KEY="SK",
               PIXPORT_BUCKET=BUCKET, PIXPORT_S3_ENDPOINT=f"http://{addr}", PIXPORT_DATAAPI_ENDPOINT=f"http://{addr}",
               PIXPORT_DB_CLUSTER_ARN="arn:aws:rds:us-east-1:0:cluster:bench",
               PIXPORT_DB_SECRET_ARN="arn:aws:secretsmanager:us-east-1:0:secret:bench", PIXPORT_DB_NAME="bench",
               PIXPORT_MODULE=str(cwasm), PIXPORT_LOG="warn", PIXPORT_MEMORY_MIB="2048", PIXPORT_TIMEOUT_MS="120000")

    inits = []
    for _ in range(args.starts):
        STATE.first_next = None
        t0 = time.perf_counter()
        p = subprocess.Popen([str(bootstrap)], env=env, cwd=tmp)
        while STATE.first_next is None:
            if p.poll() is not None:
                sys.exit(f"bootstrap exited with {p.returncode} before polling")
            time.sleep(0.0005)
        inits.append((STATE.first_next - t0) * 1000)
        p.kill()
        p.wait()
        # The killed process's /next handler is still blocked on the queue:
        # feed it a dummy so it does not swallow a real event later.
        STATE.events.put({"Records": []})
    print(f"\ninit (process start -> first /next), {profile}, {args.starts} cold starts: "
          f"min {min(inits):.1f} ms, median {statistics.median(inits):.1f} ms, max {max(inits):.1f} ms")

    # Warm process for per-image timings.
    drain()
    p = subprocess.Popen([str(bootstrap)], env=env, cwd=tmp)
    try:
        photos = sorted(PHOTOS.glob("*.jpg"))
        print(f"\n{'image':<12} {'MB':>6} {'handler ms':>11} {'module ms':>10} {'host ms':>8}  (median of {args.repeat})")
        seq = 1
        for photo in photos:
            data = photo.read_bytes()
            key = f"originals/B{seq:025d}"
            STATE.objects[key] = data
            hs, ms = [], []
            for _ in range(args.repeat):
                seq += 1
                STATE.events.put(event(key, seq))
                while True:
                    rid, kind, dt, body = STATE.done.get(timeout=300)
                    if kind != "response":
                        sys.exit(f"{photo.name}: {kind}: {body.decode(errors='replace')}")
                    outcomes = json.loads(body)["outcomes"]
                    if outcomes:  # not a leftover dummy from the cold-start loop
                        break
                out = outcomes[0]
                if out.get("outcome") != "ready":
                    sys.exit(f"{photo.name}: {out}")
                hs.append(dt * 1000)
                ms.append(out["module_ms"])
            h, m = statistics.median(hs), statistics.median(ms)
            print(f"{photo.name:<12} {len(data) / 1e6:>6.1f} {h:>11.0f} {m:>10.0f} {h - m:>8.0f}")
    finally:
        p.kill()
        p.wait()


def drain() -> None:
    while not STATE.done.empty():
        STATE.done.get_nowait()


if __name__ == "__main__":
    main()
