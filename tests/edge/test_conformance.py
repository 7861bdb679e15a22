"""API conformance, generated: schemathesis reads the OpenAPI document the
worker serves and sends what it allows (and what it does not), with and
without a token, following the document's links from a new image to its
reads, changes and deletion. No answer may be a 5xx, every answer must
match the document (status, content type, headers, schema), and afterwards
S3 listed against the table shows nothing lost or half-made.

A bounded run (fixed seed, few examples per operation, no time limit: a
run cut at a wall-clock time would cover less on a slower machine, and the
stateful phase that reads back a created image comes last); the long run is
bench/conformance/run, its figures in docs/reliability.md."""

from __future__ import annotations

import pytest

from support import budget, conformance

from .test_api import TOKEN

SEED = 20261130


@pytest.mark.parametrize("token", [TOKEN, None], ids=["token", "anonymous"])
def test_generated_requests_conform(stack, worker, s3, sql, tmp_path, token):
    import time

    since = conformance.ulid_floor(int(time.time() * 1000) - 1000)
    r = conformance.run(worker.url, tmp_path, token=token, seed=SEED, max_examples=8, timeout=budget(900))
    print(r.table())
    assert r.report, f"schemathesis wrote no report (exit {r.exit_code}):\n{r.output[-4000:]}"
    assert not r.failures and not r.errors and r.exit_code == 0, r.output[-6000:]
    assert not r.server_errors(), r.table()
    # The document itself is what schemathesis loads, outside the run's requests.
    documented = {f"{m} {p}" for m, p, _ in conformance.operations()} - {"GET /openapi.json"}
    exercised = {op for op, c in r.statuses.items() if sum(c.values()) > 0}
    assert documented <= exercised, f"never called: {documented - exercised}"
    if token:
        # The links were followed: an image was created (201), or returned
        # because this token already holds its bytes (200, a duplicate of the
        # document's example uploaded before), and then read back.
        posted = r.statuses["POST /images"]
        assert posted[201] + posted[200] > 0, r.table()
        assert r.statuses["GET /images/{id}"][200] > 0, r.table()
    # Whatever it sent, nothing was lost or half-made.
    assert conformance.nothing_lost(s3, stack["PIXPORT_BUCKET"], sql, since) == []
