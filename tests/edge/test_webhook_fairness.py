"""Webhook delivery is fair between owners and never sends an event twice
at once (docs/webhooks.md, "Delivery runs"; docs/security.md).

A cron run claims the rows it sends with a lease (one conditional UPDATE),
so an overlapping run cannot take them; it sends owners side by side, one
event at a time per owner and at most a few per owner per run, and stops an
owner's share of the run at its first failure. A receiver that never
answers costs its owner one timeout and nobody else anything.

Ordering is asserted on events (what each receiver got, and when the
silent one's connection ended), not on the wall clock."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from support import budget, wait_until

from .test_webhooks import deliver, new_image, outbox, plant_failed, signal_outbox, wait_ready
from .workerctl import Worker

TOKEN_A = f"fairA-{uuid.uuid4().hex[:12]}"
TOKEN_B = f"fairB-{uuid.uuid4().hex[:12]}"
TOKEN_C = f"fairC-{uuid.uuid4().hex[:12]}"
AUTH_A = {"Authorization": f"Bearer {TOKEN_A}"}
AUTH_B = {"Authorization": f"Bearer {TOKEN_B}"}
AUTH_C = {"Authorization": f"Bearer {TOKEN_C}"}
CRON = "* * * * *"
# Long enough that a receiver here held on purpose (the overlap test) is
# still inside it on a loaded machine; the silent receiver costs one of it.
WEBHOOK_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def fair(stack):
    w = Worker({"API_TOKENS": f"local-dev-token,{TOKEN_A},{TOKEN_B},{TOKEN_C}",
                "WEBHOOK_TIMEOUT_MS": str(WEBHOOK_TIMEOUT_MS), "WEBHOOK_ALLOW_PRIVATE": "true"},
               extra_args=["--test-scheduled"]).start()
    yield w
    w.stop()


class Recorder:
    """A receiver answering 204 after `gate` is set (at once if no gate);
    records each event's webhook-id and when it arrived, and counts the
    requests inside the handler."""

    def __init__(self, gate: threading.Event | None = None, hold: float = 0):
        self.got: list[tuple[float, str, dict]] = []
        self.inside = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with outer.lock:
                    outer.got.append((time.monotonic(), self.headers["webhook-id"], body))
                    outer.inside += 1
                if gate is not None:
                    gate.wait(hold)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self) -> list[str]:
        with self.lock:
            return [i for _, i, _ in self.got]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """Accepts connections and never answers; records when each was
    accepted and when the worker gave up on it (closed it)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[float] = []
        self.closed: list[float] = []
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket):
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
        self.closed.append(time.monotonic())
        conn.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


def hook(w, auth, port):
    requests.put(w.url + "/webhook", json={"url": f"http://127.0.0.1:{port}/hook"}, headers=auth,
                 timeout=budget(30)).raise_for_status()


def due_now(sql, ids):
    for iid in ids:
        sql.rows("UPDATE webhook_outbox SET next_attempt_at = CURRENT_TIMESTAMP(3) - INTERVAL 1 SECOND "
                 "WHERE image_id = :id", id=iid)


def test_a_silent_receiver_costs_its_owner_one_timeout_and_others_nothing(fair, sql):
    silent, rx = Silent(), Recorder()
    try:
        # Rows to copy the owners from, settled before the hooks exist, so
        # their own `ready` events are none of the run's.
        like_a, like_b = new_image(fair, AUTH_A), new_image(fair, AUTH_B)
        wait_ready(fair, like_a)
        wait_ready(fair, like_b)
        hook(fair, AUTH_A, silent.port)
        hook(fair, AUTH_B, rx.port)
        # A's events are the older ones: oldest-first, one by one, sent all
        # of them (a timeout each) before any of B's.
        stuck = [plant_failed(sql, like=like_a) for _ in range(6)]
        fine = [plant_failed(sql, like=like_b) for _ in range(3)]
        due_now(sql, stuck + fine)

        deliver(fair)

        # B's events all went out in this run, while A's one attempt was
        # still waiting for its answer (before the worker gave up on it).
        assert sorted(b["data"]["id"] for _, _, b in rx.got) == sorted(fine)
        for iid in fine:
            assert outbox(sql, iid)[0]["delivered_at"], iid
        assert len(silent.accepted) == 1, f"{len(silent.accepted)} attempts at the silent receiver in one run"
        wait_until(lambda: silent.closed, 30, "the worker to give up on the silent receiver")
        assert max(t for t, _, _ in rx.got) < silent.closed[0], "B's events waited for A's receiver"
        # A: one attempt, rescheduled with the timeout as its error; the
        # others untouched, free for the next run.
        rows = [outbox(sql, iid)[0] for iid in stuck]
        tried = [r for r in rows if r["attempts"] == 1]
        assert len(tried) == 1, rows
        assert f"no answer within {WEBHOOK_TIMEOUT_MS} ms" in tried[0]["last_error"]
        assert all(r["attempts"] == 0 and r["delivered_at"] is None for r in rows if r is not tried[0])
        claimed = sql.rows("SELECT COUNT(*) AS n FROM webhook_outbox WHERE owner = "
                           "(SELECT owner FROM images WHERE id = :id) AND claimed_until > CURRENT_TIMESTAMP(3)",
                           id=like_a)
        assert claimed[0]["n"] == 0, "a finished run leaves no row claimed"
    finally:
        rx.stop()
        silent.stop()
        for auth in (AUTH_A, AUTH_B):
            requests.delete(fair.url + "/webhook", headers=auth, timeout=budget(30))


def test_overlapping_runs_deliver_each_event_once(fair, sql):
    gate = threading.Event()
    # Held until the second run is over, well inside the worker's timeout.
    rx = Recorder(gate, hold=min(WEBHOOK_TIMEOUT_MS / 1000 * 0.8, budget(20)))
    runs: list[requests.Response] = []

    def run():
        r = requests.get(fair.url + "/__scheduled", params={"cron": CRON}, timeout=budget(300))
        runs.append(r)

    try:
        like = new_image(fair, AUTH_C)
        wait_ready(fair, like)
        hook(fair, AUTH_C, rx.port)
        events = [plant_failed(sql, like=like) for _ in range(4)]
        due_now(sql, events)

        signal_outbox()
        first = threading.Thread(target=run)
        first.start()
        # The first run is sending (and holding) its first event.
        wait_until(lambda: rx.inside >= 1, 120, "the first run to send an event")
        signal_outbox()
        second = threading.Thread(target=run)
        second.start()
        # The second run finds nothing it may send; before, it sent the
        # first run's events again.
        wait_until(lambda: not second.is_alive() or len(set(rx.ids())) < len(rx.ids()), 120,
                   "the second run to end (or to send an event twice)")
        gate.set()
        first.join(budget(300))
        second.join(budget(300))
        assert [r.status_code for r in runs] == [200, 200]

        counts = Counter(b["data"]["id"] for _, _, b in rx.got)
        assert counts == Counter(events), f"each event once: {counts}"
        assert len(set(rx.ids())) == len(rx.ids())
        for iid in events:
            [row] = outbox(sql, iid)
            assert row["delivered_at"] and row["attempts"] == 1, row
        # Delivered events are not sent again.
        deliver(fair)
        assert Counter(b["data"]["id"] for _, _, b in rx.got) == Counter(events)
    finally:
        gate.set()
        rx.stop()
        requests.delete(fair.url + "/webhook", headers=AUTH_C, timeout=budget(30))
