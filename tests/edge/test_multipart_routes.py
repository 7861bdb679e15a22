"""The Companion routes of browser uploads (`@uppy/aws-s3`, always S3
multipart), as the worker's own identity (EdgeUser) against the local S3
that enforces deploy/template.yaml's policies: the worker lists the parts
S3 holds (ListParts, s3:ListMultipartUploadParts) when a client resumes and
again when it completes, so both fail with AccessDenied, in AWS as here, if
the template does not grant it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from PIL import Image

from .test_api import AUTH, jpeg

PART = 5 * 1024 * 1024  # S3's smallest part but the last


@pytest.fixture(scope="module")
def shared():
    from stack.stackctl import ensure_stack

    return ensure_stack()


def big_jpeg() -> bytes:
    """A JPEG over one part: noise does not compress."""
    rng = np.random.default_rng(22)
    img = Image.fromarray(rng.integers(0, 256, (2400, 2400, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    assert buf.tell() > PART + 1024
    return buf.getvalue()


def declare(worker, body: bytes) -> tuple[str, str]:
    r = requests.post(worker.url + "/s3/multipart", headers=AUTH, timeout=30,
                      json={"filename": "p.jpg", "type": "image/jpeg", "metadata": {"size": str(len(body))}})
    assert r.status_code == 200, r.text
    return r.json()["key"], r.json()["uploadId"]


def send_part(worker, key: str, upload_id: str, n: int, data: bytes) -> str:
    signed = requests.get(f"{worker.url}/s3/multipart/{upload_id}/{n}", params={"key": key}, headers=AUTH,
                          timeout=30)
    assert signed.status_code == 200, signed.text
    put = requests.put(signed.json()["url"], data=data, timeout=60)
    assert put.status_code == 200, put.text
    return put.headers["ETag"]


def listed(worker, key: str, upload_id: str) -> list[dict]:
    r = requests.get(f"{worker.url}/s3/multipart/{upload_id}", params={"key": key}, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def complete(worker, key: str, upload_id: str, parts: list[tuple[int, str]]) -> requests.Response:
    return requests.post(f"{worker.url}/s3/multipart/{upload_id}/complete", params={"key": key}, headers=AUTH,
                         timeout=60, json={"parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})


def test_parts_are_listed_and_checked_at_completion(worker, shared, s3):
    body = jpeg(640, 480)
    key, upload_id = declare(worker, body)
    etag = send_part(worker, key, upload_id, 1, body)
    before = shared.counters()
    assert listed(worker, key, upload_id) == [{"PartNumber": 1, "ETag": etag, "Size": len(body)}]
    after = shared.counters()
    # One ListParts, signed by the worker's identity.
    edge = after.get("EdgeUser", {}).get("ListParts", 0) - before.get("EdgeUser", {}).get("ListParts", 0)
    assert edge == 1
    done = complete(worker, key, upload_id, [(1, etag)])
    assert done.status_code == 200, done.text
    assert done.json()["image"]["status"] in ("pending", "ready")
    assert s3.head_object(Bucket=shared.bucket, Key=key)["ContentLength"] == len(body)


def test_a_resumed_upload_sends_only_the_missing_part(worker, shared, s3):
    body = big_jpeg()
    key, upload_id = declare(worker, body)
    first = send_part(worker, key, upload_id, 1, body[:PART])
    # The page reloads: Uppy asks which parts S3 already has.
    assert listed(worker, key, upload_id) == [{"PartNumber": 1, "ETag": first, "Size": PART}]
    second = send_part(worker, key, upload_id, 2, body[PART:])
    assert [p["PartNumber"] for p in listed(worker, key, upload_id)] == [1, 2]
    done = complete(worker, key, upload_id, [(1, first), (2, second)])
    assert done.status_code == 200, done.text
    assert s3.get_object(Bucket=shared.bucket, Key=key)["Body"].read() == body
