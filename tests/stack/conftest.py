"""Fixtures for the local-stack tests; the logic lives in stackctl so other
test folders can share one running stack."""

from __future__ import annotations

import uuid

import pytest

from stack.stackctl import Stack, ensure_stack, stop_if_started


@pytest.fixture(scope="session")
def stack() -> Stack:
    s = ensure_stack()
    yield s
    stop_if_started()


@pytest.fixture(scope="session")
def s3(stack):
    return stack.s3_client()


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:12]
