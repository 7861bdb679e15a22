"""The one command: `local/stack start` prints endpoints and credentials, is
ready quickly, and keeps data across restarts."""

from __future__ import annotations

import subprocess
import time

from stack.stackctl import ENV, ROOT
from support import budget, ports_env


def test_status_reports_ready(stack):
    r = subprocess.run([str(ROOT / "local" / "stack"), "status"], env=ENV, capture_output=True, text=True)
    assert "s3" in r.stdout and "runtime" in r.stdout
    assert "down" not in r.stdout.split("mariadb")[0], r.stdout


def test_banner_lists_endpoints_and_credentials(stack):
    # `start` on a running stack is a no-op that prints the same banner.
    r = subprocess.run([str(ROOT / "local" / "stack"), "start"], env=ENV, capture_output=True, text=True, check=True)
    out = r.stdout
    assert f"http://{ENV['PIXPORT_S3_ADDR']}" in out
    assert f"http://{ENV['PIXPORT_RUNTIME_API_ADDR']}" in out
    assert ENV["PIXPORT_ACCESS_KEY_ID"] in out and ENV["PIXPORT_SECRET_ACCESS_KEY"] in out


def test_data_survives_restart(stack, s3, uid):
    if not stack.started_here:
        import pytest

        pytest.skip("stack was started outside the tests; not restarting it")
    key = f"scratch/{uid}/persist.txt"
    s3.put_object(Bucket=stack.bucket, Key=key, Body=b"kept")
    # The stack comes back as the session started it: with the environment
    # of now (tests/conftest.py sets the Lambda's limits and retry delays
    # when the session's stack starts, after this module was imported), so
    # the suites that run after this one see the same stack.
    env = ports_env()
    subprocess.run([str(ROOT / "local" / "stack"), "stop"], env=env, check=True, capture_output=True)
    t = time.monotonic()
    r = subprocess.run([str(ROOT / "local" / "stack"), "start"], env=dict(env, PIXPORT_STACK_NO_BUILD="1"),
                       capture_output=True, text=True, check=True)
    elapsed = time.monotonic() - t
    assert "ready in" in r.stdout
    # Quick, with nothing to build: seconds, but MariaDB's own start on a
    # cold, loaded 2-core machine takes several of them.
    assert elapsed < budget(30), f"start-to-ready took {elapsed:.2f} s"
    assert s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read() == b"kept"
