"""The upload page at `/` in a real browser: Debian's chromium, headless,
driven by Playwright, against `wrangler dev` and the local stack (S3, Data
API, the Lambda with resizer.wasm). Uppy talks to the worker's /s3 routes
unchanged and sends the bytes straight to the local S3.

One test walks the page as a user would, in order; each step leaves a
screenshot in $PIXPORT_STATE/browser/ (kept as test artifacts).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from browser.bigphoto import make as make_big_photo
from edge.workerctl import Worker
from support import budget, ports_env, state_dir
from support.issuer import Issuer

# The page signs in with the adopter's identity provider: a JWT of the
# local issuer, good for the whole walk.
ISSUER = Issuer()
TOKEN = ISSUER.token("ec-1", sub="page-user", exp=int(time.time()) + 3 * 3600)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GRANT_SECRET = "a-grant-secret-for-the-page-test-0123456789"
PART = 5 * 1024 * 1024  # Uppy's part size for files under 50 GB

# The one console error a refused file legitimately causes: the browser
# reports the worker's 4xx answer to Uppy's request.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 415")


def chromium() -> str:
    for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or ""):
        if p and os.access(p, os.X_OK):
            return p
    pytest.fail("Debian's chromium is missing: ./run setup installs it (apt-get install chromium)")


@pytest.fixture(scope="module")
def worker(stack):
    w = Worker({**ISSUER.worker_vars(), "GRANT_SECRETS": GRANT_SECRET}).start()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def shots() -> Path:
    d = state_dir() / "browser"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


@pytest.fixture(scope="module")
def files(photos, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("upload")
    text = d / "notes.jpg"
    text.write_text("shopping list: bread, milk, film\n" * 20)
    big = make_big_photo(photos / "p48mp.jpg", photos.parent / "photos-big" / "grain-40mb.jpg")
    return {"photo": photos / "p12mp.jpg", "png": photos / "astronaut.png", "text": text, "big": big}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def ms(seconds: float) -> float:
    """A Playwright timeout (ms): a nominal budget for a cold, loaded 2-core
    machine, scaled by PIXPORT_TEST_TIME_SCALE."""
    return budget(seconds) * 1000


def api_get(worker, iid):
    return requests.get(f"{worker.url}/images/{iid}", headers=AUTH, timeout=10)


def uppy_files(page) -> list[dict]:
    return page.evaluate(
        """() => window.pixport.uppy.getFiles().map(f => ({
            name: f.name, pct: f.progress.percentage, done: !!f.progress.uploadComplete,
            error: f.error || null, id: f.response?.body?.image?.id || null}))"""
    )


def test_upload_page_end_to_end(worker, browser, files, shots):
    console: list[str] = []
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    # Every wait without a timeout of its own (clicks, `wait_for()`).
    context.set_default_timeout(ms(60))
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and console.append(m.text))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    # Every part PUT straight to S3 and its answer: (uploadId, partNumber) -> statuses.
    parts: dict[tuple[str, int], list[int]] = {}
    list_calls: list = []  # the worker's ListParts answers (read once the page is done with them)

    def on_response(resp):
        q = parse_qs(urlparse(resp.url).query)
        if resp.request.method == "PUT" and "partNumber" in q:
            parts.setdefault((q["uploadId"][0], int(q["partNumber"][0])), []).append(resp.status)
        if resp.request.method == "GET" and re.search(r"/s3/multipart/[^/]+\?key=", resp.url):
            list_calls.append(resp)

    page.on("response", on_response)

    # 1. The page, a token.
    doc = page.goto(worker.url + "/")
    assert page.title().startswith("pixport")
    # The page runs under a Content-Security-Policy that names the bucket
    # it sends parts to; a violation would be a console error (checked at
    # the end), so the whole walk below is the policy's test.
    policy = doc.headers["content-security-policy"]
    assert f"connect-src 'self' http://{ports_env()['PIXPORT_S3_ADDR']};" in policy, policy
    assert "default-src 'none'" in policy and "unsafe" not in policy, policy
    page.get_by_label("Sign-in token").fill(TOKEN)
    page.get_by_label("Sign-in token").press("Enter")  # the keyboard submits the form
    page.get_by_text("Signed in for this tab.").wait_for()
    # Kept for the tab (a reload resumes), never in localStorage.
    assert page.evaluate("() => sessionStorage.getItem('pixport.credential')") == TOKEN
    assert page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('pixport.'))") == []
    page.screenshot(path=shots / "01-token.png", full_page=True)

    # 2. Two photos and a text file named .jpg.
    page.locator("input.uppy-Dashboard-input[name='files[]']").first.set_input_files(
        [files["photo"], files["png"], files["text"]]
    )
    page.screenshot(path=shots / "02-picked.png", full_page=True)
    page.locator(".uppy-StatusBar-actionBtn--upload").click()

    refusal = page.locator("#refusals li", has_text="notes.jpg")
    refusal.wait_for(timeout=ms(120))
    assert "unsupported_media_type" in refusal.inner_text(), refusal.inner_text()
    page.wait_for_function(
        """() => window.pixport.uppy.getFiles().filter(f => f.progress.uploadComplete).length === 2""",
        timeout=ms(180),
    )
    done = {f["name"]: f for f in uppy_files(page)}
    assert done["p12mp.jpg"]["pct"] == 100 and done["astronaut.png"]["pct"] == 100, done
    assert done["notes.jpg"]["error"], done
    # Thumbnails: the 320 px variant appears as each turns ready.
    for name in ("p12mp.jpg", "astronaut.png"):
        iid = done[name]["id"]
        card = page.locator(f"li.card[data-id='{iid}']")
        # The shared Lambda's resize (on a cold machine, after its bootstrap
        # compiled the module), then the page's next poll.
        card.locator("img[src]").wait_for(timeout=ms(240))
        page.wait_for_function(
            "id => { const i = document.querySelector(`li.card[data-id='${id}'] img`); return i && i.complete && i.naturalWidth > 0 }",
            arg=iid, timeout=ms(60),
        )
        assert card.get_attribute("data-status") == "ready"
        img = api_get(worker, iid).json()
        assert img["status"] == "ready" and img["file_name"] == name
        w320 = [v for v in img["variants"] if v["width"] == 320 or v["height"] == 320]
        assert w320, img["variants"]
    page.screenshot(path=shots / "03-uploaded.png", full_page=True)

    # 3. The big photo, with a reload in the middle.
    page.evaluate("() => window.pixport.uppy.clear()")
    big = files["big"]
    size = big.stat().st_size
    assert size >= 40 * 1024 * 1024
    n_parts = math.ceil(size / PART)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 6 * 1024 * 1024,
    })
    parts.clear()  # the small files went in parts too
    list_calls.clear()
    page.locator("input.uppy-Dashboard-input[name='files[]']").first.set_input_files([big])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()

    def finished() -> set[tuple[str, int]]:
        return {k for k, st in parts.items() if 200 in st}

    # Polled through the page (its response events are delivered while it
    # waits); the throttle keeps the upload from finishing meanwhile.
    deadline_ms, waited = ms(180), 0
    while len(finished()) < 3 and waited < deadline_ms:
        page.wait_for_timeout(100)
        waited += 100
    before = finished()
    assert 3 <= len(before) < n_parts, f"{len(before)} of {n_parts} parts before the reload"
    page.screenshot(path=shots / "04-big-half-way.png", full_page=True)
    page.reload()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 6 * 1024 * 1024,
    })
    page.locator(".uppy-StatusBar-actionBtn--upload").wait_for(timeout=ms(60))
    page.screenshot(path=shots / "05-restored.png", full_page=True)
    sent_before = {k: len(v) for k, v in parts.items()}
    page.locator(".uppy-StatusBar-actionBtn--upload").click()
    page.wait_for_function(
        """() => window.pixport.uppy.getFiles().some(f => f.progress.uploadComplete && f.response?.body?.image)""",
        timeout=ms(240),
    )
    (bigfile,) = [f for f in uppy_files(page) if f["name"] == big.name]
    assert bigfile["pct"] == 100, bigfile
    upload_id = next(iter(before))[0]
    assert all(k[0] == upload_id for k in parts), "the reload started a new multipart upload"
    assert list_calls, "the resumed upload did not ask the worker for ListParts"
    for key in before:
        assert parts[key] == [200] and sent_before[key] == 1, f"part {key[1]} was sent again: {parts[key]}"
    # A part in flight at the reload may have reached S3 with its answer lost
    # to the unload: ListParts reports it and Uppy rightly does not send it
    # again. Every part is either answered 200 or listed as stored.
    listed = {p["PartNumber"] for r in list_calls for p in r.json()}
    assert {k[1] for k in before} <= listed, (sorted(listed), sorted(before))
    assert {k[1] for k in finished()} | listed == set(range(1, n_parts + 1)), (sorted(finished()), sorted(listed))
    big_id = bigfile["id"]
    card = page.locator(f"li.card[data-id='{big_id}']")
    card.locator("img[src]").wait_for(timeout=ms(300))
    img = api_get(worker, big_id).json()
    assert img["status"] == "ready" and img["bytes"] == size, img
    page.screenshot(path=shots / "06-big-ready.png", full_page=True)

    # 4. Edit, then delete.
    card.get_by_label("Title").fill("Grain at dusk")
    card.get_by_label("Tags").fill("grain, dusk")
    card.get_by_role("button", name="Save").click()
    card.get_by_text("Saved.").wait_for()
    img = api_get(worker, big_id).json()
    assert img["title"] == "Grain at dusk" and img["tags"] == ["grain", "dusk"], img
    page.screenshot(path=shots / "07-edited.png", full_page=True)

    gone = done["astronaut.png"]["id"]
    page.locator(f"li.card[data-id='{gone}']").get_by_role("button", name="Delete astronaut.png").click()
    page.locator(f"li.card[data-id='{gone}']").wait_for(state="detached")
    assert api_get(worker, gone).status_code == 404
    page.screenshot(path=shots / "08-deleted.png", full_page=True)

    # 5. A phone's width: nothing wider than the screen.
    page.set_viewport_size({"width": 360, "height": 740})
    page.wait_for_function("() => window.innerWidth === 360")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    page.screenshot(path=shots / "09-phone.png", full_page=True)

    unexpected = [m for m in console if not EXPECTED_CONSOLE.search(m)]
    assert not unexpected, unexpected
    context.close()


def test_a_grant_link_uploads_one_photo_and_keeps_no_token(worker, browser, files):
    """An owner's server mints a grant and sends its visitor a link with it
    in the fragment: the page uploads one photo with it, shows nothing of
    the owner's, and keeps no long-lived credential anywhere."""
    r = requests.post(worker.url + "/grants", json={"max_bytes": 30_000_000, "title": "From a visitor"},
                      headers=AUTH, timeout=10)
    assert r.status_code == 201, r.text
    grant = r.json()
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(ms(60))
    page = context.new_page()
    page.goto(f"{worker.url}/#grant={grant['grant']}")
    page.get_by_text("Upload grant: one photo.").wait_for()
    # The grant left the address bar at once; nothing went to localStorage.
    assert "grant" not in page.url
    assert page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('pixport.'))") == []
    assert page.get_by_label("Sign-in token").input_value() == ""
    page.locator("input.uppy-Dashboard-input[name='files[]']").first.set_input_files([files["photo"]])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()
    page.wait_for_function(
        """() => window.pixport.uppy.getFiles().filter(f => f.progress.uploadComplete).length === 1""",
        timeout=ms(180),
    )
    uploaded = uppy_files(page)[0]
    assert uploaded["id"] == grant["image_id"], uploaded
    img = api_get(worker, grant["image_id"]).json()
    assert img["title"] == "From a visitor" and img["file_name"] == files["photo"].name, img
    # The grant is spent: its image exists, a second use is refused.
    again = requests.post(worker.url + "/s3/multipart", json={
        "filename": "again.jpg", "type": "image/jpeg", "metadata": {"size": "1000"}},
        headers={"Authorization": f"Bearer {grant['grant']}"}, timeout=10)
    assert again.status_code == 409 and again.json()["error"]["code"] == "grant_used", again.text
    context.close()
