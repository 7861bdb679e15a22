"""Fixtures for the pixport-aws cross-checks against boto3/botocore.

The crate is driven through its `vectors` example (JSON cases on stdin, JSON
results on stdout); boto3 produces the reference values in-process.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from unittest import mock

import pytest

from .aws_loopback import Loopback
from .support import T0_DT

from support import ROOT, cargo_build


@pytest.fixture(scope="session")
def vectors_bin() -> Path:
    return cargo_build("pixport-aws", example="vectors", profile="dev")


@pytest.fixture(scope="session")
def run_vectors(vectors_bin):
    """Runs cases through the crate; returns one result per case."""

    def run(cases: list[dict]) -> list[dict]:
        out = subprocess.run(
            [str(vectors_bin)], input=json.dumps(cases).encode(), capture_output=True, check=True
        )
        results = json.loads(out.stdout)
        assert len(results) == len(cases)
        for case, r in zip(cases, results):
            assert "harness_error" not in r, (case, r)
        return results

    return run


@pytest.fixture
def frozen_time():
    """Pins botocore's signing clock to T0."""
    with mock.patch("botocore.auth.get_current_datetime", return_value=T0_DT):
        yield


@pytest.fixture
def loopback():
    lb = Loopback()
    yield lb
    lb.close()
