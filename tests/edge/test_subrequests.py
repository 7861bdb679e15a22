"""Every route stays within a Worker's subrequest limit under its worst input.

Cloudflare counts each `fetch` a Worker makes while it serves one request
(here: each S3 request and each Data API call) against a per-request limit:
50 on the Free plan, 10,000 on Workers Paid. pixport needs Paid (CPU), but
every HTTP route is held to 50, so an adopter never meets the limit and a
change that multiplies round trips fails here first; the scheduled runs are
held to Paid's 10,000 (docs/edge.md, "Subrequests of the scheduled sweep"). The counts are taken where production would see them:
the local S3 and Data API count requests per signing identity
(`/__pixport/counters`), and only the worker's (EdgeUser) are read. Routes
run one at a time on a worker of their own; the Lambda signs as its own
role, so a resize in the background does not count.

The figures are printed as the table in docs/edge.md ("Subrequests")."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import time

import pytest
import requests
from PIL import Image

from support.padded import padded_jpeg

from .test_api import AUTH, TOKEN
from .workerctl import Worker

ROUTE_BUDGET = 50
CRON_BUDGET = 10_000
EDGE = "EdgeUser"
MB = 1_000_000
TABLE: list[tuple[str, int, int, int]] = []


@pytest.fixture(scope="module")
def api(stack):
    # Webhook receivers of the delivery run's test listen on loopback.
    w = Worker({"WEBHOOK_ALLOW_PRIVATE": "true"}, extra_args=["--test-scheduled"]).start()
    yield w
    w.stop()
    # The table for docs/edge.md.
    print("\n| request | S3 | Data API | total | budget |\n|---|---|---|---|---|")
    for what, s, d, budget in TABLE:
        print(f"| {what} | {s} | {d} | {s + d} | {budget} |")


def counts(stack) -> tuple[int, int]:
    """The worker identity's S3 requests and Data API calls so far."""
    out = []
    for addr in (stack["PIXPORT_S3_ADDR"], stack["PIXPORT_DATAAPI_ADDR"]):
        body = requests.get(f"http://{addr}/__pixport/counters", timeout=10).json()
        out.append(sum(body.get(EDGE, {}).values()))
    return out[0], out[1]


def measured(stack, what: str, call, budget: int = ROUTE_BUDGET):
    """Runs `call`, waits until the counters are still, and checks the
    worker's subrequests for it against `budget`."""
    s0, d0 = counts(stack)
    result = call()
    # A response can leave work behind it (waitUntil); wait until none is left.
    last, still = counts(stack), 0
    while still < 3:
        time.sleep(0.5)
        now = counts(stack)
        still = still + 1 if now == last else 0
        last = now
    s, d = last[0] - s0, last[1] - d0
    TABLE.append((what, s, d, budget))
    assert s + d <= budget, f"{what}: {s} S3 + {d} Data API = {s + d} subrequests (budget {budget})"
    return result


def noise(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (w, h), random.randbytes(w * h * 3)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def post_image(api, data: bytes, **params):
    r = requests.post(api.url + "/images", params={"duplicates": "allow", **params},
                      files={"file": ("p.jpg", data, "image/jpeg")}, data={"title": "subrequests", "tags": "a,b"},
                      headers=AUTH, timeout=600)
    return r


def test_uploads_within_budget(api, stack):
    small = measured(stack, "POST /images 20 KB", lambda: post_image(api, noise(80, 60)))
    assert small.status_code == 201, small.text
    # The largest upload: MAX_UPLOAD_BYTES (100 MB) in 5 MiB parts.
    big = measured(stack, "POST /images 99 MB (20 parts)", lambda: post_image(api, padded_jpeg(99 * MB)))
    assert big.status_code == 201, big.text
    dup = measured(stack, "POST /images, same bytes (duplicate)",
                   lambda: requests.post(api.url + "/images", files={"file": ("p.jpg", _DUP, "image/jpeg")},
                                         headers=AUTH, timeout=120))
    assert dup.status_code in (200, 201), dup.text


_DUP = noise(90, 70)


def test_a_duplicate_wait_within_budget(api, stack, sql):
    """The longest wait: the same bytes held by an upload still in flight
    (~11 s of looks, then 409)."""
    from .test_duplicates import b64sha
    from .test_security import new_id, owner_of

    data = noise(70, 50)
    dead = new_id()
    sql.rows("INSERT INTO images (id, owner, status, tags, extra, content_type, original_key, checksum_sha256) "
             "VALUES (:id, :owner, 'uploading', '[]', '{}', 'image/jpeg', :key, :sha)",
             id=dead, owner=owner_of(TOKEN), key=f"originals/{dead}", sha=b64sha(data))
    sql.rows("INSERT INTO image_checksums (owner, checksum_sha256, image_id) VALUES (:owner, :sha, :id)",
             owner=owner_of(TOKEN), sha=b64sha(data), id=dead)
    try:
        r = measured(stack, "POST /images, bytes held by another upload (409 after the wait)",
                     lambda: requests.post(api.url + "/images", files={"file": ("p.jpg", data, "image/jpeg")},
                                           headers=AUTH, timeout=120))
        assert r.status_code == 409, r.text
    finally:
        sql.rows("DELETE FROM images WHERE id = :id", id=dead)


def test_reads_and_writes_within_budget(api, stack):
    made = post_image(api, noise(120, 90))
    assert made.status_code == 201, made.text
    iid = made.json()["id"]
    deadline = time.monotonic() + 300
    while requests.get(f"{api.url}/images/{iid}", headers=AUTH, timeout=30).json()["status"] != "ready":
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.5)
    for what, call in [
        ("GET /images/{id}", lambda: requests.get(f"{api.url}/images/{iid}", headers=AUTH, timeout=30)),
        ("GET /images/{id}/{width}", lambda: requests.get(f"{api.url}/images/{iid}/320", timeout=30)),
        ("HEAD /images/{id}/{width}", lambda: requests.head(f"{api.url}/images/{iid}/320", timeout=30)),
        ("GET /images?limit=100", lambda: requests.get(f"{api.url}/images", params={"limit": 100},
                                                         headers=AUTH, timeout=60)),
        ("GET /images/{id} (anonymous)", lambda: requests.get(f"{api.url}/images/{iid}", timeout=60)),
        ("GET /images/{id}/original", lambda: requests.get(f"{api.url}/images/{iid}/original", headers=AUTH,
                                                           timeout=60)),
        ("PATCH /images/{id}", lambda: requests.patch(f"{api.url}/images/{iid}", json={"title": "t"},
                                                      headers=AUTH, timeout=30)),
        ("PUT /webhook", lambda: requests.put(f"{api.url}/webhook", json={"url": "https://example.com/hook"},
                                              headers=AUTH, timeout=30)),
        ("GET /webhook", lambda: requests.get(f"{api.url}/webhook", headers=AUTH, timeout=30)),
        ("DELETE /webhook", lambda: requests.delete(f"{api.url}/webhook", headers=AUTH, timeout=30)),
        ("DELETE /images/{id} (ready, every variant)", lambda: requests.delete(f"{api.url}/images/{iid}",
                                                                              headers=AUTH, timeout=60)),
    ]:
        r = measured(stack, what, call)
        assert r.status_code < 500, f"{what}: {r.status_code} {r.text}"


def test_direct_and_browser_routes_within_budget(api, stack):
    data = noise(64, 48)
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = measured(stack, "POST /uploads", lambda: requests.post(
        f"{api.url}/uploads", params={"duplicates": "allow"},
        json={"content_type": "image/jpeg", "bytes": len(data), "sha256": sha}, headers=AUTH, timeout=30))
    assert r.status_code == 201, r.text

    r = measured(stack, "GET /s3/params", lambda: requests.get(
        f"{api.url}/s3/params", params={"filename": "a.jpg", "type": "image/jpeg", "metadata[size]": "1000"},
        headers=AUTH, timeout=30))
    assert r.status_code == 200, r.text

    size = 12 * 2**20
    r = measured(stack, "POST /s3/multipart", lambda: requests.post(
        f"{api.url}/s3/multipart", json={"filename": "big.jpg", "type": "image/jpeg", "metadata": {"size": size}},
        headers=AUTH, timeout=30))
    assert r.status_code == 200, r.text
    key, upload_id = r.json()["key"], r.json()["uploadId"]
    q = {"key": key}
    r = measured(stack, "GET /s3/multipart/{uploadId}/{partNumber}", lambda: requests.get(
        f"{api.url}/s3/multipart/{upload_id}/1", params=q, headers=AUTH, timeout=30))
    assert r.status_code == 200, r.text
    r = measured(stack, "GET /s3/multipart/{uploadId} (ListParts)", lambda: requests.get(
        f"{api.url}/s3/multipart/{upload_id}", params=q, headers=AUTH, timeout=30))
    assert r.status_code == 200, r.text
    r = measured(stack, "DELETE /s3/multipart/{uploadId}", lambda: requests.delete(
        f"{api.url}/s3/multipart/{upload_id}", params=q, headers=AUTH, timeout=30))
    assert r.status_code < 300, r.text


def test_scheduled_runs_within_budget(api, stack):
    for cron in ["* * * * *", "*/30 * * * *"]:
        r = measured(stack, f"scheduled {cron}", lambda: requests.get(
            f"{api.url}/__scheduled", params={"cron": cron}, timeout=300), budget=CRON_BUDGET)
        assert r.status_code == 200, r.text


def test_webhook_delivery_within_budget(api, stack, sql):
    """A delivery run with more due events than it claims (57 of 10 owners,
    one of them with 12): it claims 50, at most 5 of one owner, and spends
    a few subrequests per event (its id, the POST, the result) beside the
    claim, the read and the release."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading
    import uuid

    class Ok(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    rx = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    tag = uuid.uuid4().hex[:8]
    owners = [f"subreq-{tag}-{i}" for i in range(10)]
    deferred = False
    try:
        for o in owners:
            sql.rows("INSERT INTO webhooks (owner, url, secret) VALUES (:o, :url, :secret)", o=o,
                     url=f"http://127.0.0.1:{rx.server_address[1]}/hook",
                     secret="whsec_" + base64.b64encode(random.randbytes(24)).decode())
        for i, o in enumerate(owners):
            for _ in range(12 if i == 0 else 5):
                sql.rows("INSERT INTO webhook_outbox (owner, image_id, event_type, next_attempt_at) "
                         "VALUES (:o, :img, 'image.failed', CURRENT_TIMESTAMP(3) - INTERVAL 1 SECOND)",
                         o=o, img="01" + uuid.uuid4().hex[:24].upper())
        from .test_webhooks import signal_outbox

        # Other tests' events left due (a receiver gone, retried later)
        # would share the run's 50 places: they wait until this one is done.
        sql.rows("UPDATE webhook_outbox SET next_attempt_at = next_attempt_at + INTERVAL 1 DAY "
                 "WHERE owner NOT LIKE :p AND delivered_at IS NULL AND gave_up_at IS NULL", p=f"subreq-{tag}-%")
        deferred = True
        signal_outbox()
        r = measured(stack, "scheduled * * * * * (57 due events, 10 owners)", lambda: requests.get(
            f"{api.url}/__scheduled", params={"cron": "* * * * *"}, timeout=300), budget=CRON_BUDGET)
        assert r.status_code == 200, r.text
        sent = sql.rows("SELECT owner, COUNT(*) AS n FROM webhook_outbox WHERE owner LIKE :p "
                        "AND delivered_at IS NOT NULL GROUP BY owner", p=f"subreq-{tag}-%")
        per_owner = {row["owner"]: row["n"] for row in sent}
        assert sum(per_owner.values()) == 50, per_owner
        assert per_owner[owners[0]] == 5, "at most 5 of one owner's events per run"
        data_api = TABLE[-1][2]
        # Claim, read, release and the wake record, then the event id and
        # the result per event.
        assert data_api <= 4 + 2 * 50, f"{data_api} Data API calls for 50 events"
    finally:
        if deferred:
            sql.rows("UPDATE webhook_outbox SET next_attempt_at = next_attempt_at - INTERVAL 1 DAY "
                     "WHERE owner NOT LIKE :p AND delivered_at IS NULL AND gave_up_at IS NULL",
                     p=f"subreq-{tag}-%")
        rx.shutdown()
        rx.server_close()
        sql.rows("DELETE FROM webhook_outbox WHERE owner LIKE :p", p=f"subreq-{tag}-%")
        sql.rows("DELETE FROM webhooks WHERE owner LIKE :p", p=f"subreq-{tag}-%")
