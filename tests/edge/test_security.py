"""The security review's holes (issue #13), each through wrangler dev and the
local stack: originals never behind the public base, rows only their owner
may see, no internal detail in public bodies, /echo off outside local
development, per-token quotas and the burst limit (wrangler.toml's
`[[ratelimits]]` rule, which wrangler dev enforces as production does)."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
import time
import tomllib

import pytest
import requests
from PIL import Image

from support import budget, wait_until

from .test_api import assert_error, jpeg
from .workerctl import ROOT, Worker

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PUBLIC_BASE = "https://cdn.pixport.test"
# Fresh tokens per run: quotas and the rate limiter count per token, so no
# earlier run or other test shares their counts.
OWNER, OTHER, COUNTED, SIZED, BURST, CALM, RACER, CROWD, TOMB = (f"sec-{secrets.token_hex(8)}" for _ in range(9))
MAX_IMAGES = 2
MAX_BYTES = 60_000


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def owner_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def new_id() -> str:
    ms = int(time.time() * 1000)
    head = "".join(CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(10)))
    return head + "".join(random.choice(CROCKFORD) for _ in range(16))


@pytest.fixture(scope="module")
def hardened(stack):
    """A worker configured as production: a public base URL for variants,
    echo off, small quotas; tokens of its own."""
    w = Worker({
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "ECHO_ENABLED": "false",
        "MAX_IMAGES_PER_OWNER": str(MAX_IMAGES),
        "MAX_BYTES_PER_OWNER": str(MAX_BYTES),
        "API_TOKENS": ",".join(["local-dev-token", OWNER, OTHER, COUNTED, SIZED, BURST, CALM, RACER, CROWD, TOMB]),
    }).start()
    yield w
    w.stop()


def post_image(w, token: str, data: bytes, **fields):
    return requests.post(w.url + "/images", files={"file": ("p.jpg", data, "image/jpeg")}, data=fields,
                         headers=auth(token), timeout=60)


def direct(w, token: str, size: int, fill: bytes = b"x"):
    """Declares `size` bytes of `fill` (its checksum) for a direct upload."""
    sha = base64.b64encode(hashlib.sha256(fill * size).digest()).decode()
    return requests.post(w.url + "/uploads", json={"content_type": "image/jpeg", "bytes": size, "sha256": sha},
                         headers=auth(token), timeout=30)


def plant(sql, token: str, status: str, failure_reason: str | None = None) -> str:
    id_ = new_id()
    sql.rows("INSERT INTO images (id, owner, status, tags, extra, content_type, original_key, failure_reason) "
             "VALUES (:id, :owner, :status, '[]', '{}', 'image/jpeg', :key, :reason)",
             id=id_, owner=owner_of(token), status=status, key=f"originals/{id_}", reason=failure_reason)
    return id_


# 1. Originals are only ever presigned.

def test_original_url_is_presigned_whatever_the_public_base(hardened, stack):
    r = post_image(hardened, OWNER, jpeg(700, 500))
    assert r.status_code == 201, r.text
    id_ = r.json()["id"]
    for body in (r.json(), requests.get(f"{hardened.url}/images/{id_}", headers=auth(OWNER), timeout=10).json()):
        url = body["original_url"]
        assert not url.startswith(PUBLIC_BASE), url
        assert url.startswith(f"http://{stack['PIXPORT_S3_ADDR']}/") and "X-Amz-Signature=" in url, url
    assert requests.get(url, timeout=10).status_code == 200
    # The variants, once made, are what the public base serves.
    def settled():
        img = requests.get(f"{hardened.url}/images/{id_}", timeout=budget(10)).json()
        return img if img["status"] != "pending" else None

    img = wait_until(settled, 180, f"the resize of {id_} to settle", interval=0.5)
    assert img["status"] == "ready", img
    assert img["original_url"] is None, "only the owner gets the original"
    assert img["variants"] and all(v["url"].startswith(f"{PUBLIC_BASE}/variants/{id_}/") for v in img["variants"])
    # One URL per width redirects there too, in the format Accept names.
    r = requests.get(f"{hardened.url}/images/{id_}/640", headers={"Accept": "image/jpeg"}, allow_redirects=False,
                     timeout=10)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == f"{PUBLIC_BASE}/variants/{id_}/640.jpg"
    assert "accept" in r.headers["vary"].lower() and "immutable" in r.headers["cache-control"]


def test_template_serves_variants_only_through_the_public_base():
    text = (ROOT / "deploy" / "template.yaml").read_text()
    policy = text[text.index("PublicVariantsPolicy:"):text.index("PublicVariantsDistribution:")]
    assert "/variants/*" in policy and "/originals" not in policy and "s3:GetObject" in policy


# 5. Hidden rows are their owner's only.

def test_hidden_rows_are_shown_to_their_owner_only(hardened, sql):
    hidden = {s: plant(sql, OWNER, s) for s in ("uploading", "failed", "deleting")}
    for status, id_ in hidden.items():
        for headers in ({}, auth(OTHER)):
            assert_error(requests.get(f"{hardened.url}/images/{id_}", headers=headers, timeout=10), 404, "not_found")
        mine = requests.get(f"{hardened.url}/images/{id_}", headers=auth(OWNER), timeout=10)
        assert mine.status_code == 200 and mine.json()["status"] == status
        for headers in ({}, auth(OTHER)):
            assert_error(requests.get(f"{hardened.url}/images/{id_}/640", headers=headers, timeout=10), 404,
                         "not_found")
        assert_error(requests.get(f"{hardened.url}/images/{id_}/640", headers=auth(OWNER), timeout=10), 409,
                     "not_ready")
        listed = lambda headers: {i["id"] for i in requests.get(  # noqa: E731
            hardened.url + "/images", params={"status": status, "limit": 100}, headers=headers, timeout=10
        ).json()["items"]}
        assert id_ not in listed({}) and id_ not in listed(auth(OTHER))
        assert id_ in listed(auth(OWNER))
    newest = lambda headers: {i["id"] for i in requests.get(  # noqa: E731
        hardened.url + "/images", params={"limit": 100}, headers=headers, timeout=10).json()["items"]}
    assert not set(hidden.values()) & newest({})
    assert newest(auth(OWNER)) & set(hidden.values()) == {hidden["failed"]}


# 6. Internal detail stays in the logs.

def test_failure_reason_is_a_code_and_a_fixed_message(hardened, sql):
    leaky = ("store: S3 403 AccessDenied https://pixport-images-123456789012-eu-west-1.s3.amazonaws.com/"
             "originals/x (request id 9F2A)")
    id_ = plant(sql, OWNER, "failed", leaky)
    r = requests.get(f"{hardened.url}/images/{id_}", headers=auth(OWNER), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["failure_reason"] == "internal: the image could not be processed"
    assert "123456789012" not in r.text and "amazonaws" not in r.text


def test_patch_racing_a_delete_is_404_not_the_databases_message(hardened, sql):
    r = post_image(hardened, RACER, jpeg(64, 48), tags="a,b")
    assert r.status_code == 201, r.text
    id_ = r.json()["id"]
    env = sql.env
    ids = dict(resourceArn=env["PIXPORT_DB_CLUSTER_ARN"], secretArn=env["PIXPORT_DB_SECRET_ARN"],
               database=env["PIXPORT_DB_NAME"])
    # Hold the row as a DELETE in flight would, let the PATCH run into it,
    # then delete the row and let the PATCH go on.
    tx = sql.client.begin_transaction(**ids)["transactionId"]
    param = [{"name": "id", "value": {"stringValue": id_}}]
    sql.client.execute_statement(**ids, transactionId=tx, sql="SELECT id FROM images WHERE id = :id FOR UPDATE",
                                 parameters=param)
    out = {}
    t = threading.Thread(target=lambda: out.update(r=requests.patch(
        f"{hardened.url}/images/{id_}", json={"tags": ["c"]}, headers=auth(RACER), timeout=budget(120))))
    t.start()
    # The PATCH's own `SELECT ... FOR UPDATE` (edge/src/db.rs) waiting on our
    # lock, seen in MariaDB's process list (the app user sees its own
    # connections): only then is the row deleted under it.
    wait_until(lambda: sql.rows(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
        "AND INFO LIKE 'SELECT status FROM images WHERE id = % FOR UPDATE'")[0]["n"] > 0
        or "r" in out, 60, "the PATCH to wait on the row lock", interval=0.05)
    assert "r" not in out, f"the PATCH answered before the row was deleted: {out['r'].text}"
    sql.client.execute_statement(**ids, transactionId=tx, sql="DELETE FROM images WHERE id = :id", parameters=param)
    sql.client.commit_transaction(resourceArn=ids["resourceArn"], secretArn=ids["secretArn"], transactionId=tx)
    t.join(budget(120))
    assert_error(out["r"], 404, "not_found")
    assert "foreign key" not in out["r"].text.lower()


# 8. /echo is for local development only.

def test_echo_is_off_in_production_config_and_needs_a_token_when_on(hardened, worker):
    assert tomllib.loads((ROOT / "wrangler.toml").read_text())["vars"]["ECHO_ENABLED"] == "false"
    form = {"files": {"f": ("x", b"123")}, "timeout": 10}
    assert_error(requests.post(hardened.url + "/echo", headers=auth(OWNER), **form), 404, "no_route")
    assert_error(requests.post(worker.url + "/echo", **form), 401, "unauthorized")
    assert requests.post(worker.url + "/echo", headers=auth("local-dev-token"), **form).status_code == 200


# 9. Quotas and the burst limit per token.

def test_image_quota_holds_for_both_upload_paths(hardened, sql):
    assert post_image(hardened, COUNTED, jpeg(32, 32)).status_code == 201
    assert direct(hardened, COUNTED, 1000).status_code == 201
    assert_error(post_image(hardened, COUNTED, jpeg(32, 32)), 429, "image_quota_exceeded")
    assert_error(direct(hardened, COUNTED, 1000), 429, "image_quota_exceeded")
    rows = sql.rows("SELECT COUNT(*) AS n FROM images WHERE owner = :o", o=owner_of(COUNTED))
    assert rows[0]["n"] == MAX_IMAGES
    # Another token's quota is its own.
    assert direct(hardened, OTHER, 1000).status_code == 201


def test_uploads_racing_for_the_last_slot_never_pass_the_quota(hardened, sql):
    # Different bytes each: the same checksum declared at once is held by one
    # declaration (409 `duplicate_in_progress` for the others), and which of
    # the two checks a racer meets first would decide its answer.
    assert direct(hardened, CROWD, 1000, b"a").status_code == 201
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: direct(hardened, CROWD, 1000, bytes([ord("b") + n])), range(8)))
    codes = sorted(r.status_code for r in answers)
    assert set(codes) <= {201, 429}, [r.text for r in answers]
    assert codes.count(201) <= MAX_IMAGES - 1, codes
    rows = sql.rows("SELECT COUNT(*) AS n FROM images WHERE owner = :o", o=owner_of(CROWD))
    assert rows[0]["n"] <= MAX_IMAGES


def test_byte_quota_holds_for_both_upload_paths(hardened, sql):
    assert direct(hardened, SIZED, MAX_BYTES - 10_000).status_code == 201
    assert_error(direct(hardened, SIZED, 10_001), 413, "storage_quota_exceeded")
    noise = Image.frombytes("RGB", (200, 200), random.Random(9).randbytes(200 * 200 * 3))
    buf = io.BytesIO()
    noise.save(buf, "JPEG", quality=90)
    big = buf.getvalue()
    assert 10_000 < len(big) < MAX_BYTES
    assert_error(post_image(hardened, SIZED, big), 413, "storage_quota_exceeded")
    rows = sql.rows("SELECT COUNT(*) AS n FROM images WHERE owner = :o", o=owner_of(SIZED))
    assert rows[0]["n"] == 1


def test_a_deleted_upload_whose_put_is_still_valid_counts_in_the_quota(hardened, sql):
    """A DELETE before the client's PUT leaves a tombstone: the PUT may still
    store the original, so the image keeps its place in the quota until the
    sweep removes it after the URL expired. Deleting and uploading again
    cannot pile up objects no quota sees."""
    first = direct(hardened, TOMB, 1000)
    assert first.status_code == 201, first.text
    assert direct(hardened, TOMB, 1000).status_code == 201
    iid = first.json()["image"]["id"]
    assert requests.delete(f"{hardened.url}/images/{iid}", headers=auth(TOMB), timeout=30).status_code == 204
    assert_error(direct(hardened, TOMB, 1000), 429, "image_quota_exceeded")
    put = first.json()["upload"]
    assert requests.put(put["url"], data=b"x" * 1000, headers=put["headers"], timeout=30).status_code == 200
    assert sql.rows("SELECT status FROM images WHERE id = :id", id=iid) == [{"status": "deleting"}]


def test_burst_of_writes_per_token_is_429_with_retry_after(hardened):
    rule = tomllib.loads((ROOT / "wrangler.toml").read_text())["ratelimits"][0]
    limit = rule["simple"]["limit"]
    # Cheap writes (an id that cannot exist is refused before any I/O) from
    # several connections at once, until one is refused: more than `limit`
    # fit one window however slow each request is on this machine, and a
    # window that turns over mid-burst only lets more through.
    stop, lock = threading.Event(), threading.Lock()
    codes: list[int] = []
    refusals: list[requests.Response] = []

    def writer() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                with lock:
                    if len(codes) >= 20 * limit:
                        return
                r = session.patch(f"{hardened.url}/images/nope", json={}, headers=auth(BURST), timeout=budget(30))
                with lock:
                    codes.append(r.status_code)
                    if r.status_code == 429:
                        refusals.append(r)
                        stop.set()

    with ThreadPoolExecutor(8) as pool:
        for f in [pool.submit(writer) for _ in range(8)]:
            f.result()
    allowed = codes.count(404)
    assert set(codes) <= {404, 429}, sorted(set(codes))
    assert refusals, f"{allowed} writes in a burst, none refused"
    assert allowed >= limit
    refused = refusals[0]
    assert_error(refused, 429, "rate_limited")
    assert 0 < int(refused.headers["retry-after"]) <= rule["simple"]["period"]
    s = requests.Session()
    # Per token: another token is not held back, and reads are not counted.
    assert s.patch(f"{hardened.url}/images/nope", json={}, headers=auth(CALM), timeout=10).status_code == 404
    assert s.get(f"{hardened.url}/images/nope", headers=auth(BURST), timeout=10).status_code == 404
