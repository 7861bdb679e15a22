"""Start the edge worker under `wrangler dev` (workerd), as users run it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import requests

from support import ROOT, budget, free_port, ports_env, state_dir, wait_until

# wrangler dev says where it serves once it does (on another port than the
# one asked for if that one was taken meanwhile).
READY = re.compile(r"Ready on (http://127\.0\.0\.1:(\d+))")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def stack_vars() -> dict[str, str]:
    """The worker's upstreams at the local stack's addresses, which the
    environment may move off wrangler.toml's defaults (a second checkout runs
    its own stack; see scripts/env.sh)."""
    env = ports_env()
    return {"S3_ENDPOINT": f"http://{env['PIXPORT_S3_ADDR']}",
            "DATA_API_ENDPOINT": f"http://{env['PIXPORT_DATAAPI_ADDR']}"}


class Worker:
    """A `wrangler dev` process serving the freshly built worker on loopback.

    `release=True` (default: `PIXPORT_EDGE_RELEASE=1` in the environment)
    serves the optimised build `wrangler deploy` ships, built into
    edge/build-release so the dev build beside it stays as it is."""

    def __init__(self, extra_vars: dict[str, str] | None = None, extra_args: list[str] | None = None,
                 release: bool | None = None, ratelimits: dict[str, int] | None = None, port: int | None = None):
        self.release = os.environ.get("PIXPORT_EDGE_RELEASE") == "1" if release is None else release
        # A fixed port only where something else calls the worker there (the
        # local Lambda's wake-up call goes to PIXPORT_WORKER_ADDR).
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir() / f"wrangler-{self.port}.log"
        # DevTools protocol (CPU profiles: bench/edge/run profile).
        self.inspector_port = free_port()
        self.extra_vars = {**stack_vars(), **(extra_vars or {})}
        self.extra_args = extra_args or []
        # Rate-limit rules are bindings, not vars: a worker that needs a
        # smaller limit than wrangler.toml's (so a test can reach it on a slow
        # machine) runs from a copy of wrangler.toml beside it, with only that
        # rule's `limit` changed.
        self.config: Path | None = None
        if ratelimits:
            text = (ROOT / "wrangler.toml").read_text()
            for name, limit in ratelimits.items():
                # The top-level rule (the first): [env.production] repeats it.
                text, n = re.subn(rf'(name = "{name}"\nnamespace_id = "\d+"\nsimple = {{ limit = )\d+',
                                  rf"\g<1>{limit}", text, count=1)
                assert n == 1, f"no [[ratelimits]] rule {name} in wrangler.toml"
            self.config = ROOT / f".wrangler-test-{self.port}.toml"
            self.config.write_text(text)
            self.extra_args = [*self.extra_args, "--config", str(self.config)]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float | None = None) -> "Worker":
        """Starts `wrangler dev` and waits until the worker answers
        `/healthz` at the address wrangler reports. The first start of a
        session runs wrangler's build (cargo, worker-build, wasm-bindgen),
        from nothing on a fresh clone, while other builds may hold cargo's
        lock: the budget is for that, on a cold, loaded 2-core machine."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["bash", "-c", '. scripts/env.sh && exec wrangler dev "$@"', "wrangler",
               "--ip", "127.0.0.1", "--port", str(self.port), "--inspector-port", str(self.inspector_port),
               "--show-interactive-dev-session=false"]
        env = {**os.environ, "PIXPORT_EDGE_RELEASE": "0"}
        if self.release:
            env.update(PIXPORT_EDGE_RELEASE="1", PIXPORT_EDGE_OUT="build-release")
            cmd.append("edge/build-release/index.js")
        # A release build (LTO, wasm-opt) takes many minutes on a busy 2-core
        # machine; the dev build from nothing, several.
        timeout = timeout or (2400.0 if self.release else 1200.0)
        cmd += self.extra_args
        for k, v in self.extra_vars.items():
            cmd += ["--var", f"{k}:{v}"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(self.log_path, "wb"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wrangler dev exited early:\n{self.log()}")
            found = READY.search(ANSI.sub("", self.log_path.read_text(errors="replace")))
            if not found:
                return False
            self.url, self.port = found.group(1), int(found.group(2))
            try:
                return requests.get(self.url + "/healthz", timeout=budget(10)).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(ready, timeout, f"wrangler dev to serve /healthz (log {self.log_path})", interval=0.5,
                       detail=lambda: self.log()[-1500:])
        except BaseException:
            self.stop()
            raise
        return self

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
        if self.config:
            self.config.unlink(missing_ok=True)
