"""The local stack for tests: `from stack.stackctl import ensure_stack`.

`ensure_stack()` reuses a stack whose services already answer on the
local/ports.env addresses (e.g. one started by `./run up`), and otherwise runs
`local/stack start` once per process and stops it at interpreter exit. It
returns the endpoints and credentials; helpers read the Lambda emulator's
`/_status` to see which events reached the function.

The stand-ins enforce deploy/template.yaml's IAM policies (local/iam.py).
`access_key_id`/`secret_access_key` and the clients' default are the local
`admin` identity (allowed everything), for tests that set up or inspect
state; `s3_client("worker")` / `s3_client("lambda")` act as the worker's
EdgeUser or the Lambda's role, with exactly the template's permissions.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from support import ROOT, WaitTimeout, ports_env, wait_until


ENV = ports_env()
# Local identity -> its key pair's prefix in local/ports.env (local/iam.py).
IDENTITIES = {"admin": "PIXPORT_ADMIN", "worker": "PIXPORT", "lambda": "PIXPORT_LAMBDA"}
# Each identity's database secret (local/ports.env): the master user's for
# admin, the worker's and the Lambda's own users for them.
DB_SECRETS = {"admin": "PIXPORT_DB_SECRET_ARN", "worker": "PIXPORT_DB_EDGE_SECRET_ARN",
              "lambda": "PIXPORT_DB_RESIZER_SECRET_ARN"}


@dataclass(frozen=True)
class Stack:
    s3_url: str
    dataapi_url: str
    runtime_url: str
    runtime_api: str  # host:port, the value of AWS_LAMBDA_RUNTIME_API
    region: str
    access_key_id: str
    secret_access_key: str
    bucket: str
    function_name: str
    db_cluster_arn: str
    db_secret_arn: str
    db_name: str
    state_dir: Path
    bin_dir: Path
    started_here: bool
    # "admin", "worker" (EdgeUser), "lambda" (ResizeFunctionRole) -> (key id, secret).
    identities: dict[str, tuple[str, str]]
    db_secrets: dict[str, str]

    def key(self, identity: str) -> tuple[str, str]:
        return self.identities[identity]

    def s3_client(self, identity: str = "admin", **overrides):
        import boto3
        from botocore.config import Config

        key_id, secret = self.key(identity)
        kw = dict(endpoint_url=self.s3_url, region_name=self.region, aws_access_key_id=key_id,
                  aws_secret_access_key=secret,
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                retries={"max_attempts": 1}))
        kw.update(overrides)
        return boto3.client("s3", **kw)

    def rds_client(self, identity: str = "admin", **overrides):
        import boto3
        from botocore.config import Config

        key_id, secret = self.key(identity)
        kw = dict(endpoint_url=self.dataapi_url, region_name=self.region, aws_access_key_id=key_id,
                  aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))
        kw.update(overrides)
        return boto3.client("rds-data", **kw)

    def counters(self, service: str = "s3") -> dict[str, dict[str, int]]:
        """The stand-in's requests so far, `{principal: {operation: count}}`
        (monotonic; compare two readings)."""
        url = self.s3_url if service == "s3" else self.dataapi_url
        with urllib.request.urlopen(f"{url}/__pixport/counters", timeout=5) as r:
            return json.load(r)

    def aws_env(self, identity: str = "admin") -> dict[str, str]:
        """Environment for awscli or any SDK pointed at the local stack."""
        key_id, secret = self.key(identity)
        env = dict(os.environ)
        env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION=self.region, AWS_REGION=self.region, AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        env.pop("AWS_PROFILE", None)
        return env

    def runtime_status(self) -> dict:
        with urllib.request.urlopen(f"{self.runtime_url}/_status", timeout=5) as r:
            return json.load(r)

    def invocations_for(self, predicate) -> list[dict]:
        return [i for i in self.runtime_status()["invocations"] if predicate(i.get("payload"))]

    def wait_for_invocations(self, predicate, count: int = 1, timeout: float = 60.0) -> list[dict]:
        """Invocations whose payload satisfies `predicate`, once at least
        `count` arrived, or those there are after `timeout` (a nominal budget,
        scaled by PIXPORT_TEST_TIME_SCALE; callers assert the count)."""
        def enough():
            found = self.invocations_for(predicate)
            return found if len(found) >= count else None

        try:
            return wait_until(enough, timeout, f"{count} matching invocation(s)")
        except WaitTimeout:
            return self.invocations_for(predicate)


def _ready(addr: str, path: str | None = None) -> bool:
    host, port = addr.rsplit(":", 1)
    if path:
        try:
            with urllib.request.urlopen(f"http://{addr}{path}", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False
    try:
        with socket.create_connection((host, int(port)), timeout=0.3):
            return True
    except OSError:
        return False


_STACK: Stack | None = None


def _stop() -> None:
    subprocess.run([str(ROOT / "local" / "stack"), "stop"], cwd=ROOT, env=ENV, check=False)


def ensure_stack() -> Stack:
    global _STACK
    if _STACK is not None:
        return _STACK
    up = (_ready(ENV["PIXPORT_S3_ADDR"]) and _ready(ENV["PIXPORT_RUNTIME_API_ADDR"], "/_status"))
    started = False
    if not up:
        # The environment as it is now, not as it was when this module was
        # first imported (collection): the session fixture sets the Lambda's
        # settings (retry delays, limits) just before it starts the stack.
        subprocess.run([str(ROOT / "local" / "stack"), "start"], cwd=ROOT, env=ports_env(), check=True)
        started = True
        atexit.register(_stop)
    target = Path(ENV.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "pixport" / "target"))
    _STACK = Stack(
        s3_url=f"http://{ENV['PIXPORT_S3_ADDR']}",
        dataapi_url=f"http://{ENV['PIXPORT_DATAAPI_ADDR']}",
        runtime_url=f"http://{ENV['PIXPORT_RUNTIME_API_ADDR']}",
        runtime_api=ENV["PIXPORT_RUNTIME_API_ADDR"],
        region=ENV["PIXPORT_REGION"],
        access_key_id=ENV["PIXPORT_ADMIN_ACCESS_KEY_ID"],
        secret_access_key=ENV["PIXPORT_ADMIN_SECRET_ACCESS_KEY"],
        bucket=ENV["PIXPORT_BUCKET"],
        function_name=ENV["PIXPORT_FUNCTION_NAME"],
        db_cluster_arn=ENV["PIXPORT_DB_CLUSTER_ARN"],
        db_secret_arn=ENV["PIXPORT_DB_SECRET_ARN"],
        db_name=ENV["PIXPORT_DB_NAME"],
        state_dir=Path(ENV["PIXPORT_STATE"]),
        bin_dir=target / ENV.get("PIXPORT_LOCAL_PROFILE", "local"),
        started_here=started,
        identities={name: (ENV[f"{prefix}_ACCESS_KEY_ID"], ENV[f"{prefix}_SECRET_ACCESS_KEY"])
                    for name, prefix in IDENTITIES.items()},
        db_secrets={name: ENV[var] for name, var in DB_SECRETS.items()},
    )
    return _STACK


def stop_if_started() -> None:
    """Stops the stack now if this process started it (atexit does it otherwise)."""
    global _STACK
    if _STACK is not None and _STACK.started_here:
        atexit.unregister(_stop)
        _stop()
    _STACK = None
