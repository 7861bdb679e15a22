"""The whole chain in one test: POST /images through wrangler dev -> local S3
-> ObjectCreated event -> Lambda Runtime API -> bootstrap -> resizer.wasm ->
variants in S3 -> row ready -> GET /images/{id} with downloadable variants."""

from __future__ import annotations

import io
import time

import pytest
import requests
from PIL import Image

from edge.workerctl import Worker

AUTH = {"Authorization": "Bearer local-dev-token"}


@pytest.fixture(scope="module")
def api(stack):
    w = Worker().start()
    yield w
    w.stop()


def wait_for(api, iid: str, statuses: set[str], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        img = requests.get(f"{api.url}/images/{iid}", headers=AUTH, timeout=10).json()
        if img["status"] in statuses or time.monotonic() > deadline:
            return img
        time.sleep(0.25)


def test_upload_is_resized_and_served(api, photos):
    data = (photos / "p12mp.jpg").read_bytes()
    r = requests.post(api.url + "/images", params={"duplicates": "allow"}, files={"file": ("p12mp.jpg", data, "image/jpeg")},
                      data={"title": "chain"}, headers=AUTH, timeout=120)
    assert r.status_code == 201, r.text
    img = wait_for(api, r.json()["id"], {"ready", "failed"})
    assert img["status"] == "ready", img
    assert sorted(v["width"] for v in img["variants"]) == [320, 640, 1920]
    for v in img["variants"]:
        got = requests.get(v["url"], timeout=30)
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/jpeg"
        pic = Image.open(io.BytesIO(got.content))
        pic.load()
        assert pic.format == "JPEG"
        assert pic.size == (v["width"], v["height"]) == (v["width"], round(3000 * v["width"] / 4000))
        assert len(got.content) == v["bytes"]
    # The original is never touched by the resize path; only its owner gets
    # its URL (it still has the uploader's EXIF).
    assert requests.get(img["original_url"], timeout=30).content == data
    anonymous = requests.get(f"{api.url}/images/{img['id']}", timeout=10).json()
    assert anonymous["original_url"] is None
    assert [v["width"] for v in anonymous["variants"]] == [v["width"] for v in img["variants"]]


def test_small_image_is_not_upscaled(api):
    buf = io.BytesIO()
    Image.new("RGB", (500, 250), (10, 200, 30)).save(buf, "PNG")
    r = requests.post(api.url + "/images", params={"duplicates": "allow"}, files={"file": ("small.png", buf.getvalue(), "image/png")},
                      headers=AUTH, timeout=60)
    assert r.status_code == 201, r.text
    img = wait_for(api, r.json()["id"], {"ready", "failed"})
    assert img["status"] == "ready", img
    assert [v["width"] for v in img["variants"]] == [320]


def test_tiny_photo_gets_a_clean_copy_at_its_own_size(api):
    """Narrower than every width: no upscale, but one variant at its own
    size, so there is something to serve besides the original and its GPS."""
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPS IFD
    buf = io.BytesIO()
    Image.new("RGB", (200, 120), (200, 40, 40)).save(buf, "JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(buf.getvalue())).getexif().get_ifd(0x8825)
    r = requests.post(api.url + "/images", params={"duplicates": "allow"}, files={"file": ("tiny.jpg", buf.getvalue(), "image/jpeg")},
                      headers=AUTH, timeout=60)
    assert r.status_code == 201, r.text
    img = wait_for(api, r.json()["id"], {"ready", "failed"})
    assert img["status"] == "ready", img
    assert [(v["width"], v["height"]) for v in img["variants"]] == [(200, 120)]
    got = requests.get(img["variants"][0]["url"], timeout=30)
    pic = Image.open(io.BytesIO(got.content))
    assert pic.size == (200, 120)
    assert not pic.getexif() and "exif" not in pic.info
