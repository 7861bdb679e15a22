"""Shared fixtures for pixport's end-to-end tests.

Artifacts are built through cargo on demand (a no-op when fresh), so any
subset of tests runs on its own: `.venv/bin/pytest tests/resizer`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import ROOT, budget, cargo_build, photos_dir, ports_env

PHOTOS = photos_dir()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def photos() -> Path:
    return PHOTOS


@pytest.fixture(scope="session")
def resizer_wasm() -> Path:
    """The release `resizer.wasm`, exactly as the Lambda host ships it."""
    return cargo_build("resizer-wasi", target="wasm32-wasip1", bin="resizer")


# One JPEG (PNG) per width, as every suite before issue #16 expects, and
# ~2 s less wasm per 12 MP upload: the deployed default set
# (auto,webp,avif:640) has its own end-to-end test on a second Lambda
# (tests/lambda/test_e2e.py). Set on import, not in the fixture below, so
# the environment a test module captures at collection (stackctl.ENV, used
# by tests/stack's restart) has it too.
os.environ.setdefault("PIXPORT_VARIANT_FORMATS", "auto")
# The module's time cap (deployed: 30 s) and the function's timeout (60 s
# by default here), sized for a cold, loaded 2-core machine, where a 48 MP
# resize, or 12 MP to every default format, can outlast the deployed cap;
# the cap itself is tested with tight values of its own
# (tests/resizer/test_errors.py, lambda/tests/wasi.rs). The timeout leaves
# the redrive its reserve (the cap plus 5 s). On import, as above.
os.environ.setdefault("PIXPORT_TIMEOUT_MS", str(int(budget(150) * 1000)))
os.environ.setdefault("PIXPORT_LAMBDA_TIMEOUT", str(min(900, int(budget(240)))))


@pytest.fixture(scope="session", autouse=True)
def local_stack():
    """The whole local stack (S3, Data API over MariaDB, Lambda runtime with
    the real `bootstrap` and `resizer.wasm`), started once before any test so
    that every suite sees the same services; `PIXPORT_NO_STACK=1` skips it for
    runs that need none. A stack already up (`./run up`) is reused."""
    if os.environ.get("PIXPORT_NO_STACK") == "1":
        yield None
        return
    cargo_build("resizer-wasi", target="wasm32-wasip1", bin="resizer")
    if not os.environ.get("PIXPORT_BOOTSTRAP"):
        os.environ["PIXPORT_BOOTSTRAP"] = str(cargo_build("pixport-lambda", bin="bootstrap", profile="local"))
    # The shared stack retries failed async invokes after 1 and 2 s, and fires
    # no redrive schedule: tests plant `pending` rows it would otherwise take.
    # The fault tests (tests/faults) run their own stack with both, in seconds.
    os.environ.setdefault("PIXPORT_LAMBDA_RETRY_DELAYS_MS", "1000,2000")
    os.environ.setdefault("PIXPORT_LAMBDA_SCHEDULE_MS", "0")
    # Below the resizer's own default (20000), so a test can tell that the
    # Lambda hands its configured limits to the resizer (tests/edge/test_direct.py).
    os.environ.setdefault("PIXPORT_MAX_IMAGE_DIMENSION", "16000")
    from stack.stackctl import ensure_stack, stop_if_started

    yield ensure_stack()
    stop_if_started()


@pytest.fixture(scope="session")
def stack(local_stack):
    """Endpoints and credentials of the local stack, as in local/ports.env."""
    if local_stack is None:
        pytest.skip("PIXPORT_NO_STACK=1")
    return ports_env()


@pytest.fixture(scope="session")
def s3(stack):
    """The bucket as the local `admin` identity (allowed everything): for
    setting up and inspecting state, never for acting as the worker."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=f"http://{stack['PIXPORT_S3_ADDR']}",
        region_name=stack["PIXPORT_REGION"],
        aws_access_key_id=stack["PIXPORT_ADMIN_ACCESS_KEY_ID"],
        aws_secret_access_key=stack["PIXPORT_ADMIN_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


class Sql:
    """Runs SQL through boto3's `rds-data` client against the local Data API,
    as the local `admin` identity."""

    def __init__(self, env: dict[str, str]):
        import boto3

        self.env = env
        self.client = boto3.client(
            "rds-data",
            endpoint_url=f"http://{env['PIXPORT_DATAAPI_ADDR']}",
            region_name=env["PIXPORT_REGION"],
            aws_access_key_id=env["PIXPORT_ADMIN_ACCESS_KEY_ID"],
            aws_secret_access_key=env["PIXPORT_ADMIN_SECRET_ACCESS_KEY"],
        )

    def rows(self, sql: str, **params) -> list[dict]:
        import json

        def value(v):
            if v is None:
                return {"isNull": True}
            if isinstance(v, bool):
                return {"booleanValue": v}
            if isinstance(v, int):
                return {"longValue": v}
            return {"stringValue": str(v)}

        out = self.client.execute_statement(
            resourceArn=self.env["PIXPORT_DB_CLUSTER_ARN"],
            secretArn=self.env["PIXPORT_DB_SECRET_ARN"],
            database=self.env["PIXPORT_DB_NAME"],
            sql=sql,
            parameters=[{"name": k, "value": value(v)} for k, v in params.items()],
            formatRecordsAs="JSON",
        )
        return json.loads(out.get("formattedRecords") or "[]")


@pytest.fixture(scope="session")
def sql(stack) -> Sql:
    return Sql(stack)
