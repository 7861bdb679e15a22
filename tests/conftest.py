"""Shared fixtures for pixport's end-to-end tests.

Artifacts are built through cargo on demand (a no-op when fresh), so any
subset of tests runs on its own: `.venv/bin/pytest tests/resizer`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = Path(os.environ.get("PIXPORT_PHOTOS", ROOT.parent / "shared" / "fixtures" / "photos"))


def target_dir() -> Path:
    """The shared cargo target folder (scripts/env.sh exports it)."""
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def cargo_build(package: str, *, target: str | None = None, release: bool = True, bin: str | None = None,
                features: list[str] | None = None) -> Path:
    """Build one package and return the path of its binary artifact."""
    cmd = ["cargo", "build", "--quiet", "-p", package]
    if release:
        cmd.append("--release")
    if target:
        cmd += ["--target", target]
    if bin:
        cmd += ["--bin", bin]
    if features:
        cmd += ["--features", ",".join(features)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    out = target_dir()
    if target:
        out = out / target
    out = out / ("release" if release else "debug")
    name = bin or package
    if target and target.startswith("wasm32"):
        return out / f"{name}.wasm"
    return out / name


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def photos() -> Path:
    assert PHOTOS.is_dir(), f"shared photos missing at {PHOTOS}"
    return PHOTOS


@pytest.fixture(scope="session")
def resizer_wasm() -> Path:
    """The release `resizer.wasm`, exactly as the Lambda host ships it."""
    return cargo_build("resizer-wasi", target="wasm32-wasip1", bin="resizer")
