"""Waiting on events, not on the clock.

A test that sleeps a fixed time and then asserts, or gives an event a budget
sized on a warm, idle machine, passes or fails with the machine's speed. Every
wait in the suite goes through `wait_until` with a budget from `budget()`:
the nominal figures in the tests are sized for a cold, loaded 2-core machine
(first wasmtime compile of the module, a 48 MP resize with both cores busy),
and `PIXPORT_TEST_TIME_SCALE` (default 1) multiplies them for slower ones.
A budget only bounds how long a broken system is waited for; a passing run
ends as soon as the event happens."""

from __future__ import annotations

import os
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def time_scale() -> float:
    """PIXPORT_TEST_TIME_SCALE: how much slower than a cold, loaded 2-core
    machine this one is (1 unless set; must be positive)."""
    raw = os.environ.get("PIXPORT_TEST_TIME_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"PIXPORT_TEST_TIME_SCALE={raw!r}: expected a positive number like 2") from None
    if not scale > 0:
        raise ValueError(f"PIXPORT_TEST_TIME_SCALE={raw!r}: must be positive")
    return scale


def budget(seconds: float) -> float:
    """A budget sized for a cold, loaded 2-core machine, scaled for this one."""
    return seconds * time_scale()


class WaitTimeout(AssertionError):
    """The event did not happen within its budget (an assertion failure: the
    system under test did not do what the test waits for)."""


def wait_until(predicate: Callable[[], T], budget_s: float, what: str, *, interval: float = 0.05,
               detail: Callable[[], object] | None = None) -> T:
    """Calls `predicate` until it returns something truthy and returns that.
    `budget_s` is a nominal budget (scaled by `budget()` here, so callers pass
    the figure for a cold 2-core machine); after it, raises `WaitTimeout`
    naming `what` was awaited, the budget, and `detail()` (the state seen
    last) when given. The predicate is always tried once more after the
    budget runs out, so a slow poll never loses an event that did happen."""
    limit = budget(budget_s)
    start = time.monotonic()
    while True:
        got = predicate()
        if got:
            return got
        waited = time.monotonic() - start
        if waited >= limit:
            got = predicate()
            if got:
                return got
            extra = ""
            if detail is not None:
                try:
                    extra = f"; last seen: {detail()!r}"
                except Exception as e:  # the detail is best effort; the timeout is the failure
                    extra = f"; detail unavailable: {e!r}"
            raise WaitTimeout(f"waited {waited:.1f} s (budget {limit:g} s) for {what}{extra}")
        time.sleep(min(interval, max(0.0, limit - waited)))
