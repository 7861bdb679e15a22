"""The whole chain in one test: POST /images through wrangler dev -> local S3
-> ObjectCreated event -> Lambda Runtime API -> bootstrap -> resizer.wasm ->
variants in S3 -> row ready -> GET /images/{id} with downloadable variants."""

from __future__ import annotations

import base64
import io

import pytest
import requests
from PIL import Image

from edge.workerctl import Worker
from support import WaitTimeout, budget, wait_until

AUTH = {"Authorization": "Bearer local-dev-token"}


@pytest.fixture(scope="module")
def api(stack):
    w = Worker().start()
    yield w
    w.stop()


def wait_for(api, iid: str, statuses: set[str], timeout: float = 180.0) -> dict:
    """The image once its status is in `statuses`, or as it is after
    `timeout` (nominal, for a cold, loaded 2-core machine: the Lambda's
    first resize waits for its bootstrap to compile the module); callers
    assert the status."""
    def get():
        return requests.get(f"{api.url}/images/{iid}", headers=AUTH, timeout=budget(10)).json()

    def settled():
        img = get()
        return img if img["status"] in statuses else None

    try:
        return wait_until(settled, timeout, f"{iid} to be {' or '.join(sorted(statuses))}", interval=0.25)
    except WaitTimeout:
        return get()


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
    assert requests.get(img["original_url"], headers=AUTH, timeout=30).content == data
    assert requests.get(img["original_url"], timeout=30).status_code == 401
    anonymous = requests.get(f"{api.url}/images/{img['id']}", timeout=10).json()
    assert "original_url" not in anonymous and "title" not in anonymous
    assert anonymous["variants"] == img["variants"]


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
    # The list's URLs, in the same shape.
    listed = requests.get(api.url + "/images", params={"limit": 20}, headers=AUTH, timeout=10).json()
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
    r = requests.post(api.url + "/images", params={"duplicates": "allow"}, files={"file": ("flag.png", buf.getvalue(), "image/png")},
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
    listed = requests.get(api.url + "/images", params={"tag": "placeholder-test"}, headers=AUTH, timeout=10).json()
    assert [i["placeholder"] for i in listed["items"] if i["id"] == img["id"]] == [ph]


CHROME_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_ACCEPT = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"
PIL_FORMAT = {"image/avif": "AVIF", "image/webp": "WEBP", "image/jpeg": "JPEG", "image/png": "PNG"}


def photo_like(w: int, h: int) -> bytes:
    """A gradient with detail, so every encoder has something to compress."""
    import random
    rnd = random.Random(16)
    pic = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    px = pic.load()
    for _ in range(4000):
        x, y = rnd.randrange(w), rnd.randrange(h)
        px[x, y] = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
    buf = io.BytesIO()
    pic.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_one_url_per_width_answers_in_the_best_format_accept_names(api):
    """GET /images/{id}/{width}: Accept negotiation over the formats stored
    at that width, never a format the request did not list, cacheable."""
    import hashlib

    r = requests.post(api.url + "/images", params={"duplicates": "allow"},
                      files={"file": ("grad.jpg", photo_like(1200, 800), "image/jpeg")}, headers=AUTH, timeout=60)
    assert r.status_code == 201, r.text
    img = wait_for(api, r.json()["id"], {"ready", "failed"})
    assert img["status"] == "ready", img
    url = f"{api.url}/images/{img['id']}/640"
    held = {v["content_type"]: v for v in img["variants"] if v["width"] == 640}
    assert "image/jpeg" in held, held

    def best(*named: str) -> str:
        return next((t for t in named if t in held), "image/jpeg")

    cases = [
        (None, "image/jpeg"),            # no Accept: a universal format
        ("*/*", "image/jpeg"),
        ("image/*", "image/jpeg"),
        (CHROME_ACCEPT, best("image/avif", "image/webp")),
        (SAFARI_ACCEPT, best("image/webp")),
        ("image/avif;q=0.5, image/jpeg", "image/jpeg"),
    ]
    etags = {}
    for accept, want in cases:
        got = requests.get(url, headers={"Accept": accept}, timeout=30)
        assert got.status_code == 200, (accept, got.status_code, got.text[:300])
        assert got.headers["content-type"] == want, (accept, got.headers["content-type"])
        assert "accept" in got.headers["vary"].lower()
        assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert got.headers["etag"] == f'"{hashlib.sha256(got.content).hexdigest()}"'
        assert len(got.content) == held[want]["bytes"]
        pic = Image.open(io.BytesIO(got.content))
        pic.load()
        assert pic.format == PIL_FORMAT[want]
        assert pic.size == (640, held[want]["height"])
        etags[want] = got.headers["etag"]

    # Revalidation: the ETag of what this Accept gets; HEAD without the bytes.
    again = requests.get(url, headers={"Accept": CHROME_ACCEPT, "If-None-Match": etags[best("image/avif", "image/webp")]}, timeout=10)
    assert again.status_code == 304 and not again.content
    assert "accept" in again.headers["vary"].lower()
    head = requests.head(url, headers={"Accept": "image/jpeg"}, timeout=10)
    assert head.status_code == 200 and head.headers["content-type"] == "image/jpeg"
    assert head.headers["etag"] == etags["image/jpeg"]

    # What the request does not list is never sent.
    for accept in ["image/gif", "application/json", "image/*;q=0"] + ([] if "image/avif" in held else ["image/avif"]):
        refused = requests.get(url, headers={"Accept": accept}, timeout=10)
        assert refused.status_code == 406, (accept, refused.status_code)
        assert refused.json()["error"]["code"] == "not_acceptable"
        assert "image/jpeg" in refused.json()["error"]["message"]
        assert "accept" in refused.headers["vary"].lower()

    # Widths are the variants' own, spelled one way.
    for width in ["1000", "0640", "640px", "-1"]:
        miss = requests.get(f"{api.url}/images/{img['id']}/{width}", timeout=10)
        assert miss.status_code == 404 and miss.json()["error"]["code"] == "no_such_width", (width, miss.text)
        widths = ", ".join(str(w) for w in sorted({v["width"] for v in img["variants"]}))
        assert miss.json()["error"]["message"].endswith(f"it has {widths}") and widths == "320, 640"
    gone = requests.get(f"{api.url}/images/01JZZZZZZZZZZZZZZZZZZZZZZZ/640", timeout=10)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    wrong = requests.post(url, headers=AUTH, timeout=10)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"


def test_wide_gamut_upload_is_served_as_srgb(api):
    """Item 4 through the whole chain: a Display P3 photo's variants come
    back without a profile and with littleCMS's sRGB colours (within the
    JPEG encoder's error), not the P3 numbers read as sRGB."""
    import sys
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from support.wide_gamut import icc_profile, picture, to_srgb

    icc = icc_profile("display-p3")
    src = picture(640, 427, seed=21)
    buf = io.BytesIO()
    src.save(buf, "PNG", icc_profile=icc)
    r = requests.post(api.url + "/images", params={"duplicates": "allow"},
                      files={"file": ("p3.png", buf.getvalue(), "image/png")}, headers=AUTH, timeout=60)
    assert r.status_code == 201, r.text
    img = wait_for(api, r.json()["id"], {"ready", "failed"})
    assert img["status"] == "ready", img
    v = next(v for v in img["variants"] if v["width"] == 640)
    out = Image.open(io.BytesIO(requests.get(v["url"], timeout=30).content))
    assert "icc_profile" not in out.info
    delta = lambda a, b: float(np.abs(np.asarray(a.convert("RGB"), dtype=np.int16)  # noqa: E731
                                      - np.asarray(b.convert("RGB"), dtype=np.int16)).mean())
    reference = to_srgb(src, icc)
    assert delta(src, reference) > 10, "the P3 numbers must differ from sRGB"
    print(f"\nP3 upload: variant vs littleCMS {delta(out, reference):.2f} levels, unconverted {delta(src, reference):.1f}")
    assert delta(out, reference) < 4, delta(out, reference)
