"""Delivery: repeat reads from the data centre's cache, purges, private images.

Through `wrangler dev` (whose Cache API is workerd's, as in production) and
the local stack. What the worker asks of S3 and the Data API is read from
their per-identity counters (`/__pixport/counters`), as test_subrequests
does: a cached read must make no request at all. The zone's purge goes to a
recording stand-in of the Cloudflare API on loopback (`CF_API_URL`): the
real API is not reachable here; what it is sent is checked exactly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from support import budget, wait_until

from .test_api import AUTH, assert_error, jpeg
from .test_subrequests import counts
from .workerctl import Worker

DELIVERY_KEY = "pixport-test-delivery-key-not-for-production"
ZONE = "zone-for-tests"
PURGE_TOKEN = "purge-token-for-tests"
WEBP = {"Accept": "image/avif,image/webp,image/*,*/*;q=0.8"}


class PurgeApi:
    """Answers POST /zones/{zone}/purge_cache as the Cloudflare API does and
    keeps what it was sent."""

    def __init__(self):
        self.calls: list[dict] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                api.calls.append({"path": self.path, "auth": self.headers.get("authorization"),
                                  "body": json.loads(body or b"null")})
                out = json.dumps({"success": True, "errors": [], "messages": [], "result": {"id": ZONE}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def files(self) -> set[str]:
        return {f for c in self.calls for f in c["body"]["files"]}


@pytest.fixture(scope="module")
def purges():
    api = PurgeApi()
    yield api
    api.server.shutdown()


@pytest.fixture(scope="module")
def dw(stack, purges):
    w = Worker({"DELIVERY_KEYS": DELIVERY_KEY, "CF_ZONE_ID": ZONE, "CF_PURGE_TOKEN": PURGE_TOKEN,
                "CF_API_URL": purges.url}).start()
    yield w
    w.stop()


def post(w, fields=None, size=(900, 600)) -> dict:
    r = requests.post(w.url + "/images", data=fields or {}, files={"file": ("p.jpg", jpeg(*size), "image/jpeg")},
                      headers=AUTH, timeout=budget(60))
    assert r.status_code == 201, r.text
    return r.json()


def ready(w, id_: str) -> dict:
    def settled():
        img = requests.get(f"{w.url}/images/{id_}", headers=AUTH, timeout=budget(10)).json()
        return img if img["status"] in ("ready", "failed") else None

    img = wait_until(settled, 180, f"the resize of {id_}", interval=0.5)
    assert img["status"] == "ready", img
    return img


def quiet(stack) -> tuple[int, int]:
    """The worker's S3 and Data API counts once they stop moving (a cache
    store runs after the answer, in waitUntil)."""
    last, still = counts(stack), 0
    while still < 3:
        time.sleep(0.5)
        now = counts(stack)
        still = still + 1 if now == last else 0
        last = now
    return last


def upstream(stack, call):
    """`call()`'s answer and the S3 requests and Data API calls it made."""
    s0, d0 = quiet(stack)
    r = call()
    s1, d1 = quiet(stack)
    return r, (s1 - s0, d1 - d0)


def sign(id_: str, width: int, fmt: str | None, expires: int, key: str = DELIVERY_KEY) -> str:
    """docs/delivery.md's signature, computed independently of the worker."""
    msg = f"pixport-delivery-v1\n{id_}\n{width}\n{fmt or '*'}\n{expires}".encode()
    return base64.urlsafe_b64encode(hmac.new(key.encode(), msg, hashlib.sha256).digest()).rstrip(b"=").decode()


def test_repeat_reads_need_neither_the_database_nor_s3(dw, stack):
    img = ready(dw, post(dw)["id"])
    pinned = next(v["url"] for v in img["variants"] if v["width"] == 320 and v["content_type"] == "image/jpeg")
    for url, headers in ((f"{dw.url}/images/{img['id']}/640", WEBP), (pinned, {})):
        first, (s, d) = upstream(stack, lambda: requests.get(url, headers=headers, timeout=budget(30)))
        assert first.status_code == 200, first.text
        for again in range(3):
            r, used = upstream(stack, lambda: requests.get(url, headers=headers, timeout=budget(30)))
            assert used == (0, 0), f"read {again + 2} of {url} asked S3 and the Data API {used}"
            assert r.status_code == 200 and r.content == first.content
            for h in ("content-type", "etag", "cache-control", "vary"):
                assert r.headers.get(h) == first.headers.get(h), h
            assert r.headers["etag"] == f"\"{hashlib.sha256(r.content).hexdigest()}\""
        assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    # The negotiated URL still answers each Accept with its own format.
    jpeg_answer = requests.get(f"{dw.url}/images/{img['id']}/640", headers={"Accept": "image/jpeg"},
                               timeout=budget(30))
    assert jpeg_answer.headers["content-type"] == "image/jpeg"
    # A conditional repeat read is a 304 from the cache too.
    etag = jpeg_answer.headers["etag"]
    r, used = upstream(stack, lambda: requests.get(f"{dw.url}/images/{img['id']}/640",
                                                  headers={"Accept": "image/jpeg", "If-None-Match": etag},
                                                  timeout=budget(30)))
    assert (r.status_code, used) == (304, (0, 0))


def test_a_delete_purges_the_cache_here_and_in_every_data_centre(dw, stack, purges):
    img = ready(dw, post(dw)["id"])
    url = f"{dw.url}/images/{img['id']}/640"
    for _ in range(2):
        assert requests.get(url, headers=WEBP, timeout=budget(30)).status_code == 200
    _, used = upstream(stack, lambda: requests.get(url, headers=WEBP, timeout=budget(30)))
    assert used == (0, 0), "cached before the delete"
    before = len(purges.calls)
    assert requests.delete(f"{dw.url}/images/{img['id']}", headers=AUTH, timeout=budget(60)).status_code == 204
    for u in (url, *(v["url"] for v in img["variants"])):
        assert_error(requests.get(u, headers=WEBP, timeout=budget(30)), 404, "not_found")
    calls = purges.calls[before:]
    assert calls and all(c["path"] == f"/zones/{ZONE}/purge_cache" for c in calls)
    assert all(c["auth"] == f"Bearer {PURGE_TOKEN}" for c in calls)
    files = {f for c in calls for f in c["body"]["files"]}
    assert f"{dw.url}/images/{img['id']}?cache=variants" in files
    assert len(files) == 1 + len(img["variants"]), files
    assert all(f.startswith(f"{dw.url}/images/{img['id']}") for f in files)


def test_a_private_image_is_seen_only_through_its_signed_urls(dw, stack):
    created = post(dw, {"visibility": "private", "title": "mine"})
    assert created["visibility"] == "private"
    img = ready(dw, created["id"])
    id_ = img["id"]
    # Anyone else: no such image, no such variant.
    assert_error(requests.get(f"{dw.url}/images/{id_}", timeout=budget(10)), 404, "not_found")
    assert_error(requests.get(f"{dw.url}/images/{id_}/640", headers=WEBP, timeout=budget(10)), 404, "not_found")
    # The owner's view signs every URL, srcset included.
    for v in img["variants"]:
        q = parse_qs(urlsplit(v["url"]).query)
        assert set(q) == {"format", "expires", "signature"}, v["url"]
        assert int(q["expires"][0]) >= time.time() + 3600 - 5
    assert all("signature=" in u for s in img["srcset"].values() for u in s.split(", "))
    v = next(v for v in img["variants"] if v["width"] == 640 and v["content_type"] == "image/jpeg")
    for _ in range(2):
        r, (s, d) = upstream(stack, lambda: requests.get(v["url"], timeout=budget(30)))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg" and len(r.content) == v["bytes"]
        control = r.headers["cache-control"]
        assert control.startswith("private, max-age=") and 0 < int(control.split("=")[1]) <= 3600 + 900, control
        assert d > 0 and s > 0, "a private image is never answered from the cache"
    # Nothing the signature covers can be changed.
    parts = urlsplit(v["url"])
    q = {k: x[0] for k, x in parse_qs(parts.query).items()}
    for path, query in ((f"/images/{id_}/320", q), (parts.path, {**q, "format": "webp"}),
                        (parts.path, {**q, "expires": str(int(q["expires"]) + 1)}),
                        (parts.path, {**q, "signature": q["signature"][:-2] + "AA"})):
        assert_error(requests.get(f"{dw.url}{path}?{urlencode(query)}", timeout=budget(10)), 403,
                     "invalid_signature")
    # The scheme is the documented one: a URL signed here works, and one
    # whose expiry has passed is refused as expired.
    soon = int(time.time()) + 600
    ok = requests.get(f"{dw.url}/images/{id_}/640",
                      params={"expires": soon, "signature": sign(id_, 640, None, soon)},
                      headers={"Accept": "image/jpeg"}, timeout=budget(30))
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/jpeg", ok.text
    assert ok.headers["vary"].lower().startswith("accept")
    past = int(time.time()) - 5
    assert_error(requests.get(f"{dw.url}/images/{id_}/640", params={"expires": past,
                                                                   "signature": sign(id_, 640, None, past)},
                              timeout=budget(10)), 403, "link_expired")
    assert_error(requests.get(f"{dw.url}/images/{id_}/640",
                              params={"expires": soon, "signature": sign(id_, 640, None, soon, key="x" * 40)},
                              timeout=budget(10)), 403, "invalid_signature")


def test_making_an_image_private_purges_it(dw, stack, purges):
    img = ready(dw, post(dw)["id"])
    url = f"{dw.url}/images/{img['id']}/640"
    for _ in range(2):
        assert requests.get(url, headers=WEBP, timeout=budget(30)).status_code == 200
    before = len(purges.calls)
    r = requests.patch(f"{dw.url}/images/{img['id']}", json={"visibility": "private"}, headers=AUTH,
                       timeout=budget(30))
    assert r.status_code == 200 and r.json()["visibility"] == "private", r.text
    assert_error(requests.get(url, headers=WEBP, timeout=budget(30)), 404, "not_found")
    assert f"{dw.url}/images/{img['id']}?cache=variants" in {f for c in purges.calls[before:]
                                                              for f in c["body"]["files"]}
    # And back: public again, anyone sees it.
    r = requests.patch(f"{dw.url}/images/{img['id']}", json={"visibility": "public"}, headers=AUTH,
                       timeout=budget(30))
    assert r.status_code == 200
    assert requests.get(url, headers=WEBP, timeout=budget(30)).status_code == 200


def test_visibility_is_checked(dw):
    r = requests.post(dw.url + "/images", data={"visibility": "secret"},
                      files={"file": ("p.jpg", jpeg(300, 200), "image/jpeg")}, headers=AUTH, timeout=budget(60))
    assert_error(r, 400, "invalid_field")
