"""Who may call, through wrangler dev and the local stack: sign-in JWTs
from a local issuer (keys made per run, its JWKS served on loopback and
signed with PyJWT, a library nobody here wrote), server tokens named with
their owner (rotation keeps every image, webhook and duplicate record),
read-only tokens, and upload grants on the form, direct and browser paths."""

from __future__ import annotations

import base64
import hashlib
import hmac as hmac_
import json
import secrets
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support import wait_until
from support.issuer import AUDIENCE, ISSUER, Issuer

from .test_api import assert_error, jpeg
from .workerctl import Worker

ALICE, ALICE_NEXT, READ_ONLY, BOB, OPS = (f"id-{secrets.token_hex(8)}" for _ in range(5))
GRANT_SECRET = secrets.token_urlsafe(40)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def issuer():
    i = Issuer()
    yield i
    i.stop()


def start(issuer: Issuer, tokens: str) -> Worker:
    return Worker({
        **issuer.worker_vars(),
        "GRANT_SECRETS": GRANT_SECRET,
        "API_TOKENS": tokens,
        "ECHO_ENABLED": "false",
    }).start()


@pytest.fixture(scope="module")
def signin(stack, issuer):
    w = start(issuer, f"alice={ALICE},alice:read={READ_ONLY},{BOB},ops:admin={OPS}")
    yield w
    w.stop()


def upload(w, credential: str, data: bytes | None = None):
    return requests.post(w.url + "/images", files={"file": ("p.jpg", data or jpeg(), "image/jpeg")},
                         headers=auth(credential), timeout=60)


def me(w, credential: str):
    return requests.get(w.url + "/me", headers=auth(credential), timeout=10)


def owner_of_subject(issuer: str, sub: str) -> str:
    return "u-" + hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:40]


def test_a_signed_in_user_is_its_subject_with_every_algorithm(signin, issuer):
    for kid in ("rsa-1", "ec-1", "ed-1"):
        token = issuer.token(kid, sub="alice@example")
        r = me(signin, token)
        assert r.status_code == 200, (kid, r.text)
        assert r.json()["owner"] == owner_of_subject(ISSUER, "alice@example")
        assert r.json()["scopes"] == ["read", "write"]
    # A subject of its own: the stack keeps rows across runs.
    token = issuer.token("ec-1", sub=f"carol-{secrets.token_hex(6)}")
    r = upload(signin, token)
    assert r.status_code == 201, r.text
    listed = requests.get(signin.url + "/images", headers=auth(token), timeout=10).json()["items"]
    assert [i["id"] for i in listed] == [r.json()["id"]]
    # Another subject of the same issuer is another owner.
    other = issuer.token("rsa-1", sub="dave")
    assert requests.get(signin.url + "/images", headers=auth(other), timeout=10).json()["items"] == []


def test_every_broken_rule_is_refused_with_a_clear_401(signin, issuer):
    now = int(time.time())
    cases = {
        "expired": issuer.token(exp=now - 3600),
        "not yet valid": issuer.token(nbf=now + 3600),
        "another audience": issuer.token(aud="another-api"),
        "another issuer": issuer.token(iss="https://evil.example/"),
        "no subject": issuer.token(sub=None),
        "no expiry": issuer.token(exp=None),
    }
    rsa_public = issuer.keys["rsa-1"][1].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    # alg confusion: HMAC keyed with the public key the JWKS publishes.
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 300}).encode()).rstrip(b"=")
    mac = hmac_.new(rsa_public, header + b"." + body, hashlib.sha256).digest()
    cases["HS256 with the public key"] = (header + b"." + body + b"." +
                                          base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
    cases["alg none"] = (base64.urlsafe_b64encode(b'{"alg":"none","kid":"rsa-1"}').rstrip(b"=").decode()
                         + "." + body.decode() + ".")
    good = issuer.token(sub="mallory").split(".")
    tampered = json.loads(base64.urlsafe_b64decode(good[1] + "=="))
    tampered["sub"] = "alice@example"
    cases["tampered payload"] = ".".join(
        [good[0], base64.urlsafe_b64encode(json.dumps(tampered).encode()).rstrip(b"=").decode(), good[2]])
    cases["unknown key"] = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 300},
                                      ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                                      headers={"kid": "ec-unknown"})
    for why, token in cases.items():
        r = requests.get(signin.url + "/images", headers=auth(token), timeout=10)
        assert_error(r, 401, "unauthorized")
        assert "invalid_token" in r.headers.get("www-authenticate", ""), why
        # Never more than the rule: no key material, no claims echoed.
        assert "BEGIN" not in r.text and "alice@example" not in r.text, why


def test_a_rotated_key_is_fetched_once_and_made_up_kids_do_not_hammer_the_issuer(signin, issuer):
    assert me(signin, issuer.token("rsa-1")).status_code == 200
    before = issuer.fetches
    issuer.add("ec-2")
    issuer.published.add("ec-2")
    # The worker fetches again once for the unknown kid (at most every 30 s).
    wait_until(lambda: me(signin, issuer.token("ec-2")).status_code == 200, 90, "the rotated key is found")
    assert issuer.fetches > before
    fetched = issuer.fetches
    forged = [jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 300},
                         ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                         headers={"kid": f"made-up-{n}"}) for n in range(10)]
    for token in forged:
        assert_error(me(signin, token), 401, "unauthorized")
    assert issuer.fetches - fetched <= 1, issuer.fetches - fetched


def test_a_named_token_rotates_without_orphaning_its_images_webhook_or_duplicates(stack, issuer):
    data = jpeg()
    first = start(issuer, f"alice={ALICE}")
    try:
        r = upload(first, ALICE, data)
        assert r.status_code == 201, r.text
        image = r.json()["id"]
        hook = requests.put(first.url + "/webhook", json={"url": "https://hooks.example/pixport"},
                            headers=auth(ALICE), timeout=10)
        assert hook.status_code == 200, hook.text
    finally:
        first.stop()
    # The new token under the same owner; the old one gone.
    second = start(issuer, f"alice={ALICE_NEXT}")
    try:
        assert_error(requests.get(second.url + "/images", headers=auth(ALICE), timeout=10), 401, "unauthorized")
        listed = requests.get(second.url + "/images", headers=auth(ALICE_NEXT), timeout=10).json()["items"]
        assert image in [i["id"] for i in listed]
        assert requests.get(second.url + "/webhook", headers=auth(ALICE_NEXT), timeout=10).json()["secret"] \
            == hook.json()["secret"]
        again = upload(second, ALICE_NEXT, data)
        assert again.status_code == 200 and again.headers.get("pixport-duplicate") == "true", again.text
        assert again.json()["id"] == image
        # A bare token keeps the owner it always had, which /me shows so
        # it can be named and rotated the same way.
        assert me(second, ALICE_NEXT).json()["owner"] == "alice"
    finally:
        second.stop()


def test_a_read_only_token_reads_and_changes_nothing(signin):
    r = upload(signin, ALICE)
    assert r.status_code == 201, r.text
    assert requests.get(signin.url + "/images", headers=auth(READ_ONLY), timeout=10).status_code == 200
    assert_error(upload(signin, READ_ONLY), 403, "forbidden")
    image = r.json()["id"]
    assert_error(requests.delete(f"{signin.url}/images/{image}", headers=auth(READ_ONLY), timeout=10),
                 403, "forbidden")
    assert_error(requests.post(signin.url + "/grants", json={}, headers=auth(READ_ONLY), timeout=10),
                 403, "forbidden")
    assert me(signin, READ_ONLY).json() == {"owner": "alice", "scopes": ["read"], "grant": None}


def grant(w, credential: str, **body) -> dict:
    r = requests.post(w.url + "/grants", json=body, headers=auth(credential), timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_grant_uploads_one_image_once_and_nothing_else(signin):
    g = grant(signin, ALICE, max_bytes=200_000, content_types=["image/jpeg"], title="From the server")
    assert g["grant"].startswith("pxg_") and g["expires_in"] <= 600
    token = g["grant"]
    # A grant reads nothing and changes nothing.
    assert_error(requests.get(signin.url + "/images", headers=auth(token), timeout=10), 403, "forbidden")
    assert_error(requests.put(signin.url + "/webhook", json={"url": "https://x.example/"},
                              headers=auth(token), timeout=10), 403, "forbidden")
    r = requests.post(signin.url + "/images", files={"file": ("p.jpg", jpeg(), "image/jpeg")},
                      data={"title": "from the browser"}, headers=auth(token), timeout=60)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == g["image_id"]
    # The server's fields, not the uploader's.
    own = requests.get(f"{signin.url}/images/{g['image_id']}", headers=auth(ALICE), timeout=10).json()
    assert own["title"] == "From the server"
    assert_error(upload(signin, token), 409, "grant_used")


def test_a_grant_past_its_limits_or_its_time_is_refused_and_stores_nothing(signin, sql):
    small = grant(signin, ALICE, max_bytes=5_000)["grant"]
    r = upload(signin, small, jpeg())
    assert_error(r, 403, "grant_exceeded")
    png_only = grant(signin, ALICE, content_types=["image/png"])
    assert_error(upload(signin, png_only["grant"]), 403, "grant_exceeded")
    assert sql.rows("SELECT id FROM images WHERE id = :id", id=png_only["image_id"]) == []
    short = grant(signin, ALICE, ttl_seconds=1)["grant"]
    time.sleep(2.5)
    assert_error(upload(signin, short), 401, "grant_expired")
    forged = short[:-4] + ("AAAA" if not short.endswith("AAAA") else "BBBB")
    assert_error(upload(signin, forged), 401, "unauthorized")


def test_a_grant_works_for_the_direct_and_the_browser_upload(signin):
    data = jpeg()
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    g = grant(signin, ALICE, max_bytes=len(data))
    r = requests.post(signin.url + "/uploads", json={"content_type": "image/jpeg", "bytes": len(data),
                                                     "sha256": sha}, headers=auth(g["grant"]), timeout=10)
    assert r.status_code == 201, r.text
    put = r.json()["upload"]
    assert requests.put(put["url"], data=data, headers=put["headers"], timeout=30).status_code == 200
    assert r.json()["image"]["id"] == g["image_id"]
    # Declaring more than the grant takes is refused before any URL exists.
    g2 = grant(signin, ALICE, max_bytes=1000)
    over = requests.post(signin.url + "/uploads", json={"content_type": "image/jpeg", "bytes": 1001,
                                                        "sha256": sha}, headers=auth(g2["grant"]), timeout=10)
    assert_error(over, 403, "grant_exceeded")
    # The browser's multipart routes: its own upload only.
    g3 = grant(signin, ALICE)
    created = requests.post(signin.url + "/s3/multipart", json={
        "filename": "p.jpg", "type": "image/jpeg", "metadata": {"size": str(len(data))}},
        headers=auth(g3["grant"]), timeout=10)
    assert created.status_code == 200, created.text
    key, upload_id = created.json()["key"], created.json()["uploadId"]
    assert key.endswith(g3["image_id"])
    other = requests.post(signin.url + "/s3/multipart", json={
        "filename": "q.jpg", "type": "image/jpeg", "metadata": {"size": "10"}},
        headers=auth(ALICE), timeout=10).json()
    for k in (other["key"],):
        r = requests.get(f"{signin.url}/s3/multipart/{other['uploadId']}", params={"key": k},
                         headers=auth(g3["grant"]), timeout=10)
        assert_error(r, 404, "not_found")
    signed = requests.get(f"{signin.url}/s3/multipart/{upload_id}/1", params={"key": key},
                          headers=auth(g3["grant"]), timeout=10)
    assert signed.status_code == 200, signed.text
    etag = requests.put(signed.json()["url"], data=data, timeout=30).headers["etag"]
    done = requests.post(f"{signin.url}/s3/multipart/{upload_id}/complete", params={"key": key},
                         json={"parts": [{"PartNumber": 1, "ETag": etag}]}, headers=auth(g3["grant"]), timeout=30)
    assert done.status_code == 200, done.text
    # The S3 event may have reached the resizer before the answer.
    assert done.json()["image"]["status"] in ("pending", "ready")


def test_operators_see_every_owners_failed_images_and_nobody_else_does(signin, sql):
    r = upload(signin, ALICE)
    assert r.status_code == 201, r.text
    failed = r.json()["id"]
    sql.rows("UPDATE images SET status = 'failed', failure_reason = 'corrupt: test' WHERE id = :id", id=failed)
    listed = requests.get(signin.url + "/admin/images", params={"limit": 100}, headers=auth(OPS), timeout=10)
    assert listed.status_code == 200, listed.text
    mine = [i for i in listed.json()["items"] if i["id"] == failed]
    assert mine and mine[0]["owner"] == "alice" and mine[0]["status"] == "failed", listed.json()
    assert all(i["status"] == "failed" for i in listed.json()["items"])
    for credential in (ALICE, READ_ONLY):
        assert_error(requests.get(signin.url + "/admin/images", headers=auth(credential), timeout=10),
                     403, "forbidden")
    assert_error(requests.get(signin.url + "/admin/images", timeout=10), 401, "unauthorized")
