"""A stack of its own whose Data API behaves as an auto-paused Aurora
Serverless v2 cluster (`PIXPORT_DATAAPI_AUTOPAUSE_IDLE_MS`): its own S3,
Data API and Lambda emulator (real `bootstrap`, real `resizer.wasm`) on free
ports and its own database in the shared MariaDB (tests/faults/faultstack.py
does the wiring), plus a worker under `wrangler dev --test-scheduled` in
front of it. The idle time is an hour, so the cluster pauses only when a
test asks (`POST /__pixport/cluster/pause`); a resume takes 3 s."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from support import cargo_build

RESUME_MS = 3000

AURORA = {
    "PIXPORT_DATAAPI_AUTOPAUSE_IDLE_MS": "3600000",
    "PIXPORT_DATAAPI_RESUME_MS": str(RESUME_MS),
    # No scheduled redrive: its calls would wake the cluster between a
    # test's pause and the call the test is about.
    "PIXPORT_LAMBDA_SCHEDULE_MS": "0",
}


@pytest.fixture(scope="session")
def aurora(local_stack, resizer_wasm, tmp_path_factory):
    if local_stack is None:
        pytest.skip("PIXPORT_NO_STACK=1")
    from faults.faultstack import FaultStack

    bootstrap = Path(os.environ.get("PIXPORT_BOOTSTRAP") or cargo_build("pixport-lambda", bin="bootstrap", profile="local"))
    fs = FaultStack(local_stack, tmp_path_factory.mktemp("aurora"), bootstrap, resizer_wasm, db_name="pixport_aurora")
    fs.env.update(AURORA)
    try:
        fs.start_all()
        fs.sql("DELETE FROM images")
        fs.sql("DELETE FROM webhook_outbox")
        fs.sql("DELETE FROM webhooks")
        assert cluster(fs)["autoPause"], "this Data API build has no auto-pause mode"
        yield fs
    finally:
        fs.stop_all()


@pytest.fixture(scope="session")
def worker(aurora):
    from edge.workerctl import Worker

    w = Worker(extra_vars={"S3_ENDPOINT": f"http://{aurora.addr['s3']}",
                           "DATA_API_ENDPOINT": f"http://{aurora.addr['dataapi']}", "DB_NAME": aurora.db_name,
                           # The test's webhook receiver listens on loopback.
                           "WEBHOOK_ALLOW_PRIVATE": "true"},
               extra_args=["--test-scheduled"]).start()
    yield w
    w.stop()


def cluster(fs, addr: str | None = None) -> dict:
    """The Data API's local-only view of the cluster: state and counters."""
    url = f"http://{addr or fs.addr['dataapi']}/__pixport/cluster"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def pause(fs, addr: str | None = None) -> dict:
    req = urllib.request.Request(f"http://{addr or fs.addr['dataapi']}/__pixport/cluster/pause", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        state = json.load(r)
    assert state["state"] == "paused", state
    return state
