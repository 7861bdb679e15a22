"""Webhooks (issue #16 item 5): an owner registers an endpoint; `ready` and
`failed` reach it as Standard Webhooks events, verified here with the
`standardwebhooks` package as a real receiver would. A receiver that is
down or answers 500 loses nothing: the event waits in the outbox and is
delivered (same webhook-id) once it answers; the image row is settled
regardless. `ready` comes from the real resize Lambda of the local stack;
`failed` from an UPDATE on a planted row (the resizer fails on nothing the
edge accepts), the statement the Lambda runs: the outbox row comes from
the trigger on it whoever writes it."""

from __future__ import annotations

import io
import json
import random
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from PIL import Image
from standardwebhooks.webhooks import Webhook

from support import budget, closed_port, free_port, wait_until

from .test_api import assert_error
from .test_openapi import validate
from .workerctl import Worker

TOKEN = f"hooks-{uuid.uuid4().hex[:12]}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOKEN2 = f"hooks2-{uuid.uuid4().hex[:12]}"
AUTH2 = {"Authorization": f"Bearer {TOKEN2}"}
CRON = "* * * * *"
# How long one webhook POST may take: long enough that the receivers here
# (threads of this process) always answer in time on a loaded machine,
# short enough that the one that never answers costs seconds.
WEBHOOK_TIMEOUT_MS = min(30_000, int(budget(5) * 1000))


class Redirector:
    """An endpoint answering every request with `status` and a Location;
    counts what it got."""

    def __init__(self, port: int, location: str, status: int = 307):
        self.got = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                outer.got.append(self.command)
                self.send_response(status)
                self.send_header("location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_GET = answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Receiver:
    """An HTTP endpoint answering `status`, keeping what it got; on `sock`
    (a bound socket, e.g. the port a "down" receiver held) or a port of its
    own."""

    def __init__(self, sock: socket.socket | None = None, status: int = 204):
        self.status, self.got = status, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = sock or closed_port()
        self.server.server_address = self.server.socket.getsockname()
        self.server.server_activate()
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hooked(stack):
    # The receivers run on this machine: plain http to loopback, which only
    # the local opt-in allows (docs/security.md).
    w = Worker({"API_TOKENS": f"local-dev-token,{TOKEN},{TOKEN2}", "WEBHOOK_TIMEOUT_MS": str(WEBHOOK_TIMEOUT_MS),
                "WEBHOOK_ALLOW_PRIVATE": "true"},
               extra_args=["--test-scheduled"]).start()
    yield w
    w.stop()


def deliver(w) -> None:
    """One run of the minute cron. These tests settle rows and move
    `next_attempt_at` by SQL, which no signal follows, so first the outbox
    signal changes as the Lambda changes it after settling an image: the
    cron then reads the database (tests/aurora proves it does not
    otherwise)."""
    signal_outbox()
    r = requests.get(w.url + "/__scheduled", params={"cron": CRON}, timeout=budget(120))
    assert r.status_code == 200, r.text


def signal_outbox() -> None:
    from stack.stackctl import ensure_stack

    stack = ensure_stack()
    stack.s3_client().put_object(Bucket=stack.bucket, Key="state/outbox-enqueued",
                                 Body=f"test@{uuid.uuid4().hex}".encode(), ContentType="text/plain")


def new_image(w, auth: dict = AUTH) -> str:
    buf = io.BytesIO()
    Image.frombytes("RGB", (40, 30), random.randbytes(40 * 30 * 3)).save(buf, "JPEG")
    r = requests.post(w.url + "/images", files={"file": ("x.jpg", buf.getvalue(), "image/jpeg")}, headers=auth,
                      timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def wait_ready(w, iid: str, within: float = 180) -> float:
    """Waits for the shared stack's Lambda to make `iid` ready (on a cold
    machine, its first resize waits for the bootstrap to compile the
    module); returns how long that took."""
    t0 = time.monotonic()
    wait_until(lambda: requests.get(f"{w.url}/images/{iid}", timeout=budget(10)).json()["status"] == "ready",
               within, f"{iid} to be ready", interval=0.2)
    return time.monotonic() - t0


def plant_failed(sql, like: str) -> str:
    """A row of the same owner with no object (so no resize), then failed."""
    iid = "01" + uuid.uuid4().hex[:24].upper().translate(str.maketrans("ILOU", "JKMN"))
    sql.rows("INSERT INTO images (id, owner, status, tags, extra, content_type, original_key) "
             "SELECT :id, owner, 'pending', '[]', '{}', 'image/jpeg', :key FROM images WHERE id = :like",
             id=iid, key=f"originals/{iid}", like=like)
    sql.rows("UPDATE images SET status = 'failed', failure_reason = 'corrupt: test', "
             "updated_at = CURRENT_TIMESTAMP(3) WHERE id = :id", id=iid)
    return iid


def outbox(sql, iid: str) -> list[dict]:
    return sql.rows("SELECT id, attempts, delivered_at, last_error FROM webhook_outbox WHERE image_id = :id", id=iid)


def test_register_read_delete(hooked):
    url = hooked.url + "/webhook"

    def call(method, r):
        validate("/webhook", method, r)
        return r

    assert_error(call("get", requests.get(url, headers=AUTH, timeout=10)), 404, "not_found")
    bad = requests.put(url, json={"url": "ftp://x/y"}, headers=AUTH, timeout=10)
    assert_error(call("put", bad), 400, "invalid_field")
    assert_error(call("put", requests.put(url, json={"url": "https://e.org/h"}, timeout=10)), 401, "unauthorized")
    first = call("put", requests.put(url, json={"url": "https://e.org/h"}, headers=AUTH, timeout=10))
    assert first.status_code == 200, first.text
    assert first.json()["secret"].startswith("whsec_")
    moved = call("put", requests.put(url, json={"url": "https://e.org/other"}, headers=AUTH, timeout=10)).json()
    assert moved == {"url": "https://e.org/other", "secret": first.json()["secret"]}
    assert call("get", requests.get(url, headers=AUTH, timeout=10)).json() == moved
    assert call("delete", requests.delete(url, headers=AUTH, timeout=10)).status_code == 204
    assert_error(call("delete", requests.delete(url, headers=AUTH, timeout=10)), 404, "not_found")


def test_events_are_signed_and_a_dead_or_failing_receiver_loses_nothing(hooked, sql):
    # The receiver's port, held (refusing) until the receiver comes up on it.
    down = closed_port()
    port = down.getsockname()[1]
    hook = requests.put(hooked.url + "/webhook", json={"url": f"http://127.0.0.1:{port}/hook"}, headers=AUTH,
                        timeout=10).json()
    verifier = Webhook(hook["secret"])

    # Nobody listens: the real resize makes the image ready as usual, and
    # its event waits in the outbox.
    ready = new_image(hooked)
    took = wait_ready(hooked, ready)
    print(f"\nready in {took:.2f} s with the receiver down")
    assert [r["attempts"] for r in outbox(sql, ready)] == [0]
    deliver(hooked)
    [row] = outbox(sql, ready)
    assert row["attempts"] == 1 and row["delivered_at"] is None and row["last_error"]

    # A receiver answering 500: still kept, tried again when due.
    rx = Receiver(down, status=500)
    try:
        sql.rows("UPDATE webhook_outbox SET next_attempt_at = CURRENT_TIMESTAMP(3) WHERE image_id = :id", id=ready)
        deliver(hooked)
        assert len(rx.got) == 1
        [row] = outbox(sql, ready)
        assert row["attempts"] == 2 and row["delivered_at"] is None
        # Not due yet: the backoff holds it back.
        deliver(hooked)
        assert len(rx.got) == 1

        # The receiver recovers: the same event (same id) arrives and verifies.
        rx.status = 204
        sql.rows("UPDATE webhook_outbox SET next_attempt_at = CURRENT_TIMESTAMP(3) WHERE image_id = :id", id=ready)
        failed = plant_failed(sql, like=ready)
        deliver(hooked)
        events = {}
        for headers, body in rx.got[1:]:
            payload = verifier.verify(body, headers)
            events[payload["data"]["id"]] = (payload, headers["webhook-id"])
        assert events[ready][0]["type"] == "image.ready" and events[ready][0]["data"]["status"] == "ready"
        assert events[failed][0]["type"] == "image.failed"
        assert events[ready][1] == rx.got[0][0]["webhook-id"]
        # Ids are ULIDs (time and randomness), not a count of every
        # owner's events: two events of one owner tell nothing in between.
        ids = [events[ready][1], events[failed][1]]
        assert all(re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids), ids
        assert ids[0] != ids[1]
        assert outbox(sql, ready)[0]["delivered_at"] and outbox(sql, failed)[0]["delivered_at"]

        # A tampered body fails verification.
        headers, body = rx.got[-1]
        with pytest.raises(Exception):
            verifier.verify(body.replace(b"image", b"imagf"), headers)

        # Delivered events are not sent again.
        before = len(rx.got)
        deliver(hooked)
        assert len(rx.got) == before
    finally:
        rx.stop()
        requests.delete(hooked.url + "/webhook", headers=AUTH, timeout=10)


def test_a_receiver_that_never_answers_holds_up_nobody(hooked, sql):
    """One owner's endpoint accepts the connection and never answers: its
    attempt ends at WEBHOOK_TIMEOUT_MS (5 s here) and is rescheduled, and
    the other owner's event in the same run is delivered."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts (the kernel does) and never reads or answers
    rx = Receiver()
    good_port = rx.port
    try:
        # The rows to copy the owners from are settled before the hooks
        # exist: a run sends an owner's events oldest first and stops at its
        # first failure, so their `ready` events would be the ones tried.
        like, like2 = new_image(hooked), new_image(hooked, AUTH2)
        wait_ready(hooked, like)
        wait_ready(hooked, like2)
        requests.put(hooked.url + "/webhook", json={"url": f"http://127.0.0.1:{silent.getsockname()[1]}/hook"},
                     headers=AUTH, timeout=10).raise_for_status()
        requests.put(hooked.url + "/webhook", json={"url": f"http://127.0.0.1:{good_port}/hook"},
                     headers=AUTH2, timeout=10).raise_for_status()
        stuck = plant_failed(sql, like=like)
        fine = plant_failed(sql, like=like2)
        for iid in (stuck, fine):
            sql.rows("UPDATE webhook_outbox SET next_attempt_at = CURRENT_TIMESTAMP(3) - INTERVAL 1 SECOND "
                     "WHERE image_id = :id", id=iid)
        t0 = time.monotonic()
        deliver(hooked)
        took = time.monotonic() - t0
        [row] = outbox(sql, stuck)
        assert row["delivered_at"] is None and row["attempts"] == 1, row
        assert f"no answer within {WEBHOOK_TIMEOUT_MS} ms" in row["last_error"], row
        assert outbox(sql, fine)[0]["delivered_at"], "the other owner's event went out in the same run"
        assert any(json.loads(body)["data"]["id"] == fine for _, body in rx.got)
        # A few attempts at WEBHOOK_TIMEOUT_MS each (this owner's events), not
        # a run held until the request gives up.
        assert took < budget(45), f"one delivery run took {took:.1f} s"
    finally:
        rx.stop()
        silent.close()
        for auth in (AUTH, AUTH2):
            requests.delete(hooked.url + "/webhook", headers=auth, timeout=10)


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirecting_receiver_is_not_followed(hooked, sql, status):
    """A public endpoint could redirect the worker's request to an address
    PUT /webhook refuses: delivery does not follow redirects, counts the 3xx
    as a failed attempt and retries the endpoint itself later."""
    target_port, hop_port = free_port(), free_port()
    target = Redirector(target_port, "http://127.0.0.1:1/never")  # counts anything that reaches it
    hop = Redirector(hop_port, f"http://127.0.0.1:{target_port}/inner", status=status)
    try:
        # Settled before the hook exists, so its `ready` event is not the
        # owner's oldest (the one a run tries first).
        like = new_image(hooked)
        wait_ready(hooked, like)
        requests.put(hooked.url + "/webhook", json={"url": f"http://127.0.0.1:{hop_port}/hook"}, headers=AUTH,
                     timeout=10).raise_for_status()
        iid = plant_failed(sql, like=like)
        sql.rows("UPDATE webhook_outbox SET next_attempt_at = CURRENT_TIMESTAMP(3) - INTERVAL 1 SECOND "
                 "WHERE image_id = :id", id=iid)
        deliver(hooked)
        assert hop.got and set(hop.got) == {"POST"}
        assert target.got == [], "the redirect was followed"
        [row] = outbox(sql, iid)
        assert row["delivered_at"] is None and row["attempts"] == 1
        assert f"answered {status}" in row["last_error"] and "not followed" in row["last_error"]
    finally:
        hop.stop()
        target.stop()
        requests.delete(hooked.url + "/webhook", headers=AUTH, timeout=10)
