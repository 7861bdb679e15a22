"""The edge's sniff reads JPEG headers by the same rules as the resizer
(`pixport-imagehead`): a frame header hidden behind a stuffed `FF 00`, a
second one, or one after the scan is refused before anything is stored; a
short APP14 (Pillow's truncated_app14.jpg) is accepted, as libjpeg does."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from .test_api import assert_error, snapshot, upload
from .workerctl import Worker


@pytest.fixture(scope="module")
def api(stack):
    """A worker pointed at this stack's S3 and Data API, whatever their ports."""
    w = Worker({
        "S3_ENDPOINT": f"http://{stack['PIXPORT_S3_ADDR']}",
        "DATA_API_ENDPOINT": f"http://{stack['PIXPORT_DATAAPI_ADDR']}",
    }).start()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def bucket(stack):
    return stack["PIXPORT_BUCKET"]


def small_jpeg() -> bytes:
    img = Image.new("RGB", (96, 64))
    for x in range(0, 96, 8):
        img.paste((x * 2, 255 - x * 2, 90), (x, 0, x + 8, 64))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def sof(code: int, w: int, h: int) -> bytes:
    return struct.pack(">BBHBHHB", 0xFF, code, 17, 8, h, w, 3) + bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])


def stuffed(second_frame: bool) -> bytes:
    data = small_jpeg()
    hidden = sof(0xC0, 65500, 65500)
    i = data.index(b"\xff\xc0")
    rest = data[i:] if second_frame else data[i + 19:]
    return data[:i] + b"\xff\x00\x00" + bytes([len(hidden) + 2]) + hidden + rest


CASES = [
    ("stuffed_ff00_hides_second_sof", lambda: stuffed(True), 422, "corrupt_image"),
    ("stuffed_ff00_hides_only_sof", lambda: stuffed(False), 422, "image_too_large"),
    ("sof_after_sos", lambda: small_jpeg()[:-2] + sof(0xC2, 65500, 65500) + b"\xff\xd9", 422, "corrupt_image"),
]


@pytest.mark.parametrize("name,make,status,code", CASES, ids=[c[0] for c in CASES])
def test_sniff_refuses_crafted_jpeg(api, s3, bucket, sql, name, make, status, code):
    before = snapshot(s3, bucket, sql)
    assert_error(upload(api, make()), status, code)
    assert snapshot(s3, bucket, sql) == before


def test_sniff_accepts_truncated_app14(api):
    data = small_jpeg()
    data = data[:2] + b"\xff\xee\x00\x0bAdobe\x00\x64\x80\x00\x00\x00\x01" + data[2:]
    r = upload(api, data, params={"duplicates": "allow"})
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (96, 64)


@pytest.mark.parametrize("mib", [8, 40])
def test_a_refusal_at_the_head_of_a_large_body_still_reaches_the_client(api, bucket, s3, sql, mib):
    """HTML named .jpg, refused on its first bytes while the client is still
    sending megabytes: the client reads the JSON 415, not a reset socket."""
    import os

    before = snapshot(s3, bucket, sql)
    r = upload(api, b"<!doctype html><html>" + os.urandom(mib << 20), name="page.jpg")
    assert_error(r, 415, "unsupported_media_type")
    assert snapshot(s3, bucket, sql) == before
