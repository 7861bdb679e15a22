"""The upload page's work on the device, in Debian's chromium: resizer.wasm
in a Web Worker draws the preview and the placeholder before the upload is
done, and, when the owner opts in, shrinks an oversized photo before it is
sent. The server stores and checks whatever arrives as always: the
assertions read the stored original back from the bucket.

Each test holds the upload's first request (the worker's create-multipart
call, through a Playwright route) until what it checks has happened, so
"before the upload finishes" is a fact of the run, not of the machine's
speed. Screenshots land in $PIXPORT_STATE/browser-device/.
"""

from __future__ import annotations

import hashlib
import io
import re
import sys
from pathlib import Path

import pytest
from urllib.parse import parse_qs, urlparse

import requests
from PIL import Image

from browser.test_upload_page import AUTH, ISSUER, TOKEN, chromium, ms  # noqa: F401
from edge.workerctl import Worker
from support import ports_env, state_dir, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "photos"))
import classes  # noqa: E402


@pytest.fixture(scope="module")
def worker(stack):
    w = Worker(ISSUER.worker_vars()).start()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


class Walk:
    """One signed-in page whose uploads are held at their start (the
    create-multipart call) until `release()`, with the console errors and
    the part PUTs to the bucket."""

    def __init__(self, browser, worker):
        self.context = browser.new_context(viewport={"width": 1100, "height": 900})
        self.context.set_default_timeout(ms(60))
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console.append(m.text))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.held: list = []
        self.open = False
        self.parts: list[tuple[str, int, int]] = []  # (uploadId, partNumber, status) per part PUT
        self.page.route(worker.url + "/s3/multipart", self._route)
        self.page.on("response", self._response)
        self.page.goto(worker.url + "/")
        self.page.get_by_label("Sign-in token").fill(TOKEN)
        self.page.get_by_label("Sign-in token").press("Enter")
        self.page.get_by_text("Signed in for this tab.").wait_for()

    def _route(self, route):
        if self.open or route.request.method != "POST":
            route.continue_()
        else:
            self.held.append(route)

    def _response(self, resp):
        q = parse_qs(urlparse(resp.url).query)
        if resp.request.method == "PUT" and "partNumber" in q:
            self.parts.append((q["uploadId"][0], int(q["partNumber"][0]), resp.status))

    def sent_once(self, upload_ids: int) -> None:
        """Every part went once, answered 200: what the bucket stored is
        what was sent (the browser does not report a Blob body's size to
        Playwright)."""
        keys = [(u, n) for u, n, _ in self.parts]
        assert len(set(keys)) == len(keys) and all(st == 200 for *_, st in self.parts), self.parts
        assert len({u for u, _ in keys}) == upload_ids, self.parts

    def pick(self, *paths):
        self.page.locator("input.uppy-Dashboard-input[name='files[]']").first.set_input_files(list(paths))

    def upload(self):
        self.page.locator(".uppy-StatusBar-actionBtn--upload").click()

    def release(self):
        self.open = True
        for r in self.held:
            r.continue_()
        self.held.clear()

    def wait_for_held(self):
        waited = 0
        while not self.held and waited < ms(120):
            self.page.wait_for_timeout(100)
            waited += 100
        assert self.held, "the upload did not start"

    def uploaded(self, name: str) -> str:
        self.page.wait_for_function(
            """n => window.pixport.uppy.getFiles().some(f => f.name === n && f.progress.uploadComplete)""",
            arg=name, timeout=ms(240),
        )
        return self.page.evaluate(
            "n => window.pixport.uppy.getFiles().find(f => f.name === n).response.body.image.id", name)

    def close(self):
        assert not self.console, self.console
        self.context.close()


def ready(worker, iid: str) -> dict:
    """The image once the Lambda is done with it (the page polls the same)."""

    def done():
        img = requests.get(f"{worker.url}/images/{iid}", headers=AUTH, timeout=10).json()
        return img if img["status"] in ("ready", "failed") else None

    img = wait_until(done, 300, f"image {iid} processed")
    assert img["status"] == "ready", img
    return img


def stored(s3, iid: str) -> bytes:
    return s3.get_object(Bucket=ports_env()["PIXPORT_BUCKET"], Key=f"originals/{iid}")["Body"].read()


def test_preview_and_placeholder_come_before_the_upload_and_the_bytes_go_unchanged(worker, browser, photos, s3):
    w = Walk(browser, worker)
    page = w.page
    assert page.locator("#shrink").is_checked() is False  # opt-in: off until ticked
    photo = photos / "p12mp.jpg"
    w.pick(photo)
    w.upload()
    w.wait_for_held()
    row = page.locator("li.local[data-file='p12mp.jpg']")
    row.and_(page.locator("[data-state='preview']")).wait_for(timeout=ms(120))
    # The preview (the resizer's 320 px JPEG) and the placeholder (its
    # ThumbHash, drawn as a PNG) are on the page, decoded...
    page.wait_for_function(
        """() => [...document.querySelectorAll("li.local[data-file='p12mp.jpg'] img")]
                 .every(i => i.complete && i.naturalWidth > 0)""",
        timeout=ms(30),
    )
    sizes = row.locator("img").evaluate_all("els => els.map(i => [i.className, i.src.split(':')[0], i.naturalWidth])")
    assert sizes == [["placeholder", "data", sizes[0][2]], ["preview", "blob", 320]], sizes
    assert 0 < sizes[0][2] <= 32, sizes  # a ThumbHash is at most 32 px
    assert "4000 × 3000" in row.inner_text()
    # ...and the Dashboard shows the same preview, while the upload is held
    # at its start: nothing has reached the bucket.
    state = page.evaluate(
        "() => window.pixport.uppy.getFiles().map(f => [f.preview || '', f.progress.uploadComplete])")
    assert len(state) == 1 and state[0][0].startswith("blob:") and state[0][1] is False, state
    assert page.locator(f"li.local[data-file='p12mp.jpg'] img.preview").get_attribute("src") == state[0][0]
    shots = state_dir() / "browser-device"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=shots / "preview-before-upload.png", full_page=True)
    w.release()
    iid = w.uploaded("p12mp.jpg")
    # Not opted in: the bytes stored are the bytes picked.
    data = photo.read_bytes()
    w.sent_once(1)
    assert hashlib.sha256(stored(s3, iid)).hexdigest() == hashlib.sha256(data).hexdigest()
    assert ready(worker, iid)["bytes"] == len(data)
    w.close()


def test_opted_in_a_48mp_photo_is_shrunk_before_sending_and_still_checked(worker, browser, photos, s3):
    w = Walk(browser, worker)
    page = w.page
    page.locator("#shrink").check()
    assert page.evaluate("() => localStorage.getItem('pixport.shrink')") == "on"
    page.reload()  # remembered in this browser; the token kept for the tab
    page.wait_for_function("() => window.pixport?.local")
    assert page.locator("#shrink").is_checked()
    photo = photos / "p48mp.jpg"
    # A phone portrait stored 6000 x 4000 with EXIF orientation 6: shrunk
    # upright, since the resizer applies the orientation to the pixels.
    portrait = classes.ensure(sizes=("24mp",)) / "24mp" / classes.file_name("jpeg-portrait-exif6", "24mp")
    with Image.open(photo) as im:
        assert im.size == (8000, 6000)
    with Image.open(portrait) as im:
        assert im.size == (6000, 4000) and im.getexif()[0x0112] == 6
    w.pick(photo, portrait)
    # Upload at once: the preprocessor waits for the shrinks.
    w.upload()
    for path, size in ((photo, "4096 × 3072"), (portrait, "2730 × 4095")):
        row = page.locator(f"li.local[data-file='{path.name}']")
        row.and_(page.locator("[data-state='shrunk']")).wait_for(timeout=ms(180))
        assert re.search(f"sending {size}", row.inner_text()), row.inner_text()
    page.screenshot(path=state_dir() / "browser-device" / "shrunk-before-upload.png", full_page=True)
    w.release()
    sent = {}
    # 48 MP to 12.6: under half the bytes; 24 MP to 11.2: under 70 %.
    for path, size, share in ((photo, (4096, 3072), 0.5), (portrait, (2730, 4095), 0.7)):
        iid = w.uploaded(path.name)
        data = stored(s3, iid)
        sent[path.name] = len(data)
        # Fewer bytes went over the wire, and that is what is stored: a JPEG
        # of 4096 px on its long edge, which the server decoded and resized
        # as any other upload.
        assert len(data) < path.stat().st_size * share, (len(data), path.stat().st_size)
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "JPEG" and im.size == size, (path.name, im.size)
            assert not im.getexif(), "the shrunk copy carries no metadata"
        img = ready(worker, iid)
        assert img["bytes"] == len(data) and img["file_name"] == path.name, img
        assert img["width"] == size[0] and img["height"] == size[1], img
    w.sent_once(2)
    # Unticked, the choice is forgotten.
    page.locator("#shrink").uncheck()
    assert page.evaluate("() => localStorage.getItem('pixport.shrink')") is None
    w.close()
