"""local/ports.env has one reader per language: scripts/env.sh (shell),
local/stack.py (Python, which the tests use) and local/env (Rust, unit-tested
there). The shell's and Python's agree on every value of the committed file
and on who wins: a variable set to a non-empty value in the environment."""

from __future__ import annotations

import os
import subprocess

import pytest

from support import ROOT
from support.local import _stack_module

PRINT = '. scripts/env.sh; for k in "$@"; do printf "%s=%s\\n" "$k" "${!k}"; done'


def test_shell_and_python_read_the_same_values(monkeypatch):
    stack = _stack_module()
    file = stack.read_ports_env()
    assert file["PIXPORT_S3_ADDR"] and file["PIXPORT_REGION"], file
    env = {k: v for k, v in os.environ.items() if k not in file}
    env |= {"PIXPORT_S3_ADDR": "127.0.0.1:1", "PIXPORT_REGION": ""}
    out = subprocess.run(["bash", "-c", PRINT, "_", *file], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    shell = dict(line.split("=", 1) for line in out.splitlines())
    for k in file:
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        if k in file:
            monkeypatch.setenv(k, v)
    python = stack.load_env()
    assert shell == {k: python[k] for k in file}
    assert shell["PIXPORT_S3_ADDR"] == "127.0.0.1:1"
    assert shell["PIXPORT_REGION"] == file["PIXPORT_REGION"], "an empty variable takes the file's value"
    assert shell["PIXPORT_DB_CLUSTER_ARN"] == file["PIXPORT_DB_CLUSTER_ARN"]


@pytest.mark.parametrize("text, line", [
    ("A=1\nnot a pair\n", 2),
    ("=1\n", 1),
    ("export A=1\n", 1),
    ("a=1\n", 1),
    ("A=1\n\nA=2\n", 3),
])
def test_python_reader_refuses_what_is_not_key_value(tmp_path, text, line):
    path = tmp_path / "ports.env"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"line {line}:"):
        _stack_module().read_ports_env(path)


def test_python_reader_skips_comments_and_blank_lines(tmp_path):
    path = tmp_path / "ports.env"
    path.write_text("# c\n\n  # indented\nA=x=y\nB=\n")
    assert _stack_module().read_ports_env(path) == {"A": "x=y", "B": ""}
