"""The security review's holes (issue #13), each through wrangler dev and the
local stack: originals never behind the public base, rows only their owner
may see, no internal detail in public bodies, /echo off outside local
development, per-token quotas and the burst limit (wrangler.toml's
`[[ratelimits]]` rule, which wrangler dev enforces as production does)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
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
SIGNER, PARTS, CHUNKED, HOOKER, READER, ROWS = (f"sec-{secrets.token_hex(8)}" for _ in range(6))
PRIVATE_A, PRIVATE_B = (f"sec-{secrets.token_hex(8)}" for _ in range(2))
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
        "API_TOKENS": ",".join(["local-dev-token", OWNER, OTHER, COUNTED, SIZED, BURST, CALM, RACER, CROWD, TOMB,
                                SIGNER, PARTS, CHUNKED, HOOKER, READER]),
        "WEBHOOK_ALLOW_PRIVATE": "false",
    }).start()
    yield w
    w.stop()


def ratelimit_rule(name: str) -> dict:
    rules = tomllib.loads((ROOT / "wrangler.toml").read_text())["ratelimits"]
    return next(r for r in rules if r["name"] == name)


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


# 1. Originals are the owner's only, never under the public base.

def test_original_is_the_owners_only_whatever_the_public_base(hardened, stack):
    data = jpeg(700, 500)
    r = post_image(hardened, OWNER, data)
    assert r.status_code == 201, r.text
    id_ = r.json()["id"]
    for body in (r.json(), requests.get(f"{hardened.url}/images/{id_}", headers=auth(OWNER), timeout=10).json()):
        url = body["original_url"]
        assert url == f"{hardened.url}/images/{id_}/original", url
    got = requests.get(url, headers=auth(OWNER), timeout=10)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["cache-control"] == "private, no-store"
    # Anyone else, with a token or none, is told the id has no original.
    assert_error(requests.get(url, timeout=10), 401, "unauthorized")
    assert_error(requests.get(url, headers=auth(OTHER), timeout=10), 404, "not_found")
    # The variants, once made, are what the public base serves.
    def settled():
        img = requests.get(f"{hardened.url}/images/{id_}", timeout=budget(10)).json()
        return img if img["status"] != "pending" else None

    img = wait_until(settled, 180, f"the resize of {id_} to settle", interval=0.5)
    assert img["status"] == "ready", img
    assert "original_url" not in img, "only the owner gets the original"
    assert img["variants"] and all(v["url"].startswith(f"{PUBLIC_BASE}/variants/{id_}/") for v in img["variants"])
    # One URL per width redirects there too, in the format Accept names.
    r = requests.get(f"{hardened.url}/images/{id_}/640", headers={"Accept": "image/jpeg"}, allow_redirects=False,
                     timeout=10)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == f"{PUBLIC_BASE}/variants/{id_}/640.jpg"
    assert "accept" in r.headers["vary"].lower() and "immutable" in r.headers["cache-control"]


def test_template_serves_variants_only_through_the_public_base():
    text = (ROOT / "deploy" / "template.yaml").read_text()
    policy = text[text.index("ImagesBucketPolicy:"):text.index("PublicVariantsDistribution:")]
    # The bucket's one policy: the CDN's grant (with PublicVariants) follows the TLS-only Deny.
    cdn = policy[policy.index("Sid: CdnReadsVariantsOnly"):]
    assert "/variants/*" in cdn and "/originals" not in cdn and "s3:GetObject" in cdn


# 5. Hidden rows are their owner's only.

def test_hidden_rows_are_shown_to_their_owner_only(hardened, sql):
    hidden = {s: plant(sql, OWNER, s) for s in ("uploading", "failed", "deleting")}
    for status, id_ in hidden.items():
        for headers in ({}, auth(OTHER)):
            assert_error(requests.get(f"{hardened.url}/images/{id_}", headers=headers, timeout=10), 404, "not_found")
        mine = requests.get(f"{hardened.url}/images/{id_}", headers=auth(OWNER), timeout=10)
        if status == "deleting":
            # Deleted: gone for its owner too (its row may stay as a tombstone).
            assert_error(mine, 404, "not_found")
        else:
            assert mine.status_code == 200 and mine.json()["status"] == status
        for headers in ({}, auth(OTHER)):
            assert_error(requests.get(f"{hardened.url}/images/{id_}/640", headers=headers, timeout=10), 404,
                         "not_found")
        variant = requests.get(f"{hardened.url}/images/{id_}/640", headers=auth(OWNER), timeout=10)
        if status == "deleting":
            # Not "not ready": a client told to come back would wait for ever.
            assert_error(variant, 404, "not_found")
        else:
            assert_error(variant, 409, "not_ready")
        listed = lambda headers: {i["id"] for i in requests.get(  # noqa: E731
            hardened.url + "/images", params={"status": status, "limit": 100}, headers=headers, timeout=10
        ).json()["items"]}
        assert id_ not in listed(auth(OTHER))
        # A deleted image is not listed to its owner either.
        assert (id_ in listed(auth(OWNER))) == (status != "deleting")
    newest = lambda headers: {i["id"] for i in requests.get(  # noqa: E731
        hardened.url + "/images", params={"limit": 100}, headers=headers, timeout=10).json()["items"]}
    assert not set(hidden.values()) & newest(auth(OTHER))
    assert newest(auth(OWNER)) & set(hidden.values()) == {hidden["failed"]}


# 8 (review 2). Privacy: a list is its owner's; a public image shows how to
# show it and nothing of its owner; no answer carries a credential.

PUBLIC_FIELDS = {"id", "status", "visibility", "content_type", "format", "width", "height", "variants", "srcset",
                 "placeholder", "created_at", "updated_at"}
OWNER_FIELDS = {"title", "description", "tags", "extra", "file_name", "bytes", "checksum_sha256", "original_url",
                "failure_reason", "recipe"}


@pytest.fixture(scope="module")
def plain(stack):
    """A worker as deployed by default: no public base URL, so the worker
    delivers variants itself."""
    w = Worker({"API_TOKENS": ",".join([PRIVATE_A, PRIVATE_B]), "ECHO_ENABLED": "false"}).start()
    yield w
    w.stop()


def test_reads_show_each_owner_their_own_and_everyone_no_more(plain, stack):
    a = post_image(plain, PRIVATE_A, jpeg(700, 500), title="a's", description="words of a", tags="t1", camera="X")
    b = post_image(plain, PRIVATE_B, jpeg(640, 480), title="b's")
    assert a.status_code == 201 and b.status_code == 201, (a.text, b.text)
    a_id, b_id = a.json()["id"], b.json()["id"]

    def ready():
        img = requests.get(f"{plain.url}/images/{a_id}", headers=auth(PRIVATE_A), timeout=budget(10)).json()
        return img if img["status"] in ("ready", "failed") else None

    mine = wait_until(ready, 180, f"the resize of {a_id}", interval=0.5)
    assert mine["status"] == "ready", mine
    assert set(mine) == PUBLIC_FIELDS | OWNER_FIELDS
    assert (mine["title"], mine["description"], mine["extra"]) == ("a's", "words of a", {"camera": "X"})

    # No token, no list; each token lists its own images only.
    assert_error(requests.get(plain.url + "/images", timeout=10), 401, "unauthorized")
    answers = []
    for token, own in ((PRIVATE_A, a_id), (PRIVATE_B, b_id)):
        r = requests.get(plain.url + "/images", params={"limit": 100}, headers=auth(token), timeout=10)
        answers.append(r.text)
        assert [i["id"] for i in r.json()["items"]] == [own]

    # Anyone else, with another owner's token or none, gets how to show it.
    for headers in ({}, auth(PRIVATE_B)):
        r = requests.get(f"{plain.url}/images/{a_id}", headers=headers, timeout=10)
        answers.append(r.text)
        public = r.json()
        assert set(public) == PUBLIC_FIELDS, public
        assert public["variants"] == mine["variants"] and public["srcset"] == mine["srcset"]

    # No answer carries the worker's access key id, a signature or the bucket.
    answers.append(json.dumps(mine))
    for text in answers:
        for secret in (stack["PIXPORT_ACCESS_KEY_ID"], "X-Amz-", stack["PIXPORT_BUCKET"], stack["PIXPORT_S3_ADDR"]):
            assert secret not in text, (secret, text[:500])

    # The URLs handed out are the worker's own, stable and cacheable, and
    # answer anyone with the stored variant in the format they name.
    for v in mine["variants"]:
        assert v["url"].startswith(f"{plain.url}/images/{a_id}/{v['width']}?format="), v
        got = requests.get(v["url"], headers={"Accept": "image/avif"}, timeout=30)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == v["content_type"] and len(got.content) == v["bytes"]
        assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "vary" not in got.headers
    assert requests.get(mine["variants"][0]["url"] + "&v=2", timeout=10).status_code == 400


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
    # The PATCH's own UPDATE of the row (edge/src/adapters/dataapi, which
    # locks it for the PATCH's transaction) waiting on our lock, seen in
    # MariaDB's process list (the app user sees its own connections): only
    # then is the row deleted under it.
    wait_until(lambda: sql.rows(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
        "AND INFO LIKE 'UPDATE images SET title = %'")[0]["n"] > 0
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
    # Other bytes each time: identical declarations would meet the first's
    # checksum hold (409) before the quota.
    assert direct(hardened, TOMB, 1000, fill=b"y").status_code == 201
    iid = first.json()["image"]["id"]
    assert requests.delete(f"{hardened.url}/images/{iid}", headers=auth(TOMB), timeout=30).status_code == 204
    assert_error(direct(hardened, TOMB, 1000, fill=b"z"), 429, "image_quota_exceeded")
    put = first.json()["upload"]
    assert requests.put(put["url"], data=b"x" * 1000, headers=put["headers"], timeout=30).status_code == 200
    assert sql.rows("SELECT status FROM images WHERE id = :id", id=iid) == [{"status": "deleting"}]


def test_burst_of_writes_per_token_is_429_with_retry_after(hardened):
    rule = ratelimit_rule("WRITE_LIMITER")
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


def burst(w, token: str, call) -> tuple[int, requests.Response | None]:
    """Calls `call(session, token)` up to three times the writes limit, fast;
    how many went through before the first 429, and that 429."""
    limit = ratelimit_rule("WRITE_LIMITER")["simple"]["limit"]
    s = requests.Session()
    for allowed in range(3 * limit):
        r = call(s, token)
        if r.status_code == 429:
            return allowed, r
    return 3 * limit, None


@pytest.mark.parametrize("token, path", [
    # The single-PUT signing route inserts a row per call; a declaration
    # refused before any row (no accepted type) is just as counted.
    (SIGNER, "/s3/params?type=text/plain"),
    # Part signing presigns a PUT into the bucket.
    (PARTS, "/s3/multipart/u/1?key=originals/nope"),
])
def test_gets_that_write_are_counted_as_writes(hardened, token, path):
    limit = ratelimit_rule("WRITE_LIMITER")["simple"]["limit"]
    allowed, refused = burst(hardened, token, lambda s, t: s.get(hardened.url + path, headers=auth(t), timeout=10))
    assert refused is not None, f"{allowed} calls of GET {path} in a burst, none refused"
    assert allowed >= limit
    assert_error(refused, 429, "rate_limited")


def test_a_burst_of_s3_params_creates_no_more_rows_than_the_limit(read_limited, sql):
    """The report: GET /s3/params, called in a row, made an `uploading` row
    each time, unlimited. Now the writes limit stops it like any write."""
    limit = ratelimit_rule("WRITE_LIMITER")["simple"]["limit"]
    params = {"type": "image/jpeg", "filename": "x.jpg", "metadata[size]": "1000"}
    allowed, refused = burst(read_limited, ROWS, lambda s, t: s.get(
        read_limited.url + "/s3/params", params=params, headers=auth(t), timeout=10))
    assert refused is not None, f"{allowed} GET /s3/params in a burst, none refused"
    assert_error(refused, 429, "rate_limited")
    made = sql.rows("SELECT COUNT(*) AS n FROM images WHERE owner = :o AND status = 'uploading'",
                    o=owner_of(ROWS))[0]["n"]
    assert made == allowed and limit <= made < 3 * limit, (made, allowed)


# 12 (d). Reads are limited per client address, writes per token.

@pytest.fixture(scope="module")
def read_limited(stack):
    """A worker whose READ_LIMITER allows 40 per 10 s, so a test reaches it
    on a slow machine; the rule is otherwise wrangler.toml's."""
    w = Worker({"API_TOKENS": f"local-dev-token,{READER},{ROWS}"}, ratelimits={"READ_LIMITER": 40}).start()
    yield w
    w.stop()


def test_anonymous_reads_are_limited_per_client(read_limited):
    rule = ratelimit_rule("READ_LIMITER")
    assert rule["simple"]["period"] == 10 and rule["simple"]["limit"] >= 1000, "generous in production"
    s = requests.Session()
    refused = None
    for allowed in range(3 * 40):
        r = s.get(read_limited.url + "/images/nope", timeout=10)
        if r.status_code == 429:
            refused = r
            break
        assert r.status_code == 404, r.text
    assert refused is not None, "anonymous reads in a burst, none refused"
    # The window also holds the fixture's own readiness polls (`/healthz`,
    # anonymous, from this address), so a few fewer than 40 may pass.
    assert allowed >= 30
    assert_error(refused, 429, "rate_limited")
    assert 0 < int(refused.headers["retry-after"]) <= 10
    # A token's reads are its own count, not the address's.
    assert s.get(read_limited.url + "/images/nope", headers=auth(READER), timeout=10).status_code == 404


# 12 (a). The byte quota holds for a body without a length.

def chunked_form(data: bytes, boundary: str = "pixportchunked"):
    """A multipart body sent as a generator: requests sends it chunked, with
    no Content-Length."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode()

    def body():
        yield head
        for i in range(0, len(data), 8192):
            yield data[i:i + 8192]
        yield f"\r\n--{boundary}--\r\n".encode()

    return body(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def noise_jpeg(side: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.randbytes(side * side * 3)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_chunked_upload_past_the_byte_quota_is_refused_and_undone(hardened, sql, s3, stack):
    small = noise_jpeg(60)
    assert len(small) < MAX_BYTES // 4
    body, headers = chunked_form(small)
    r = requests.post(hardened.url + "/images", data=body, headers={**headers, **auth(CHUNKED)}, timeout=60)
    assert r.status_code == 201, r.text
    big = noise_jpeg(300)
    assert len(big) > MAX_BYTES
    body, headers = chunked_form(big)
    r = requests.post(hardened.url + "/images", data=body, headers={**headers, **auth(CHUNKED)}, timeout=60)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_error(r, 413, "storage_quota_exceeded")
    rows = sql.rows("SELECT id, bytes FROM images WHERE owner = :o", o=owner_of(CHUNKED))
    assert [row["bytes"] for row in rows] == [len(small)], rows
    sizes = [o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack["PIXPORT_BUCKET"], Prefix="originals/") for o in page.get("Contents", [])]
    assert len(big) not in sizes, "the refused original is removed"


# 9. Webhook endpoints are public HTTPS URLs.

def test_webhook_endpoints_must_be_public_https(hardened):
    url = hardened.url + "/webhook"
    for bad in ["http://169.254.169.254/latest/meta-data/", "https://169.254.169.254/", "http://[fe80::1]/",
                "https://[fe80::1]/", "https://127.0.0.1/", "https://2130706433/", "https://0x7f.1/",
                "https://[::ffff:127.0.0.1]/", "https://10.1.2.3/", "https://100.64.0.1/", "https://[fd00::1]/",
                "https://localhost/", "https://user:secret@example.org/", "http://example.org/hook",
                "https://134744072/"]:
        assert_error(requests.put(url, json={"url": bad}, headers=auth(HOOKER), timeout=10), 400, "invalid_field")
    assert_error(requests.get(url, headers=auth(HOOKER), timeout=10), 404, "not_found")
    ok = requests.put(url, json={"url": "https://Example.ORG/hook"}, headers=auth(HOOKER), timeout=10)
    assert ok.status_code == 200, ok.text
    assert ok.json()["url"] == "https://example.org/hook"


# 7. Types: images and the page.

def test_every_answer_says_nosniff_and_variants_carry_their_formats_type(worker):
    r = post_image(worker, "local-dev-token", jpeg(700, 500))
    assert r.status_code == 201, r.text
    id_ = r.json()["id"]
    assert r.headers["x-content-type-options"] == "nosniff"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        img = requests.get(f"{worker.url}/images/{id_}", timeout=10).json()
        if img["status"] != "pending":
            break
        time.sleep(0.5)
    assert img["status"] == "ready", img
    for head in (False, True):
        v = (requests.head if head else requests.get)(f"{worker.url}/images/{id_}/320",
                                                       headers={"Accept": "image/jpeg"}, timeout=30)
        assert v.status_code == 200, v.text
        assert v.headers["content-type"] == "image/jpeg"
        assert v.headers["x-content-type-options"] == "nosniff"
    assert requests.get(f"{worker.url}/images/nope", timeout=10).headers["x-content-type-options"] == "nosniff"


def test_the_page_has_a_content_security_policy_naming_the_bucket(worker, stack):
    r = requests.get(worker.url + "/", timeout=10)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    policy = {d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split(";") if d.strip()}
    s3_origin = f"http://{stack['PIXPORT_S3_ADDR']}"
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", s3_origin]
    # Thumbnails come from the worker's delivery route, not the bucket.
    assert policy["img-src"] == ["'self'", "blob:", "data:"]
    assert policy["frame-ancestors"] == ["'none'"]
    # Its one Web Worker is its own; the page compiles no wasm itself.
    assert policy["worker-src"] == ["'self'"]
    assert "'wasm-unsafe-eval'" not in policy["script-src"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script src=\"/app.js\">" in r.text
    # The worker runs resizer.wasm under a policy of its own: wasm may be
    # compiled there (not JavaScript eval), and it fetches only from here.
    ws = requests.get(worker.url + "/resize-worker.js", timeout=10)
    assert ws.status_code == 200 and "javascript" in ws.headers["content-type"]
    wpolicy = {d.split()[0]: d.split()[1:] for d in ws.headers["content-security-policy"].split(";") if d.strip()}
    assert wpolicy == {"default-src": ["'none'"], "script-src": ["'self'", "'wasm-unsafe-eval'"],
                       "connect-src": ["'self'"]}, wpolicy
    wasm = requests.get(worker.url + "/resizer.wasm", timeout=30)
    assert wasm.status_code == 200 and wasm.headers["content-type"] == "application/wasm"
    assert wasm.content[:4] == b"\0asm"
    # The page's other files are static assets, typed and nosniff too.
    js = requests.get(worker.url + "/app.js", timeout=10)
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert js.headers["x-content-type-options"] == "nosniff"
