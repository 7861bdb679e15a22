"""Start the edge worker under `wrangler dev` (workerd), as users run it."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import requests

from support import ROOT, free_port, ports_env, state_dir


class Worker:
    """A `wrangler dev` process serving the freshly built worker on loopback."""

    def __init__(self, extra_vars: dict[str, str] | None = None, extra_args: list[str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir() / f"wrangler-{self.port}.log"
        # The stack this checkout runs (local/ports.env, or PIXPORT_* set by a
        # second checkout on other ports), not wrangler.toml's defaults.
        env = ports_env()
        self.extra_vars = {
            "S3_ENDPOINT": f"http://{env['PIXPORT_S3_ADDR']}",
            "DATA_API_ENDPOINT": f"http://{env['PIXPORT_DATAAPI_ADDR']}",
            **(extra_vars or {}),
        }
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0) -> "Worker":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["bash", "-c", '. scripts/env.sh && exec wrangler dev "$@"', "wrangler",
               "--ip", "127.0.0.1", "--port", str(self.port), "--inspector-port", str(free_port()),
               "--show-interactive-dev-session=false"]
        cmd += self.extra_args
        for k, v in self.extra_vars.items():
            cmd += ["--var", f"{k}:{v}"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wrangler dev exited early:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"wrangler dev not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
