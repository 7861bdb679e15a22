"""A multipart body's framing cannot take an isolate past 128 MB.

multer buffers whole what it reads while it looks for the first boundary
and for the blank line that ends a part's headers. Without a bound, 70 MB of
junk before the first boundary grew a release worker's wasm memory from 1 to
225 MiB with one request (wasm memory never shrinks, and Cloudflare kills an
isolate past 128 MB, with every upload in it). Each such body must be
refused with 400 `malformed_multipart` as soon as its bound is passed, store
nothing, and leave wasm memory where a normal upload leaves it."""

from __future__ import annotations

import pytest
import requests

from .test_api import AUTH, jpeg, snapshot
from .workerctl import Worker

JUNK = 70_000_000
BOUNDARY = "pixportFramingBoundary"
# What one small upload leaves behind is a few MiB; the isolate's limit is 128.
CEILING = 32 * 2**20


@pytest.fixture(scope="module")
def fresh(stack):
    """A workerd of its own, so its wasm memory starts from nothing."""
    w = Worker({"ECHO_ENABLED": "true"}).start()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def bucket(stack):
    return stack["PIXPORT_BUCKET"]


def preamble_junk() -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n" \
           f"Content-Type: image/jpeg\r\n\r\n".encode()
    return b"x" * JUNK + b"\r\n" + head + jpeg(64, 64) + f"\r\n--{BOUNDARY}--\r\n".encode()


def header_junk() -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n" \
           f"X-Junk: ".encode()
    return head + b"y" * JUNK + b"\r\n\r\n" + jpeg(64, 64) + f"\r\n--{BOUNDARY}--\r\n".encode()


def wasm_memory(worker: Worker) -> int:
    return requests.get(worker.url + "/healthz", timeout=30).json()["wasm_memory_bytes"]


@pytest.mark.parametrize("path", ["/images", "/echo"])
@pytest.mark.parametrize("body", [preamble_junk, header_junk], ids=["preamble", "part-headers"])
def test_70_mb_of_framing_is_refused_within_the_isolate(fresh, s3, bucket, sql, path, body):
    before = snapshot(s3, bucket, sql)
    r = requests.post(fresh.url + path, data=body(), headers={
        **AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, timeout=300)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "malformed_multipart"
    assert "bytes" in error["message"], error
    memory = wasm_memory(fresh)
    print(f"\n{path} {body.__name__}: wasm memory {memory / 2**20:.1f} MiB after a 70 MB refusal")
    assert memory < CEILING, f"wasm memory {memory / 2**20:.1f} MiB"
    assert snapshot(s3, bucket, sql) == before


def test_a_normal_upload_still_passes_after(fresh, s3, bucket, sql):
    files = {"file": ("a.jpg", jpeg(320, 240), "image/jpeg")}
    r = requests.post(fresh.url + "/images", files=files, data={"title": "after"}, headers=AUTH, timeout=120)
    assert r.status_code == 201, r.text
    assert wasm_memory(fresh) < CEILING
