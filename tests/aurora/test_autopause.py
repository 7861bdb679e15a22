"""Aurora Serverless v2 with a minimum capacity of 0 pauses when idle; the
first Data API call after that is refused with `DatabaseResumingException`,
and so is every call until the cluster has resumed. Against a local Data
API that does the same:

- it answers exactly as Aurora does (botocore's modelled exception), times
  out a statement at the statement timeout, and pauses after its idle time;
- an upload through the worker after a pause succeeds: the worker waited;
- a resize after a pause succeeds in the same invocation: the Lambda waited
  (no async retry of Lambda's);
- the webhook cron on an idle system makes no Data API call at all, so the
  cluster stays paused, and still delivers an event once one is queued;
- so does the Lambda's scheduled redrive."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import subprocess
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from botocore.exceptions import ClientError
from PIL import Image

from faults.faultstack import listening
from support import free_addr

from .conftest import RESUME_MS, cluster, pause

pytestmark = pytest.mark.slow

AUTH = {"Authorization": "Bearer local-dev-token"}
MINUTE_CRON = "* * * * *"
RESUMING = re.compile(r"The Aurora DB instance \S+ is resuming after being auto-paused\. "
                      r"Please wait a few seconds and try again\.")


def jpeg(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (w, h), random.randbytes(w * h * 3)).save(buf, "JPEG")
    return buf.getvalue()


def code_of(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def wait_until(what: str, check, within: float = 90.0, every: float = 0.2):
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(every)


def status(aurora, iid: str) -> dict | None:
    rows = aurora.sql("SELECT status, attempts FROM images WHERE id = :id", id=iid)
    return rows[0] if rows else None


def cron(worker, expr: str = MINUTE_CRON) -> None:
    r = requests.get(worker.url + "/__scheduled", params={"cron": expr}, timeout=120)
    assert r.status_code == 200, r.text


# The Data API ----------------------------------------------------------------


def test_a_paused_cluster_refuses_as_aurora_does_until_it_has_resumed(aurora):
    rds = aurora.rds()
    before = pause(aurora)
    t0 = time.monotonic()
    with pytest.raises(ClientError) as first:
        aurora.sql("SELECT 1 AS one")
    err = first.value.response
    assert code_of(first.value) == "DatabaseResumingException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert RESUMING.fullmatch(err["Error"]["Message"]), err["Error"]["Message"]
    # botocore's model (400, `message`) parses it into the class a boto3
    # user catches.
    assert isinstance(first.value, rds.exceptions.DatabaseResumingException)
    assert cluster(aurora)["state"] == "resuming"

    refusals = 1

    def answered():
        nonlocal refusals
        try:
            return aurora.sql("SELECT 1 AS one")
        except ClientError as e:
            assert code_of(e) == "DatabaseResumingException", e.response
            refusals += 1
            return None

    assert wait_until("the cluster resumed", answered) == [{"one": 1}]
    assert time.monotonic() - t0 >= RESUME_MS / 1000 * 0.9, "refused for the whole resume"
    after = cluster(aurora)
    assert after["state"] == "awake"
    assert after["pauses"] == before["pauses"]
    assert after["refusedResuming"] - before["refusedResuming"] == refusals
    assert after["calls"] - before["calls"] == refusals + 1


class DataApi:
    """A second local Data API on the aurora stack's database with other
    settings (a short idle time, a short statement timeout)."""

    def __init__(self, aurora, **env: str):
        self.addr = free_addr()
        self.aurora = aurora
        log = open(aurora.state / "logs" / f"dataapi-{self.addr.rsplit(':', 1)[1]}.log", "ab")
        self.proc = subprocess.Popen(aurora.cmds["dataapi"], env={**aurora.env, "PIXPORT_DATAAPI_ADDR": self.addr, **env},
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        wait_until("the second Data API listens", lambda: listening(self.addr) or self.proc.poll() is not None, 30)
        assert self.proc.poll() is None, "the second Data API exited"

    def client(self):
        import boto3
        from botocore.config import Config

        a = self.aurora.shared
        return boto3.client("rds-data", endpoint_url=f"http://{self.addr}", region_name=a.region,
                            aws_access_key_id=a.access_key_id, aws_secret_access_key=a.secret_access_key,
                            config=Config(retries={"max_attempts": 1}, read_timeout=120))

    def execute(self, sql: str, **kw) -> dict:
        a = self.aurora.shared
        return self.client().execute_statement(resourceArn=a.db_cluster_arn, secretArn=a.db_secret_arn,
                                               database=self.aurora.db_name, sql=sql, **kw)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def test_idle_time_pauses_the_cluster(aurora):
    api = DataApi(aurora, PIXPORT_DATAAPI_AUTOPAUSE_IDLE_MS="1500", PIXPORT_DATAAPI_RESUME_MS="1000")
    try:
        api.execute("SELECT 1")
        assert cluster(aurora, api.addr)["state"] == "awake"
        # Nothing calls it: after its idle time it is paused (waited for by
        # its own report, which is no call and wakes nothing).
        wait_until("paused by idleness", lambda: cluster(aurora, api.addr)["state"] == "paused", 60)
        with pytest.raises(ClientError) as e:
            api.execute("SELECT 1")
        assert code_of(e.value) == "DatabaseResumingException"
        assert cluster(aurora, api.addr)["pauses"] == 1
    finally:
        api.stop()


def test_a_statement_past_the_timeout_is_cancelled_unless_asked_to_continue(aurora):
    aurora.sql("CREATE TABLE IF NOT EXISTS timeout_probe (tag VARCHAR(40) NOT NULL)")
    api = DataApi(aurora, PIXPORT_DATAAPI_STATEMENT_TIMEOUT_MS="1000")
    slow = "INSERT INTO timeout_probe (tag) SELECT :tag FROM DUAL WHERE SLEEP(8) = 0"

    def timed_out(**kw) -> int:
        t0 = time.monotonic()
        with pytest.raises(ClientError) as e:
            api.execute(slow, **kw)
        assert time.monotonic() - t0 < 6, "answered at the timeout, not when the statement ended"
        assert code_of(e.value) == "StatementTimeoutException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return e.value.response["dbConnectionId"]

    def idle(conn: int) -> bool:
        rows = aurora.sql("SELECT COALESCE(INFO, '') AS info FROM information_schema.PROCESSLIST WHERE ID = :id",
                          id=conn)
        return not rows or "timeout_probe" not in rows[0]["info"]

    try:
        cancelled, kept = f"cancel-{uuid.uuid4().hex[:8]}", f"keep-{uuid.uuid4().hex[:8]}"
        conn = timed_out(parameters=[{"name": "tag", "value": {"stringValue": cancelled}}])
        wait_until("the timed-out statement stopped", lambda: idle(conn), 30)
        assert aurora.sql("SELECT tag FROM timeout_probe WHERE tag = :t", t=cancelled) == []

        timed_out(parameters=[{"name": "tag", "value": {"stringValue": kept}}], continueAfterTimeout=True)
        wait_until("the continued statement finished",
                   lambda: aurora.sql("SELECT tag FROM timeout_probe WHERE tag = :t", t=kept), 30)
    finally:
        api.stop()


# The worker and the Lambda -----------------------------------------------------


def test_an_upload_after_a_pause_succeeds_because_the_worker_waits(aurora, worker):
    before = pause(aurora)
    t0 = time.monotonic()
    r = requests.post(worker.url + "/images", files={"file": ("p.jpg", jpeg(), "image/jpeg")}, headers=AUTH,
                      timeout=120)
    took = time.monotonic() - t0
    assert r.status_code == 201, r.text
    after = cluster(aurora)
    print(f"\nupload after a pause: 201 in {took:.1f} s, {after['refusedResuming'] - before['refusedResuming']} "
          "refused calls")
    assert after["refusedResuming"] > before["refusedResuming"], "the upload met the paused cluster"
    assert after["state"] == "awake"
    iid = r.json()["id"]
    assert wait_until("resized", lambda: (status(aurora, iid) or {}).get("status") == "ready")


def direct_upload(worker, data: bytes) -> tuple[str, dict]:
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = requests.post(worker.url + "/uploads", params={"duplicates": "allow"},
                      json={"content_type": "image/jpeg", "bytes": len(data), "sha256": sha}, headers=AUTH, timeout=120)
    assert r.status_code == 201, r.text
    return r.json()["image"]["id"], r.json()["upload"]


def test_a_resize_after_a_pause_succeeds_because_the_lambda_waits(aurora, worker):
    data = jpeg(320, 240)
    iid, put = direct_upload(worker, data)
    counts = aurora.runtime_status()["counts"]
    before = pause(aurora)
    # The client sends the file straight to S3: no Data API call; S3's
    # event invokes the Lambda, whose first call meets the paused cluster.
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=60).status_code == 200
    # Waited for by the emulator's report, not by SQL: a query from here
    # would wake the cluster itself.
    now = wait_until("the invocation ended", lambda: (c := aurora.runtime_status()["counts"])
                     and c["succeeded"] + c["failed"] > counts["succeeded"] + counts["failed"] and c)
    after = cluster(aurora)
    assert after["refusedResuming"] > before["refusedResuming"], "the resize met the paused cluster"
    assert now["succeeded"] == counts["succeeded"] + 1 and now["failed"] == counts["failed"], now
    assert now["retried"] == counts["retried"], "no async retry of Lambda's: the invocation itself waited"
    assert status(aurora, iid) == {"status": "ready", "attempts": 1}


# The webhook cron --------------------------------------------------------------


class Receiver:
    def __init__(self):
        self.got: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def enqueued(aurora) -> str | None:
    try:
        return aurora.s3().get_object(Bucket=aurora.bucket, Key="state/outbox-enqueued")["Body"].read().decode()
    except ClientError as e:
        assert code_of(e) == "NoSuchKey", e.response
        return None


def test_the_minute_cron_leaves_an_idle_cluster_paused_and_still_delivers(aurora, worker):
    rx = Receiver()
    try:
        # Whatever earlier tests left is delivered and recorded.
        cron(worker)
        pause(aurora)
        before = cluster(aurora)
        for _ in range(3):
            cron(worker)
        idle = cluster(aurora)
        assert idle["calls"] == before["calls"], "the cron made a Data API call on an idle system"
        assert idle["state"] == "paused"

        # An image settled by the resize queues an event (the trigger) and
        # the Lambda changes the signal; the next minute's run finds it,
        # wakes the cluster (waiting out the resume) and delivers.
        assert requests.put(worker.url + "/webhook", json={"url": rx.url}, headers=AUTH, timeout=120).ok
        token = enqueued(aurora)
        r = requests.post(worker.url + "/images", files={"file": ("h.jpg", jpeg(), "image/jpeg")}, headers=AUTH,
                          timeout=120)
        assert r.status_code == 201, r.text
        iid = r.json()["id"]
        wait_until("resized", lambda: (status(aurora, iid) or {}).get("status") == "ready")
        wait_until("the Lambda signalled the cron", lambda: enqueued(aurora) != token, 30)
        pause(aurora)
        cron(worker)
        assert [e["data"] for e in rx.got] == [{"id": iid, "status": "ready"}]
        woke = cluster(aurora)
        assert woke["refusedResuming"] > idle["refusedResuming"], "the delivery run woke the paused cluster"

        # Delivered and recorded: idle again, so no further call.
        pause(aurora)
        quiet = cluster(aurora)
        cron(worker)
        assert cluster(aurora)["calls"] == quiet["calls"]
        assert len(rx.got) == 1
    finally:
        rx.stop()
        requests.delete(worker.url + "/webhook", headers=AUTH, timeout=120)


def redrive(aurora) -> dict:
    """One scheduled redrive, as EventBridge sends it, answered in full."""
    req = urllib.request.Request(
        f"{aurora.runtime_url}/2015-03-31/functions/{aurora.shared.function_name}/invocations",
        data=json.dumps({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}).encode(),
        method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200 and not r.headers.get("X-Amz-Function-Error"), r.read()
        return json.load(r)["redrive"]


def test_the_redrive_leaves_an_idle_cluster_paused(aurora):
    # Earlier uploads signalled it: this run reads the table and records
    # that nothing is pending; the next has nothing to look at.
    redrive(aurora)
    pause(aurora)
    before = cluster(aurora)
    run = redrive(aurora)
    assert run["skipped"] and run["outcomes"] == [], run
    after = cluster(aurora)
    assert after["calls"] == before["calls"] and after["state"] == "paused"
