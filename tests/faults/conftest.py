"""The fault tests' own stack (faultstack.py), started once for the folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import cargo_build


@pytest.fixture(scope="session")
def faults(local_stack, resizer_wasm, tmp_path_factory):
    if local_stack is None:
        pytest.skip("PIXPORT_NO_STACK=1")
    from faults.faultstack import FaultStack

    bootstrap = Path(os.environ.get("PIXPORT_BOOTSTRAP") or cargo_build("pixport-lambda", bin="bootstrap", profile="local"))
    # Its own MariaDB too, so the tests may SIGKILL that as well.
    fs = FaultStack(local_stack, tmp_path_factory.mktemp("faults"), bootstrap, resizer_wasm, own_mariadb=True)
    try:
        fs.start_all()
        # Rows an earlier run left behind would be re-driven against this
        # run's empty bucket; every run starts from an empty table.
        fs.sql("DELETE FROM images")
        yield fs
    finally:
        fs.stop_all()
