"""The one place the tests learn where things are on this machine."""

from __future__ import annotations

import importlib.util
import os
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
