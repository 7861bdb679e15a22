"""The one place the tests learn where things are on this machine."""

from __future__ import annotations

import importlib.util
import os
import random
import socket
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@cache
def _stack_module():
    """local/stack.py, the stack's own launcher: its `load_env` is the one
    reader of local/ports.env (standard library only, so it also runs before
    any venv exists)."""
    spec = importlib.util.spec_from_file_location("pixport_local_stack", ROOT / "local" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ports_env() -> dict[str, str]:
    """local/ports.env under this process's environment (a PIXPORT_* already
    set wins), exactly as `local/stack` sees it."""
    return _stack_module().load_env()


def resolve_iam(env: dict[str, str]) -> Path:
    """Writes env's PIXPORT_IAM_POLICIES from deploy/template.yaml (what
    `local/stack start` does), for tests that start a stand-in themselves."""
    import sys

    subprocess.run([sys.executable, str(ROOT / "local" / "iam.py")], env={**os.environ, **env}, check=True)
    return Path(env["PIXPORT_IAM_POLICIES"])


def state_dir() -> Path:
    """PIXPORT_STATE: where the local stack and the tests keep their state."""
    return Path(ports_env()["PIXPORT_STATE"])


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        lo, hi = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port nothing listens on now, for a server a test starts
    (and may kill and start again on the same port). It is picked below the
    kernel's ephemeral range: a port the kernel hands out (`bind(0)`) is
    also what every outgoing connection on the machine draws its local port
    from, so one could take it between this call and the server's bind, or
    while the server is down. Other processes that pick ports the same way
    could still collide: servers started through workerctl retry on another
    port when their bind fails."""
    lo, _ = _ephemeral_range()
    floor = 10_000 if lo > 12_000 else 1024
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.randrange(floor, lo)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> socket.socket:
    """A loopback socket bound to a port and never listening: a connection
    to `sock.getsockname()[1]` is refused (an upstream that is down), and no
    other process can take the port while the socket stays open. Close it
    when done, or `listen()` on it to bring the "upstream" up on the same
    port without a window for anyone else."""
    s = socket.socket()
    s.bind(("127.0.0.1", free_port()))
    return s


def free_addr() -> str:
    return f"127.0.0.1:{free_port()}"


def target_dir() -> Path:
    """The shared cargo target folder (scripts/env.sh exports it)."""
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def cargo_build(package: str, *, target: str | None = None, profile: str = "release", bin: str | None = None,
                example: str | None = None, features: list[str] | None = None) -> Path:
    """Build one package (a no-op when fresh) and return its artifact's path.
    `profile` "local" (Cargo.toml) is release without LTO, for what runs here
    but never ships."""
    cmd = ["cargo", "build", "--quiet", "-p", package, "--profile", profile]
    if target:
        cmd += ["--target", target]
    if bin:
        cmd += ["--bin", bin]
    if example:
        cmd += ["--example", example]
    if features:
        cmd += ["--features", ",".join(features)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    out = target_dir()
    if target:
        out = out / target
    out = out / ("debug" if profile == "dev" else profile)
    if example:
        return out / "examples" / example
    name = bin or package
    if target and target.startswith("wasm32"):
        return out / f"{name}.wasm"
    return out / name


def photos_dir() -> Path:
    """The seeded test photos (tests/photos/generate.py), made on first use
    when setup has not made them yet."""
    from photos.generate import ensure

    return ensure()
