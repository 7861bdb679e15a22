"""Fixtures for the local Data API tests: one server for the session."""

from __future__ import annotations

import uuid

import pytest

from dataapi import dbctl


@pytest.fixture(scope="session")
def dataapi():
    server = dbctl.ensure_dataapi()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rds(dataapi):
    return dbctl.client(dataapi.endpoint)


@pytest.fixture(scope="session")
def arns():
    return dbctl.arns()


@pytest.fixture
def table(rds, arns):
    """A fresh table name, dropped afterwards; the test creates it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    tx_free = {k: v for k, v in arns.items()}
    rds.execute_statement(sql=f"DROP TABLE IF EXISTS {name}", **tx_free)
