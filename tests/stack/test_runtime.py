"""The Lambda emulator: Runtime API for the bootstrap, Invoke API for
callers, async retries and restarts like Lambda. Runs its own emulator with a
fake Python bootstrap on a free port."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from support import budget, free_port, wait_until

FAKE = Path(__file__).parent / "fake_bootstrap.py"


@pytest.fixture(scope="module")
def emulator(stack, tmp_path_factory):
    port = free_port()
    state = tmp_path_factory.mktemp("lambda")
    # Retries 50 and 100 ms apart (the list wins over the shared stack's
    # PIXPORT_LAMBDA_RETRY_DELAYS_MS in this environment); a 2 s function
    # timeout, which the fake bootstrap's answers (milliseconds of Python)
    # never come near and its 4 s sleep always passes.
    env = dict(os.environ, PIXPORT_RUNTIME_API_ADDR=f"127.0.0.1:{port}", PIXPORT_LAMBDA_STATE=str(state),
               PIXPORT_FUNCTION_NAME="fake-fn", PIXPORT_LAMBDA_RETRY_DELAYS_MS="50,100", PIXPORT_LAMBDA_TIMEOUT="2")
    log = open(state / "runtime.log", "wb")
    proc = subprocess.Popen([str(stack.bin_dir / "pixport-local-runtime"), "--bootstrap", str(FAKE)],
                            env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (state / "runtime.log").read_text()[-2000:]
        try:
            return requests.get(f"{base}/_status", timeout=budget(5)).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(up, 60, f"the emulator to answer on {base}", interval=0.025)
    yield {"base": base, "state": state, "proc": proc}
    proc.terminate()
    proc.wait(5)


def invoke(emulator, payload, kind="RequestResponse", name="fake-fn"):
    return requests.post(f"{emulator['base']}/2015-03-31/functions/{name}/invocations", data=json.dumps(payload),
                         headers={"X-Amz-Invocation-Type": kind}, timeout=30)


def status(emulator):
    return requests.get(f"{emulator['base']}/_status", timeout=5).json()


def wait_status(emulator, request_id, wanted, timeout=60.0):
    def reached():
        return next((inv for inv in status(emulator)["invocations"]
                     if inv["requestId"] == request_id and inv["status"] == wanted), None)

    return wait_until(reached, timeout, f"{request_id} to reach {wanted}", detail=lambda: status(emulator))


def test_sync_invoke_returns_result_with_lambda_headers(emulator):
    r = invoke(emulator, {"hello": "world"})
    assert r.status_code == 200
    assert r.headers["X-Amz-Executed-Version"] == "$LATEST"
    body = r.json()
    assert body["echo"] == {"hello": "world"}
    h = body["headers"]
    assert h["Lambda-Runtime-Aws-Request-Id"] == r.headers["X-Amzn-RequestId"]
    assert h["Lambda-Runtime-Invoked-Function-Arn"] == "arn:aws:lambda:us-east-1:000000000000:function:fake-fn"
    assert h["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert int(h["Lambda-Runtime-Deadline-Ms"]) > time.time() * 1000
    assert body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "fake-fn"
    assert body["env"]["_HANDLER"] == "bootstrap"
    assert body["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"


def test_sync_error_sets_function_error_header(emulator):
    r = invoke(emulator, {"action": "fail"})
    assert r.status_code == 200
    assert r.headers["X-Amz-Function-Error"] == "Unhandled"
    assert r.json() == {"errorMessage": "asked to fail", "errorType": "Fake.Failure"}


def test_event_invoke_is_queued_and_runs(emulator):
    r = invoke(emulator, {"n": 1}, kind="Event")
    assert r.status_code == 202
    inv = wait_status(emulator, r.headers["X-Amzn-RequestId"], "succeeded")
    assert inv["invocationType"] == "Event"
    assert inv["attempts"] == 1


def test_failing_event_is_retried_twice_then_dead_lettered(emulator):
    r = invoke(emulator, {"action": "fail", "tag": "dlq"}, kind="Event")
    rid = r.headers["X-Amzn-RequestId"]
    inv = wait_status(emulator, rid, "dead-lettered")
    assert inv["attempts"] == 3
    lines = [json.loads(l) for l in (emulator["state"] / "dlq.jsonl").read_text().splitlines()]
    mine = [l for l in lines if l["requestId"] == rid]
    assert len(mine) == 1 and mine[0]["payload"]["tag"] == "dlq" and mine[0]["attempts"] == 3


def test_crash_fails_invocation_and_restarts_bootstrap(emulator):
    before = status(emulator)["bootstrap"]["starts"]
    r = invoke(emulator, {"action": "crash"})
    assert r.headers["X-Amz-Function-Error"] == "Unhandled"
    assert r.json()["errorType"] == "Runtime.ExitError"
    # The next invocation is served by a fresh bootstrap.
    r = invoke(emulator, {"after": "crash"})
    assert r.status_code == 200 and r.json()["echo"] == {"after": "crash"}
    assert status(emulator)["bootstrap"]["starts"] == before + 1


def test_timeout_fails_and_recycles(emulator):
    r = invoke(emulator, {"action": "sleep", "seconds": 4})
    assert r.headers["X-Amz-Function-Error"] == "Unhandled"
    assert r.json()["errorType"] == "Sandbox.Timedout"
    assert invoke(emulator, {"x": 1}).json()["echo"] == {"x": 1}


def test_unknown_function_and_dry_run(emulator):
    r = invoke(emulator, {}, name="nope")
    assert r.status_code == 404
    assert r.headers["X-Amzn-ErrorType"] == "ResourceNotFoundException"
    r = invoke(emulator, {}, name="arn:aws:lambda:us-east-1:000000000000:function:fake-fn", kind="DryRun")
    assert r.status_code == 204


def test_unknown_request_id_is_refused(emulator):
    r = requests.post(f"{emulator['base']}/2018-06-01/runtime/invocation/not-a-real-id/response", data=b"{}",
                      timeout=5)
    assert r.status_code == 400
    assert r.json()["errorType"] == "InvalidRequestID"


def test_boto3_lambda_client_invokes(emulator):
    import boto3

    lam = boto3.client("lambda", endpoint_url=emulator["base"], region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="y")
    r = lam.invoke(FunctionName="fake-fn", Payload=json.dumps({"via": "boto3"}).encode())
    assert r["StatusCode"] == 200
    assert json.loads(r["Payload"].read())["echo"] == {"via": "boto3"}
    r = lam.invoke(FunctionName="fake-fn", InvocationType="Event", Payload=b"{}")
    assert r["StatusCode"] == 202
