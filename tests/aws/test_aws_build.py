"""pixport-aws builds for wasm32 (the edge worker) and native (Lambda) from one source."""

from __future__ import annotations

import re
import subprocess

import pytest

from .conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("target", [None, "wasm32-unknown-unknown"])
def test_crate_builds(target):
    cmd = ["cargo", "build", "--quiet", "-p", "pixport-aws"]
    if target:
        cmd += ["--target", target]
    subprocess.run(cmd, cwd=ROOT, check=True)


def test_wasm_dependency_tree_has_no_runtime_or_sdk_config():
    """No aws-config, HTTP client or async runtime in the worker build.

    tokio itself cannot be avoided: aws-sigv4 -> aws-credential-types ->
    aws-smithy-async depends on it, but only with its `sync` feature (channel
    and lock types, no runtime, clock or I/O), which is what this pins.
    """
    tree = subprocess.run(
        ["cargo", "tree", "-p", "pixport-aws", "--target", "wasm32-unknown-unknown", "-e", "normal",
         "--prefix", "none", "-f", "{p} [{f}]"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    crates = {}
    for line in tree.splitlines():
        if line.strip():
            name, features = line.split()[0], line[line.index("[") + 1:line.index("]")]
            crates[name] = set(filter(None, features.split(",")))
    assert "aws-sigv4" in crates
    assert not crates.keys() & {"aws-config", "hyper", "reqwest", "mio", "socket2"}
    assert crates.get("tokio", set()) <= {"default", "sync"}


def test_crate_never_reads_the_clock():
    """`SystemTime::now` panics on wasm32-unknown-unknown; signing time is a parameter."""
    for path in (ROOT / "aws" / "src").rglob("*.rs"):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("//"))
        assert not re.search(r"SystemTime::now|Instant::now", code), path
