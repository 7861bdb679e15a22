"""A second local stack that fault tests may break: its own S3, Data API and
Lambda emulator (real `bootstrap`, real `resizer.wasm`) on free ports, its
own S3 root and its own database (`pixport_faults`) in the shared MariaDB,
with the retry schedule in seconds instead of minutes. Killing its S3 or Data
API (SIGKILL) and starting them again on the same port and data is what a
test's outage is; the shared stack other tests use is never touched.

With `own_mariadb=True` it also runs a MariaDB server of its own (data
under `state/mariadb`, a free port), so that one can be SIGKILLed too
(`kill("mariadb")`); the shared server is never killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from stack.stackctl import ENV, Stack
from support import ROOT, budget, free_addr, resolve_iam, wait_until

DB_NAME = "pixport_faults"

# Lambda's async schedule and the redrive, in seconds: what takes minutes
# and hours in AWS takes seconds here, through the same code paths.
FAST = {
    "PIXPORT_LAMBDA_RETRY_DELAYS_MS": "1000,2000",
    "PIXPORT_LAMBDA_SCHEDULE_MS": "1000",
    "PIXPORT_RETRY_BASE_MS": "500",
    "PIXPORT_RETRY_MAX_MS": "2000",
    "PIXPORT_ATTEMPT_LEASE_MS": "10000",
    "PIXPORT_REDRIVE_IDLE_MS": "2000",
    "PIXPORT_MAX_ATTEMPTS": "30",
    # The module's time cap and the function's timeout, for a cold, loaded
    # 2-core machine: a 48 MP resize there can take longer than the
    # deployed 30 s cap, and these tests are about outages, not the cap
    # (tests/resizer/test_errors.py and lambda/tests/wasi.rs test that).
    # The timeout leaves the redrive its reserve (the cap plus 5 s).
    "PIXPORT_TIMEOUT_MS": str(int(budget(150) * 1000)),
    "PIXPORT_LAMBDA_TIMEOUT": str(min(900, int(budget(240)))),
    # One JPEG (PNG) per width, like the shared stack (tests/conftest.py):
    # these tests are about outages, not formats, and the default set costs
    # ~2 s of wasm per photo.
    "PIXPORT_VARIANT_FORMATS": "auto",
}


def listening(addr: str) -> bool:
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.2):
            return True
    except OSError:
        return False


class FaultStack:
    def __init__(self, shared: Stack, state: Path, bootstrap: Path, module: Path, db_name: str = DB_NAME,
                 own_mariadb: bool = False):
        self.shared = shared
        self.db_name = db_name
        self.state = state
        self.own_mariadb = own_mariadb
        self.addr = {name: free_addr() for name in ("s3", "dataapi", "runtime")}
        env = {k: v for k, v in ENV.items() if k not in ("PIXPORT_S3_ENDPOINT", "PIXPORT_DATAAPI_ENDPOINT")}
        env.update(FAST)
        env.update(
            PIXPORT_S3_ADDR=self.addr["s3"], PIXPORT_DATAAPI_ADDR=self.addr["dataapi"],
            PIXPORT_RUNTIME_API_ADDR=self.addr["runtime"], PIXPORT_DB_NAME=db_name,
            PIXPORT_S3_ROOT=str(state / "s3"), PIXPORT_LAMBDA_STATE=str(state / "lambda"),
            PIXPORT_S3_NOTIFICATIONS=str(ROOT / "local" / "s3" / "notifications.json"),
            PIXPORT_MODULE=str(module),
            PIXPORT_IAM_POLICIES=str(state / "iam.json"),
        )
        if own_mariadb:
            self.addr["mariadb"] = free_addr()
            env.update(PIXPORT_STATE=str(state), PIXPORT_MARIADB_PORT=self.addr["mariadb"].rsplit(":", 1)[1])
        self.env = env
        resolve_iam(env)
        self.cmds = {
            "s3": [str(shared.bin_dir / "pixport-local-s3")],
            "dataapi": [str(shared.bin_dir / "pixport-local-dataapi")],
            "runtime": [str(shared.bin_dir / "pixport-local-runtime"), "--bootstrap", str(bootstrap)],
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.bucket = shared.bucket
        self.runtime_url = f"http://{self.addr['runtime']}"

    def create_database(self) -> None:
        """`local/mariadb start`: on the running shared server, or this
        stack's own (initialised and started here); creates the database and
        grants the app user (idempotent); `migrate` applies the schema."""
        self.mariadb("start")

    def mariadb(self, action: str) -> None:
        subprocess.run([str(ROOT / "local" / "mariadb"), action], env=self.env, check=True,
                       capture_output=True, timeout=budget(300))

    def mariadb_pid(self) -> int:
        return int((self.state / "mariadb" / "mysqld.pid").read_text().strip())

    def start(self, name: str) -> None:
        if name == "mariadb":
            assert self.own_mariadb, "the shared MariaDB is never restarted here"
            return self.mariadb("start")
        (self.state / "logs").mkdir(parents=True, exist_ok=True)
        log = open(self.state / "logs" / f"{name}.log", "ab")
        env = self.env
        if name == "s3":
            # Its request log is what `s3_answered` reads: on, whatever
            # RUST_LOG the caller has.
            env = {**env, "RUST_LOG": "info,s3s=warn,s3s_fs=warn"}
        self.procs[name] = subprocess.Popen(self.cmds[name], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)
        log.close()

        def up() -> bool:
            assert self.procs[name].poll() is None, f"{name} exited: {self.log(name)[-2000:]}"
            return listening(self.addr[name])

        wait_until(up, 60, f"{name} to listen on {self.addr[name]}", interval=0.02)

    def log(self, name: str, since: int = 0) -> str:
        """What a service of this stack logged (every start appends), from
        byte `since` on (a `log_size` taken earlier)."""
        path = self.state / "logs" / f"{name}.log"
        if not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def log_size(self, name: str) -> int:
        path = self.state / "logs" / f"{name}.log"
        return path.stat().st_size if path.exists() else 0

    def s3_answered(self, method: str, key: str, since: int = 0) -> bool:
        """This stack's S3 answered `method` on `key` with a 2xx after byte
        `since` of its request log, whoever asked: how a test sees the
        bootstrap reach a step that leaves no other trace."""
        return f"method={method} path=/{self.bucket}/{key} status=2" in self.log("s3", since)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no flush, connections cut mid-request."""
        if name == "mariadb":
            assert self.own_mariadb, "the shared MariaDB is never killed"
            pid = self.mariadb_pid()
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not Path(f"/proc/{pid}").exists(), 30, f"MariaDB (pid {pid}) to die", interval=0.02)
            return
        p = self.procs.pop(name)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(budget(30))

    def migrate(self) -> None:
        """migrations/ through this stack's Data API, as `./run migrate` does."""
        subprocess.run([sys.executable, str(ROOT / "scripts" / "migrate.py")], env=self.env, check=True,
                       capture_output=True, timeout=budget(300))

    def start_all(self) -> None:
        self.create_database()
        for name in ("dataapi", "s3", "runtime"):
            self.start(name)
        self.migrate()

    def stop_all(self) -> None:
        for name in list(self.procs):
            p = self.procs.pop(name)
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if self.own_mariadb:
            self.mariadb("stop")

    # Clients -----------------------------------------------------------

    def s3(self):
        return self.shared.s3_client(endpoint_url=f"http://{self.addr['s3']}")

    def rds(self):
        import boto3
        from botocore.config import Config

        return boto3.client("rds-data", endpoint_url=f"http://{self.addr['dataapi']}", region_name=self.shared.region,
                            aws_access_key_id=self.shared.access_key_id,
                            aws_secret_access_key=self.shared.secret_access_key,
                            config=Config(retries={"max_attempts": 1}))

    def sql(self, sql: str, **params) -> list[dict]:
        ps = [{"name": k, "value": {"isNull": True} if v is None else {"stringValue": str(v)}} for k, v in params.items()]
        out = self.rds().execute_statement(sql=sql, parameters=ps, formatRecordsAs="JSON",
                                           resourceArn=self.shared.db_cluster_arn,
                                           secretArn=self.shared.db_secret_arn, database=self.db_name)
        return json.loads(out.get("formattedRecords") or "[]")

    def runtime_status(self) -> dict:
        with urllib.request.urlopen(f"{self.runtime_url}/_status", timeout=5) as r:
            return json.load(r)

    def invoke_async(self, payload: dict) -> None:
        req = urllib.request.Request(
            f"{self.runtime_url}/2015-03-31/functions/{self.shared.function_name}/invocations",
            data=json.dumps(payload).encode(), method="POST", headers={"X-Amz-Invocation-Type": "Event"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 202
