"""Start and reach the local Data API (MariaDB + pixport-local-dataapi).

Importable by any test or script: `from dataapi.dbctl import ensure_dataapi,
client, arns`. `ensure_dataapi()` reuses a server already listening on
PIXPORT_DATAAPI_ADDR (e.g. one started by `local/stack`) and otherwise starts
one, returning a handle whose `stop()` ends only what was started here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from support import ROOT, budget, cargo_build, free_addr, ports_env, resolve_iam, state_dir

__all__ = ["free_addr", "ports_env"]
PACKAGE = "pixport-local-dataapi"


def _split(addr: str) -> tuple[str, int]:
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def is_listening(addr: str) -> bool:
    try:
        with socket.create_connection(_split(addr), timeout=0.2):
            return True
    except OSError:
        return False


def build() -> Path:
    """The server binary, built through cargo (a no-op when fresh)."""
    return cargo_build(PACKAGE, profile="local")


def ensure_mariadb() -> float:
    """`local/mariadb start` (idempotent); returns the seconds it took."""
    t0 = time.monotonic()
    subprocess.run([str(ROOT / "local" / "mariadb"), "start"], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


@dataclass
class Server:
    addr: str
    proc: subprocess.Popen | None = None
    ready_seconds: float = 0.0
    log: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://{self.addr}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_dataapi(addr: str | None = None, extra_env: dict[str, str] | None = None,
                  binary: Path | None = None, timeout: float = 60.0) -> Server:
    """Starts a new server process (MariaDB must be up) and waits for its
    port (`timeout`: the nominal budget for a cold, loaded machine, scaled
    by PIXPORT_TEST_TIME_SCALE)."""
    env = ports_env()
    addr = addr or env["PIXPORT_DATAAPI_ADDR"]
    env["PIXPORT_DATAAPI_ADDR"] = addr
    env.update(extra_env or {})
    resolve_iam(env)
    binary = binary or build()
    state = state_dir() / "dataapi"
    state.mkdir(parents=True, exist_ok=True)
    log = state / f"server-{_split(addr)[1]}.log"
    t0 = time.monotonic()
    proc = subprocess.Popen([str(binary)], env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"), start_new_session=True)
    while not is_listening(addr):
        if proc.poll() is not None:
            raise RuntimeError(f"{PACKAGE} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if time.monotonic() - t0 > budget(timeout):
            proc.kill()
            raise RuntimeError(f"{PACKAGE} not listening on {addr} after {budget(timeout)}s")
        time.sleep(0.02)
    return Server(addr=addr, proc=proc, ready_seconds=time.monotonic() - t0, log=log, env=env)


def ensure_dataapi() -> Server:
    """The Data API on PIXPORT_DATAAPI_ADDR, started (with MariaDB) if absent."""
    env = ports_env()
    addr = env["PIXPORT_DATAAPI_ADDR"]
    if is_listening(addr):
        return Server(addr=addr, env=env)
    binary = build()
    db_seconds = ensure_mariadb()
    server = start_dataapi(addr, binary=binary)
    server.ready_seconds += db_seconds
    return server


def client(endpoint: str | None = None, *, access_key: str | None = None, secret_key: str | None = None,
           identity: str = "PIXPORT_ADMIN"):
    """boto3's unmodified `rds-data` client pointed at the local server, as
    the local identity whose key pair is `<identity>_ACCESS_KEY_ID` in
    local/ports.env (default: admin; `PIXPORT` is the worker's EdgeUser,
    `PIXPORT_LAMBDA` the Lambda's role)."""
    import boto3
    from botocore.config import Config

    env = ports_env()
    return boto3.client(
        "rds-data",
        endpoint_url=endpoint or f"http://{env['PIXPORT_DATAAPI_ADDR']}",
        region_name=env["PIXPORT_REGION"],
        aws_access_key_id=access_key or env[f"{identity}_ACCESS_KEY_ID"],
        aws_secret_access_key=secret_key or env[f"{identity}_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}),
    )


def arns() -> dict[str, str]:
    """The ARN arguments every call needs."""
    env = ports_env()
    return {
        "resourceArn": env["PIXPORT_DB_CLUSTER_ARN"],
        "secretArn": env["PIXPORT_DB_SECRET_ARN"],
        "database": env.get("PIXPORT_DB_NAME", "pixport"),
    }
