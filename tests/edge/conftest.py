import pytest

from .workerctl import Worker


@pytest.fixture(scope="session")
def worker():
    """The edge worker built by wrangler's [build] step and served by workerd."""
    w = Worker().start()
    yield w
    w.stop()
