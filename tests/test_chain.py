"""The whole chain in one test: POST /images through wrangler dev -> local S3
-> ObjectCreated event -> Lambda Runtime API -> bootstrap -> resizer.wasm ->
variants in S3 -> row ready -> GET /images/{id} with downloadable variants."""

from __future__ import annotations

import base64
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
    # srcset per format: every variant's URL with its width, narrowest first.
    assert list(img["srcset"]) == ["jpeg"]
    assert img["srcset"]["jpeg"] == ", ".join(f'{v["url"]} {v["width"]}w'
                                              for v in sorted(img["variants"], key=lambda v: v["width"]))
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
    assert img["srcset"] == {"jpeg": f'{img["variants"][0]["url"]} 320w'}
    # The list's own (freshly presigned) URLs, in the same shape.
    listed = requests.get(api.url + "/images", params={"limit": 20}, timeout=10).json()
    item = next(i for i in listed["items"] if i["id"] == img["id"])
    assert item["srcset"] == {"jpeg": f'{item["variants"][0]["url"]} 320w'}


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


BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def blurhash_dc(h: str) -> tuple[int, int, int]:
    """The BlurHash's DC term: the image's mean colour (averaged in linear light)."""
    v = 0
    for c in h[2:6]:
        v = v * 83 + BASE83.index(c)
    return v >> 16, (v >> 8) & 255, v & 255


def thumbhash_mean(b64: str) -> tuple[float, float, float]:
    """The ThumbHash's DC term, decoded as its reference decoder does."""
    raw = base64.b64decode(b64)
    header = raw[0] | raw[1] << 8 | raw[2] << 16
    l = (header & 63) / 63
    p = ((header >> 6) & 63) / 31.5 - 1
    q = ((header >> 12) & 63) / 31.5 - 1
    b = l - 2 / 3 * p
    r = (3 * l - b + q) / 2
    g = r - q
    return tuple(max(0.0, min(1.0, c)) * 255 for c in (r, g, b))


def linear_mean_srgb(colours: list[tuple[tuple[int, int, int], float]]) -> tuple[float, ...]:
    def lin(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    def srgb(v):
        return 255 * (12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055)

    return tuple(srgb(sum(lin(c[i]) * share for c, share in colours)) for i in range(3))


def test_placeholders_reach_get_and_list(api):
    """ThumbHash, BlurHash and dominant colour: made by resizer.wasm, stored
    by the Lambda, returned by GET and list, and they describe the picture."""
    blue, red = (20, 40, 200), (220, 30, 20)
    pic = Image.new("RGB", (900, 600), blue)
    pic.paste(red, (600, 0, 900, 600))  # two thirds blue, one third red
    buf = io.BytesIO()
    pic.save(buf, "PNG")
    r = requests.post(api.url + "/images", files={"file": ("flag.png", buf.getvalue(), "image/png")},
                      data={"tags": "placeholder-test"}, headers=AUTH, timeout=60)
    assert r.status_code == 201, r.text
    img = wait_for(api, r.json()["id"], {"ready", "failed"})
    assert img["status"] == "ready", img
    ph = img["placeholder"]
    dominant = tuple(int(ph["dominant_color"][i:i + 2], 16) for i in (1, 3, 5))
    assert all(abs(a - b) <= 3 for a, b in zip(dominant, blue)), ph
    assert len(ph["blurhash"]) == 28 and all(c in BASE83 for c in ph["blurhash"]), ph
    want = linear_mean_srgb([(blue, 2 / 3), (red, 1 / 3)])
    assert all(abs(a - b) <= 4 for a, b in zip(blurhash_dc(ph["blurhash"]), want)), (ph, want)
    assert len(base64.b64decode(ph["thumbhash"])) <= 25
    plain = [(2 * b + rd) / 3 for b, rd in zip(blue, red)]  # ThumbHash averages sRGB values
    assert all(abs(a - b) <= 12 for a, b in zip(thumbhash_mean(ph["thumbhash"]), plain)), ph
    listed = requests.get(api.url + "/images", params={"tag": "placeholder-test"}, timeout=10).json()
    assert [i["placeholder"] for i in listed["items"] if i["id"] == img["id"]] == [ph]
