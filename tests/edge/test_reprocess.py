"""Reprocess: images made again with a changed recipe, without a new upload.

The shared stack's Lambda makes every upload here (recipe R1, the tests'
`PIXPORT_VARIANT_FORMATS=auto` at 1920/640/320). A second Lambda runtime
with other widths (800/400: the same function after a redeploy, recipe R2)
then does the queued reprocesses in its scheduled run, invoked here the
way EventBridge invokes it. The worker queues through its routes, and the
operators' command (`scripts/reprocess`) walks them a page at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid

import pytest
import requests

from support import ROOT, budget, free_port, ports_env, wait_until

from .test_api import assert_error, jpeg
from .workerctl import Worker

OWNER_TOKEN = f"reprocess-owner-{uuid.uuid4().hex}"
OTHER_TOKEN = f"reprocess-other-{uuid.uuid4().hex}"
ADMIN_TOKEN = f"reprocess-admin-{uuid.uuid4().hex}"
R1 = "w=1920,640,320;q=82;f=auto"
R2 = "w=800,400;q=82;f=auto"


@pytest.fixture(scope="module")
def rw(stack):
    w = Worker({"API_TOKENS": f"{OWNER_TOKEN},{OTHER_TOKEN},ops:admin={ADMIN_TOKEN}"}).start()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def redeployed(stack, tmp_path_factory):
    """The function after a redeploy with PIXPORT_WIDTHS=800,400: its own
    Runtime API emulator, no S3 notification to it, the template's role."""
    from stack.stackctl import ensure_stack

    s = ensure_stack()
    port, state = free_port(), tmp_path_factory.mktemp("redeployed")
    env = {**os.environ, **ports_env(), "PIXPORT_RUNTIME_API_ADDR": f"127.0.0.1:{port}",
           "PIXPORT_LAMBDA_STATE": str(state), "PIXPORT_WIDTHS": "800,400", "PIXPORT_LAMBDA_SCHEDULE_MS": "0"}
    log = open(state / "runtime.log", "wb")
    boot = s.runtime_status()["bootstrap"]["path"]
    proc = subprocess.Popen([str(s.bin_dir / "pixport-local-runtime"), "--bootstrap", boot],
                            env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (state / "runtime.log").read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{url}/_status", timeout=budget(5)):
                return True
        except OSError:
            return False

    wait_until(up, 60, f"the redeployed Lambda's emulator on {url}", interval=0.05)

    def run() -> dict:
        """One scheduled run, as EventBridge starts it; its result."""
        req = urllib.request.Request(f"{url}/2015-03-31/functions/{s.function_name}/invocations",
                                     data=json.dumps({"action": "redrive"}).encode(), method="POST",
                                     headers={"X-Amz-Invocation-Type": "RequestResponse"})
        with urllib.request.urlopen(req, timeout=budget(300)) as r:
            return json.load(r)["redrive"]

    yield run
    proc.terminate()
    proc.wait(10)
    log.close()


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def ready_image(w, token: str) -> dict:
    r = requests.post(w.url + "/images", files={"file": ("p.jpg", jpeg(2000, 1400), "image/jpeg")},
                      headers=auth(token), timeout=budget(60))
    assert r.status_code == 201, r.text
    id_ = r.json()["id"]

    def settled():
        img = requests.get(f"{w.url}/images/{id_}", headers=auth(token), timeout=budget(10)).json()
        return img if img["status"] in ("ready", "failed") else None

    img = wait_until(settled, 180, f"the resize of {id_}", interval=0.5)
    assert img["status"] == "ready", img
    return img


def objects(s3, bucket: str, prefix: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}


def widths(img: dict) -> set[int]:
    return {v["width"] for v in img["variants"]}


def drain(redeployed, w, ids: set[str]) -> None:
    """Scheduled runs until none of `ids` is queued any more."""
    def done():
        redeployed()
        left = [i for i in ids if requests.get(f"{w.url}/images/{i}", headers=auth(OWNER_TOKEN),
                                               timeout=budget(10)).json().get("recipe") != R2]
        return True if not left else None

    wait_until(done, 600, f"the reprocess of {sorted(ids)}", interval=0.1)


def test_a_changed_recipe_is_applied_to_every_image_without_a_new_upload(rw, redeployed, s3, stack):
    bucket = stack["PIXPORT_BUCKET"]
    mine = [ready_image(rw, OWNER_TOKEN) for _ in range(3)]
    theirs = ready_image(rw, OTHER_TOKEN)
    for img in (*mine, theirs):
        assert img["recipe"] == R1 and widths(img) == {1920, 640, 320}, img
    originals = {img["id"]: s3.head_object(Bucket=bucket, Key=f"originals/{img['id']}")["ETag"] for img in mine}
    old_keys = {img["id"]: objects(s3, bucket, f"variants/{img['id']}/") for img in mine}
    assert all(len(k) == 3 for k in old_keys.values()), old_keys

    # The owner asks for one image; another owner cannot.
    first = mine[0]["id"]
    assert_error(requests.post(f"{rw.url}/images/{first}/reprocess", headers=auth(OTHER_TOKEN),
                               timeout=budget(10)), 404, "not_found")
    r = requests.post(f"{rw.url}/images/{first}/reprocess", headers=auth(OWNER_TOKEN), timeout=budget(10))
    assert r.status_code == 202, r.text
    drain(redeployed, rw, {first})
    img = requests.get(f"{rw.url}/images/{first}", headers=auth(OWNER_TOKEN), timeout=budget(10)).json()
    assert img["status"] == "ready" and widths(img) == {800, 400} and img["recipe"] == R2, img
    keys = objects(s3, bucket, f"variants/{first}/")
    assert len(keys) == len(img["variants"]) == 2 and all(k.count("/") == 3 for k in keys), keys
    assert not keys & old_keys[first], "the old variants are gone"
    got = requests.get(f"{rw.url}/images/{first}/800", headers={"Accept": "image/jpeg"}, timeout=budget(30))
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert_error(requests.get(f"{rw.url}/images/{first}/640", timeout=budget(10)), 404, "no_such_width")

    # Operators: the recipes in use, then the owner's images not made by
    # R2, two per page, through the command; its cursor resumes a walk.
    state = requests.get(f"{rw.url}/admin/reprocess", headers=auth(ADMIN_TOKEN), timeout=budget(10)).json()
    assert {r["recipe"] for r in state["recipes"]} >= {R1, R2}, state
    assert_error(requests.get(f"{rw.url}/admin/reprocess", headers=auth(OWNER_TOKEN), timeout=budget(10)),
                 403, "forbidden")
    owner = requests.get(f"{rw.url}/me", headers=auth(OWNER_TOKEN), timeout=budget(10)).json()["owner"]
    cmd = [sys.executable, str(ROOT / "scripts/reprocess"), "--url", rw.url, "--owner", owner,
           "--except-recipe", R2, "--batch", "1", "--pause", "0"]
    out = subprocess.run(cmd, env={**os.environ, "PIXPORT_ADMIN_TOKEN": ADMIN_TOKEN}, capture_output=True,
                         text=True, timeout=budget(120))
    assert out.returncode == 0, out.stderr
    pages = [json.loads(line) for line in out.stdout.splitlines()]
    assert pages[-1]["next"] is None and pages[-1]["total"] == 2, pages
    assert all(p["next"] for p in pages[:-1]) and len(pages) >= 2, pages
    drain(redeployed, rw, {img["id"] for img in mine})
    for before in mine:
        img = requests.get(f"{rw.url}/images/{before['id']}", headers=auth(OWNER_TOKEN),
                           timeout=budget(10)).json()
        assert widths(img) == {800, 400} and img["recipe"] == R2, img
        keys = objects(s3, bucket, f"variants/{img['id']}/")
        assert len(keys) == len(img["variants"]) == 2, (keys, img["variants"])
        assert not keys & old_keys[img["id"]], "the old variants are gone"
        # The original was only read.
        assert s3.head_object(Bucket=bucket, Key=f"originals/{img['id']}")["ETag"] == originals[img["id"]]
    # Another owner's image was not selected.
    other = requests.get(f"{rw.url}/images/{theirs['id']}", headers=auth(OTHER_TOKEN), timeout=budget(10)).json()
    assert other["recipe"] == R1 and widths(other) == {1920, 640, 320}
    # A rerun finds nothing left to queue.
    again = subprocess.run(cmd, env={**os.environ, "PIXPORT_ADMIN_TOKEN": ADMIN_TOKEN}, capture_output=True,
                           text=True, timeout=budget(120))
    assert json.loads(again.stdout.splitlines()[-1])["total"] == 0, again.stdout


def test_only_ready_images_are_queued(rw):
    assert_error(requests.post(f"{rw.url}/images/01JABCDEFGHJKMNPQRSTVWXYZ0/reprocess", headers=auth(OWNER_TOKEN),
                               timeout=budget(10)), 404, "not_found")
    r = requests.post(f"{rw.url}/admin/reprocess", json={"limit": 0}, headers=auth(ADMIN_TOKEN), timeout=budget(10))
    assert_error(r, 400, "invalid_field")
    r = requests.get(f"{rw.url}/images/01JABCDEFGHJKMNPQRSTVWXYZ0/reprocess", timeout=budget(10))
    assert_error(r, 405, "method_not_allowed")
