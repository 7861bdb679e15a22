"""Webhook events in seconds (docs/webhooks.md, "Delivered after"): the
resize Lambda of the local stack, right after it settles an image, calls
the worker's `POST /internal/wake` (signed with the wake secret), and the
worker delivers the event after its answer. No cron runs in these tests
(wrangler dev runs one only when `/__scheduled` is called), so an event
that arrives came through the wake-up call. Also: the owner's delivery log
and redelivery, wake-up calls without the secret refused, and a wake-up
run overlapping a cron run sending each event once.

The worker listens on PIXPORT_WORKER_ADDR, where the stack's Lambda sends
its wake-up calls (local/ports.env)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import random
import socket
import threading
import time
import uuid

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from support import budget, ports_env, wait_until

from .test_api import assert_error
from .test_openapi import validate
from .test_webhook_fairness import Recorder
from .test_webhooks import new_image, outbox, plant_failed, signal_outbox
from .workerctl import Worker

TOKEN = f"wake-{uuid.uuid4().hex[:12]}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOKEN2 = f"wake2-{uuid.uuid4().hex[:12]}"
AUTH2 = {"Authorization": f"Bearer {TOKEN2}"}
CRON = "* * * * *"
# Well under the cron's minute on a loaded 2-core machine: the Lambda's
# call, the worker's run (two S3 reads, four Data API statements) and one
# POST to a receiver on this machine.
WITHIN = budget(20)


@pytest.fixture(scope="module")
def woken(stack):
    env = ports_env()
    host, port = env["PIXPORT_WORKER_ADDR"].rsplit(":", 1)
    with socket.socket() as probe:
        if probe.connect_ex((host, int(port))) == 0:
            pytest.skip(f"PIXPORT_WORKER_ADDR {host}:{port} is taken (a `./run up` worker?): the Lambda wakes that one")
    w = Worker({"API_TOKENS": f"local-dev-token,{TOKEN},{TOKEN2}", "WEBHOOK_ALLOW_PRIVATE": "true",
                "WEBHOOK_TIMEOUT_MS": "20000", "WAKE_SECRET": env["PIXPORT_WAKE_SECRET"]},
               extra_args=["--test-scheduled"], port=int(port)).start()
    yield w
    w.stop()


def hook(w, auth, port) -> dict:
    r = requests.put(w.url + "/webhook", json={"url": f"http://127.0.0.1:{port}/hook"}, headers=auth,
                     timeout=budget(30))
    r.raise_for_status()
    return r.json()


def wake_call(w, body: bytes, secret: str | None = None, ts: int | None = None, sig: str | None = None):
    ts = int(time.time()) if ts is None else ts
    secret = secret or ports_env()["PIXPORT_WAKE_SECRET"]
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"pixport-wake-timestamp": str(ts), "pixport-wake-signature": sig or f"v1={mac}",
               "content-type": "application/json"}
    return requests.post(w.url + "/internal/wake", data=body, headers=headers, timeout=budget(30))


def test_ready_reaches_the_webhook_within_seconds_and_the_log_shows_it(woken):
    rx = Recorder()
    try:
        secret = hook(woken, AUTH, rx.port)["secret"]
        iid = new_image(woken, AUTH)
        # When the row turned ready, as the client sees it (polled).
        wait_until(lambda: requests.get(f"{woken.url}/images/{iid}", timeout=budget(10)).json()["status"] == "ready",
                   budget(180), f"{iid} to be ready", interval=0.1)
        ready_at = time.monotonic()
        wait_until(lambda: any(b["data"]["id"] == iid for _, _, b in rx.got), WITHIN,
                   f"the image.ready event of {iid} without a cron run", interval=0.05)
        arrived = next(t for t, _, b in rx.got if b["data"]["id"] == iid)
        print(f"\nwebhook {max(0.0, arrived - ready_at):.2f} s after ready was seen")
        # Verified as any Standard Webhooks receiver would.
        with rx.lock:
            [(_, msg_id, body)] = [g for g in rx.got if g[2]["data"]["id"] == iid]
        assert body["type"] == "image.ready"

        log = requests.get(woken.url + "/webhooks/deliveries", headers=AUTH, timeout=budget(10))
        validate("/webhooks/deliveries", "get", log)
        [item] = [i for i in log.json()["items"] if i["image_id"] == iid]
        assert (item["id"], item["status"], item["attempts"], item["type"]) == (msg_id, "delivered", 1,
                                                                               "image.ready")
        assert item["delivered_at"] and item["last_error"] is None and item["next_attempt_at"] is None
        assert Webhook(secret)  # the secret is the owner's
        # Another owner sees none of it.
        other = requests.get(woken.url + "/webhooks/deliveries", headers=AUTH2, timeout=budget(10)).json()
        assert all(i["image_id"] != iid for i in other["items"])
        assert_error(requests.get(woken.url + "/webhooks/deliveries", timeout=budget(10)), 401, "unauthorized")
        assert_error(requests.get(woken.url + "/webhooks/deliveries", params={"cursor": "x"}, headers=AUTH,
                                  timeout=budget(10)), 400, "invalid_query")

        # Redelivery: the same webhook-id again, within seconds, one more attempt.
        r = requests.post(f"{woken.url}/webhooks/deliveries/{msg_id}/redeliver", headers=AUTH, timeout=budget(10))
        validate("/webhooks/deliveries/{id}/redeliver", "post", r)
        assert r.status_code == 202, r.text
        assert r.json()["id"] == msg_id
        wait_until(lambda: [i for _, i, _ in rx.got].count(msg_id) == 2, WITHIN, "the redelivered event")
        wait_until(lambda: outbox_item(woken, iid)["attempts"] == 2, WITHIN, "the second attempt recorded")
        assert outbox_item(woken, iid)["status"] == "delivered"
        for auth, eid in [(AUTH2, msg_id), (AUTH, "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV"), (AUTH, "nope")]:
            r = requests.post(f"{woken.url}/webhooks/deliveries/{eid}/redeliver", headers=auth, timeout=budget(10))
            validate("/webhooks/deliveries/{id}/redeliver", "post", r)
            assert_error(r, 404, "not_found")
    finally:
        rx.stop()
        requests.delete(woken.url + "/webhook", headers=AUTH, timeout=budget(30))


def outbox_item(w, iid: str) -> dict:
    items = requests.get(w.url + "/webhooks/deliveries", params={"limit": 100}, headers=AUTH,
                         timeout=budget(10)).json()["items"]
    return next(i for i in items if i["image_id"] == iid)


def test_a_wake_up_call_without_the_secret_is_refused(woken):
    body = json.dumps({"image_id": None, "status": "ready", "request_id": None}).encode()
    ok = wake_call(woken, body)
    validate("/internal/wake", "post", ok)
    assert ok.status_code == 202 and ok.json() == {"accepted": True}
    for r in [
        wake_call(woken, body, secret="another-secret-of-thirty-two-characters"),
        wake_call(woken, body, sig="v1=" + "0" * 64),
        wake_call(woken, body, ts=int(time.time()) - 3600),
        requests.post(woken.url + "/internal/wake", data=body, timeout=budget(10)),
    ]:
        validate("/internal/wake", "post", r)
        assert_error(r, 401, "wake_refused")
    # The signature covers the body: another body with the first one's headers.
    ts = int(time.time())
    mac = hmac.new(ports_env()["PIXPORT_WAKE_SECRET"].encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    r = requests.post(woken.url + "/internal/wake", data=body + b" ", timeout=budget(10),
                      headers={"pixport-wake-timestamp": str(ts), "pixport-wake-signature": f"v1={mac}"})
    assert_error(r, 401, "wake_refused")


def test_a_wake_up_run_and_a_cron_run_send_each_event_once(woken, sql):
    """A wake-up run leases the owner's due events and the receiver holds
    the first of them; a cron run made meanwhile finds them all taken and
    sends nothing. Once the receiver answers, the wake-up run sends the
    rest (what it leaves past its time bound, a second cron run sends)."""
    gate = threading.Event()
    rx = Recorder(gate, hold=budget(60))

    def cron():
        signal_outbox()
        r = requests.get(woken.url + "/__scheduled", params={"cron": CRON}, timeout=budget(300))
        assert r.status_code == 200, r.text

    try:
        # A row of the owner's to copy, written by SQL: no resize, so no
        # wake-up call of the Lambda's starts a run of its own meanwhile.
        owner = requests.get(woken.url + "/me", headers=AUTH2, timeout=budget(10)).json()["owner"]
        like = "01" + uuid.uuid4().hex[:24].upper().translate(str.maketrans("ILOU", "JKMN"))
        sql.rows("INSERT INTO images (id, owner, status, tags, extra, content_type, original_key) "
                 "VALUES (:id, :owner, 'ready', '[]', '{}', 'image/jpeg', :key)",
                 id=like, owner=owner, key=f"originals/{like}")
        hook(woken, AUTH2, rx.port)
        events = [plant_failed(sql, like=like) for _ in range(3)]
        signal_outbox()
        assert wake_call(woken, b"{}").status_code == 202
        wait_until(lambda: rx.inside >= 1, WITHIN, "the wake-up run's first event to reach the receiver")
        held = sql.rows("SELECT COUNT(*) AS n FROM webhook_outbox WHERE image_id IN (:a, :b, :c) "
                        "AND claimed_until > CURRENT_TIMESTAMP(3)", a=events[0], b=events[1], c=events[2])
        assert held[0]["n"] == 3, "the wake-up run leased the owner's due events"
        cron()
        assert len(rx.got) == 1, "the cron run sent an event the wake-up run holds"
        gate.set()
        wait_until(lambda: outbox(sql, rx.got[0][2]["data"]["id"])[0]["delivered_at"], WITHIN,
                   "the held event recorded")
        cron()
        wait_until(lambda: all(outbox(sql, e)[0]["delivered_at"] for e in events), WITHIN, "every event delivered")
        got = [(i, b["data"]["id"]) for _, i, b in rx.got if b["data"]["id"] in events]
        assert sorted(e for _, e in got) == sorted(events), got
        assert len({i for i, _ in got}) == 3, got
        assert all(outbox(sql, e)[0]["attempts"] == 1 for e in events)
    finally:
        gate.set()
        rx.stop()
        requests.delete(woken.url + "/webhook", headers=AUTH2, timeout=budget(30))


def test_the_request_id_follows_an_upload_into_the_lambdas_log(woken, s3, stack):
    """docs/deploy.md, "Following one upload": the original keeps the
    upload's request id as signed object metadata (the worker's own PUT, and
    a direct upload's presigned PUT the client sends), and the Lambda's
    lines about the image (its metric line among them) carry it."""
    import base64

    from PIL import Image as Pil

    from support import state_dir

    bucket = stack["PIXPORT_BUCKET"]
    log = state_dir() / "logs" / "runtime.log"
    # A form upload: the worker stores the original itself.
    iid = new_image(woken, AUTH)
    meta = s3.head_object(Bucket=bucket, Key=f"originals/{iid}")["Metadata"]
    rid = meta.get("request-id")
    assert rid, meta
    wait_until(lambda: any(f'"image_id":"{iid}"' in line and f'"request_id":"{rid}"' in line
                           for line in log.read_text(errors="replace").splitlines()),
               budget(180), f"the Lambda's line for {iid} with its request id", interval=0.3)

    # A direct upload: the id is signed into the PUT the client sends.
    buf = io.BytesIO()
    Pil.frombytes("RGB", (40, 30), random.randbytes(40 * 30 * 3)).save(buf, "JPEG")
    data = buf.getvalue()
    r = requests.post(woken.url + "/uploads", headers=AUTH, timeout=budget(30),
                      json={"content_type": "image/jpeg", "bytes": len(data),
                            "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode()})
    assert r.status_code == 201, r.text
    put, did = r.json()["upload"], r.json()["image"]["id"]
    assert put["headers"]["x-amz-meta-request-id"] == r.headers["x-request-id"]
    dropped = {k: v for k, v in put["headers"].items() if k != "x-amz-meta-request-id"}
    assert requests.put(put["url"], data=data, headers=dropped, timeout=budget(30)).status_code == 403
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=budget(30)).status_code == 200
    meta = s3.head_object(Bucket=bucket, Key=f"originals/{did}")["Metadata"]
    assert meta.get("request-id") == r.headers["x-request-id"], meta
