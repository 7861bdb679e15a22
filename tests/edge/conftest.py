import pytest

from .workerctl import Worker


@pytest.fixture(scope="session")
def worker():
    """The edge worker built by wrangler's [build] step and served by workerd,
    configured for local development (POST /echo on)."""
    w = Worker({"ECHO_ENABLED": "true", "GRANT_SECRETS": "pixport-test-grant-secret-not-for-production"}).start()
    yield w
    w.stop()
