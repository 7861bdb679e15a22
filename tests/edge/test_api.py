"""The edge worker's API end to end: wrangler dev (workerd) -> local S3 and
Data API over MariaDB. Every bad input must leave S3 and the database as they
were."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import uuid

import pytest
import requests
from PIL import Image

from support import closed_port, wait_until

from .workerctl import Worker

TOKEN = "local-dev-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def jpeg(w: int = 800, h: int = 600, **save) -> bytes:
    """A JPEG of its own: the random comment keeps a rerun against a kept
    stack from being a duplicate of the last run's upload."""
    save.setdefault("comment", uuid.uuid4().hex.encode())
    img = Image.new("RGB", (w, h))
    for x in range(0, w, 40):
        img.paste((x % 256, (x * 3) % 256, 128), (x, 0, min(x + 40, w), h))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, **save)
    return buf.getvalue()


@pytest.fixture(scope="module")
def api(stack, worker):
    return worker


@pytest.fixture(scope="module")
def bucket(stack):
    return stack["PIXPORT_BUCKET"]


def snapshot(s3, bucket, sql):
    # Every page: new ids sort last, past a first page of 1,000 keys.
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="originals/")
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    rows = sorted(r["id"] for r in sql.rows("SELECT id FROM images"))
    return keys, rows


def upload(api, data: bytes, name="photo.jpg", fields=None, headers=None, ctype="image/jpeg", params=None):
    return requests.post(
        api.url + "/images",
        params=params,
        data=fields or {},
        files={"file": (name, data, ctype)},
        headers={**AUTH, **(headers or {})},
        timeout=120,
    )


def assert_error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert body["error"]["request_id"] == r.headers["x-request-id"]


def test_browser_style_upload_stores_object_and_row(api, s3, bucket, sql):
    data = jpeg()
    r = upload(
        api,
        data,
        name="vacances/été 2026 ☀.jpg",
        fields={"title": "Plage ☀", "description": "line one\nline two", "tags": "sea, sun", "camera": "X100V"},
    )
    assert r.status_code == 201, r.text
    img = r.json()
    assert r.headers["location"] == f"/images/{img['id']}"
    assert img["status"] in ("pending", "ready")
    assert img["file_name"] == "été 2026 ☀.jpg"
    assert (img["title"], img["tags"], img["extra"]) == ("Plage ☀", ["sea", "sun"], {"camera": "X100V"})
    assert (img["width"], img["height"], img["bytes"], img["format"]) == (800, 600, len(data), "jpeg")
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert img["checksum_sha256"] == sha

    stored = s3.get_object(Bucket=bucket, Key=f"originals/{img['id']}")
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "image/jpeg"

    [row] = sql.rows("SELECT title, tags, bytes, checksum_sha256, owner FROM images WHERE id = :id", id=img["id"])
    assert row["title"] == "Plage ☀" and json.loads(row["tags"]) == ["sea", "sun"]
    assert row["bytes"] == len(data) and row["checksum_sha256"] == sha
    tags = sql.rows("SELECT tag FROM image_tags WHERE image_id = :id ORDER BY tag", id=img["id"])
    assert [t["tag"] for t in tags] == ["sea", "sun"]
    # The answer is the row as written (not read back): the same moments.
    [at] = sql.rows("SELECT DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS c, "
                    "DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS u FROM images WHERE id = :id",
                    id=img["id"])
    assert img["created_at"] == at["c"]
    # The resize Lambda may have touched the row since (its claim, `ready`).
    assert img["created_at"] <= img["updated_at"] <= at["u"]
    got = requests.get(f"{api.url}/images/{img['id']}", headers=AUTH, timeout=10).json()
    assert got["created_at"] == img["created_at"] and got["title"] == img["title"]

    # The original is readable by its owner through the URL the API hands out.
    got = requests.get(img["original_url"], headers=AUTH, timeout=30)
    assert got.status_code == 200 and got.content == data


def test_curl_upload(api, s3, bucket, tmp_path):
    path = tmp_path / "curl photo.jpg"
    data = jpeg(640, 480)
    path.write_bytes(data)
    out = subprocess.run(
        ["curl", "-sS", "-H", f"Authorization: Bearer {TOKEN}", "-F", f"file=@{path}", "-F", "title=from curl",
         "-F", "tags=a,b", "-w", "\n%{http_code}", api.url + "/images"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    body, status = out.stdout.rsplit("\n", 1)
    assert status == "201", out.stdout
    img = json.loads(body)
    assert img["title"] == "from curl" and img["file_name"] == "curl photo.jpg"
    assert s3.get_object(Bucket=bucket, Key=f"originals/{img['id']}")["Body"].read() == data


def test_sql_looking_fields_are_stored_verbatim(api, sql):
    evil = "x'); DROP TABLE images; -- \\' \" `"
    r = upload(api, jpeg(64, 64), fields={"title": evil, "tags": "1 OR 1=1", "note": "'; SELECT 1; --"})
    assert r.status_code == 201, r.text
    img = r.json()
    assert img["title"] == evil and img["tags"] == ["1 OR 1=1"] and img["extra"] == {"note": "'; SELECT 1; --"}
    assert sql.rows("SELECT COUNT(*) AS n FROM images")[0]["n"] >= 1


def test_large_upload_goes_through_multipart(api, s3, bucket, photos):
    data = (photos / "p48mp.jpg").read_bytes()
    assert len(data) > 8 * 1024 * 1024
    r = upload(api, data, name="p48mp.jpg", params={"duplicates": "allow"})
    assert r.status_code == 201, r.text
    img = r.json()
    assert (img["width"], img["height"]) == (8000, 6000)
    head = s3.head_object(Bucket=bucket, Key=f"originals/{img['id']}")
    # A multipart ETag ends in -<parts>: MULTIPART_PART_BYTES (5 MiB) each.
    parts = -(-len(data) // (5 * 1024 * 1024))
    assert parts > 1 and head["ETag"].strip('"').endswith(f"-{parts}"), head["ETag"]
    body = s3.get_object(Bucket=bucket, Key=f"originals/{img['id']}")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    assert img["checksum_sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


def multipart_body(parts: list[tuple[str, str | None, bytes]], boundary="b0und4ry") -> tuple[bytes, str]:
    out = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


ERROR_CORPUS = [
    ("no file", lambda: multipart_body([("title", None, b"only a title")]), 400, "missing_file"),
    ("empty file", lambda: multipart_body([("file", "e.jpg", b"")]), 400, "empty_file"),
    ("text renamed .jpg", lambda: multipart_body([("file", "notes.jpg", b"Dear diary, " * 100)]), 415, "unsupported_media_type"),
    ("truncated JPEG", lambda: multipart_body([("file", "cut.jpg", jpeg()[:-200])]), 422, "corrupt_image"),
    ("huge dimensions", lambda: multipart_body([("file", "big.png", b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR" + (50000).to_bytes(4, "big") * 2 + b"\x08\x02\0\0\0")]), 422, "image_too_large"),
    ("too many fields", lambda: multipart_body([(f"f{i}", None, b"v") for i in range(40)] + [("file", "a.jpg", jpeg(32, 32))]), 400, "too_many_fields"),
    ("two files", lambda: multipart_body([("file", "a.jpg", jpeg(32, 32)), ("file2", "b.jpg", jpeg(32, 32))]), 400, "invalid_field"),
    ("malformed multipart", lambda: (b"--b0und4ry\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n\r\n\xff\xd8\xff", "multipart/form-data; boundary=b0und4ry"), 400, "malformed_multipart"),
    ("not multipart", lambda: (b'{"file": "x"}', "application/json"), 415, "unsupported_media_type"),
    ("oversize field", lambda: multipart_body([("title", None, b"x" * 20000), ("file", "a.jpg", jpeg(32, 32))]), 413, "payload_too_large"),
]


@pytest.mark.parametrize("name,make,status,code", ERROR_CORPUS, ids=[c[0] for c in ERROR_CORPUS])
def test_error_corpus_changes_nothing(api, s3, bucket, sql, name, make, status, code):
    before = snapshot(s3, bucket, sql)
    body, ctype = make()
    r = requests.post(api.url + "/images", data=body, headers={**AUTH, "Content-Type": ctype}, timeout=60)
    assert_error(r, status, code)
    assert snapshot(s3, bucket, sql) == before


def test_bad_token_is_401_and_changes_nothing(api, s3, bucket, sql):
    before = snapshot(s3, bucket, sql)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = requests.post(api.url + "/images", files={"file": ("a.jpg", jpeg(32, 32))}, headers=headers, timeout=30)
        assert_error(r, 401, "unauthorized")
    assert snapshot(s3, bucket, sql) == before


def test_unknown_ids_are_404(api):
    for path in ("/images/%2E%2E%2Fetc%2Fpasswd", "/images/%27%20OR%201=1"):
        assert_error(requests.get(api.url + path, timeout=10), 404, "not_found")
    assert_error(requests.get(api.url + "/images/01ARZ3NDEKTSV4RRFFQ69G5FAV", timeout=10), 404, "not_found")
    assert_error(requests.patch(api.url + "/images/01ARZ3NDEKTSV4RRFFQ69G5FAV", json={}, headers=AUTH, timeout=10), 404, "not_found")
    assert_error(requests.delete(api.url + "/images/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=AUTH, timeout=10), 404, "not_found")
    assert_error(requests.get(api.url + "/nope", timeout=10), 404, "no_route")


@pytest.fixture(scope="module")
def small_api(stack):
    w = Worker({"MAX_UPLOAD_BYTES": "200000", "MULTIPART_THRESHOLD_BYTES": "5242880"}).start()
    yield w
    w.stop()


def test_oversize_upload_is_413_and_changes_nothing(small_api, s3, bucket, sql):
    before = snapshot(s3, bucket, sql)
    big = jpeg(3000, 2000)
    assert len(big) > 200000
    r = upload(small_api, big)
    assert_error(r, 413, "payload_too_large")
    assert snapshot(s3, bucket, sql) == before


def test_idempotency_key_returns_the_first_result(api, sql):
    data = jpeg(100, 100)
    key = f"retry-{uuid.uuid4()}"
    first = upload(api, data, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    again = upload(api, data, headers={"Idempotency-Key": key})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    rows = sql.rows("SELECT id FROM images WHERE idempotency_key = :k", k=key)
    assert len(rows) == 1
    # The same key with another file is the client's mistake, not a retry.
    other = upload(api, jpeg(100, 101), headers={"Idempotency-Key": key})
    assert_error(other, 422, "idempotency_key_reused")
    assert len(sql.rows("SELECT id FROM images WHERE idempotency_key = :k", k=key)) == 1


def test_crud_round_trip(api, s3, bucket, sql):
    created = [upload(api, jpeg(120 + i, 90), fields={"title": f"n{i}", "tags": "crud" + ("" if i % 2 else ",even")}).json()
               for i in range(5)]
    ids = [c["id"] for c in created]

    # Read one.
    r = requests.get(f"{api.url}/images/{ids[0]}", headers=AUTH, timeout=10)
    assert r.status_code == 200 and r.json()["title"] == "n0"

    # List by tag with keyset pagination, newest first.
    seen, cursor = [], None
    while True:
        params = {"tag": "crud", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = requests.get(api.url + "/images", params=params, headers=AUTH, timeout=10).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [i for i in seen if i in ids] == sorted(ids, reverse=True)
    even = requests.get(api.url + "/images", params={"tag": "even", "limit": 100}, headers=AUTH,
                        timeout=10).json()["items"]
    assert {i["id"] for i in even} >= {ids[0], ids[2], ids[4]} and ids[1] not in {i["id"] for i in even}
    assert_error(requests.get(api.url + "/images", params={"limit": 0}, headers=AUTH, timeout=10), 400,
                 "invalid_query")
    assert_error(requests.get(api.url + "/images", params={"status": "weird"}, headers=AUTH, timeout=10), 400,
                 "invalid_query")

    # Update.
    r = requests.patch(f"{api.url}/images/{ids[1]}", json={"title": "renamed", "tags": ["x"], "description": None},
                       headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["tags"]) == ("renamed", ["x"])
    assert [t["tag"] for t in sql.rows("SELECT tag FROM image_tags WHERE image_id = :id", id=ids[1])] == ["x"]
    assert_error(requests.patch(f"{api.url}/images/{ids[1]}", json={"owner": "me"}, headers=AUTH, timeout=10), 400, "invalid_json")
    # Many small extra fields: refused as a whole (it used to reach MySQL and fail as a 502).
    many = {"extra": {f"k{i}": "v" * 10 for i in range(3000)}}
    assert_error(requests.patch(f"{api.url}/images/{ids[1]}", json=many, headers=AUTH, timeout=30), 413, "payload_too_large")
    assert_error(requests.patch(f"{api.url}/images/{ids[1]}", json={"title": "t"}, timeout=10), 401, "unauthorized")

    # Delete: row and every object go.
    s3.put_object(Bucket=bucket, Key=f"variants/{ids[2]}/320.jpg", Body=b"v")
    r = requests.delete(f"{api.url}/images/{ids[2]}", headers=AUTH, timeout=10)
    assert r.status_code == 204, r.text
    assert_error(requests.get(f"{api.url}/images/{ids[2]}", timeout=10), 404, "not_found")
    left = s3.list_objects_v2(Bucket=bucket, Prefix=f"variants/{ids[2]}/").get("KeyCount", 0)
    assert left == 0
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key=f"originals/{ids[2]}")
    assert sql.rows("SELECT id FROM images WHERE id = :id", id=ids[2]) == []


def test_direct_upload_via_presigned_put(api, s3, bucket):
    data = jpeg(300, 200)
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = requests.post(api.url + "/uploads", json={"content_type": "image/jpeg", "bytes": len(data), "sha256": sha,
                                                  "file_name": "direct.jpg", "title": "direct"}, headers=AUTH, timeout=10)
    assert r.status_code == 201, r.text
    body = r.json()
    put = body["upload"]
    # A different body under the same signed checksum is refused by S3.
    bad = requests.put(put["url"], data=data[:-1] + b"\0", headers=put["headers"], timeout=30)
    assert bad.status_code in (400, 403), bad.text
    ok = requests.put(put["url"], data=data, headers=put["headers"], timeout=30)
    assert ok.status_code == 200, ok.text
    assert s3.get_object(Bucket=bucket, Key=f"originals/{body['image']['id']}")["Body"].read() == data
    assert_error(requests.post(api.url + "/uploads", json={"content_type": "text/plain", "bytes": 1, "sha256": sha},
                               headers=AUTH, timeout=10), 415, "unsupported_media_type")


def test_cors_preflight_and_headers(api):
    r = requests.options(api.url + "/images", headers={"Origin": "https://example.org",
                                                      "Access-Control-Request-Method": "POST"}, timeout=10)
    assert r.status_code == 204
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "idempotency-key" in r.headers["access-control-allow-headers"]
    r = requests.get(api.url + "/healthz", headers={"Origin": "https://example.org"}, timeout=10)
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.fixture(scope="module")
def s3_down(stack):
    # A port held and never listened on: refused for the whole module, and
    # no other process can start listening there meanwhile.
    with closed_port() as down:
        w = Worker({"S3_ENDPOINT": f"http://127.0.0.1:{down.getsockname()[1]}"}).start()
        yield w
        w.stop()


@pytest.fixture(scope="module")
def db_down(stack):
    with closed_port() as down:
        w = Worker({"DATA_API_ENDPOINT": f"http://127.0.0.1:{down.getsockname()[1]}"}).start()
        yield w
        w.stop()


def test_s3_down_mid_request_leaves_only_a_hidden_claim(s3_down, s3, bucket, sql):
    """S3 unreachable: 503, no object. The worker cannot confirm that no
    object landed (a lost reply looks the same), so its claim row stays
    `uploading`: hidden from clients, settled by the sweep (test_sweep)."""
    keys, rows = snapshot(s3, bucket, sql)
    assert_error(upload(s3_down, jpeg(65, 64)), 503, "storage_unavailable")
    keys_after, rows_after = snapshot(s3, bucket, sql)
    assert keys_after == keys
    left = sorted(set(rows_after) - set(rows))
    assert len(left) == 1 and set(rows) <= set(rows_after)
    row = sql.rows("SELECT status FROM images WHERE id = :id", id=left[0])
    assert row == [{"status": "uploading"}]
    listed = requests.get(s3_down.url + "/images", headers=AUTH, timeout=30).json()
    assert left[0] not in {i["id"] for i in listed["items"]}
    sql.rows("DELETE FROM images WHERE id = :id", id=left[0])


def test_data_api_down_leaves_no_object(db_down, s3, bucket, sql):
    before = snapshot(s3, bucket, sql)
    assert_error(upload(db_down, jpeg(64, 64)), 503, "database_unavailable")
    assert snapshot(s3, bucket, sql) == before
    assert_error(requests.get(db_down.url + "/images", headers=AUTH, timeout=10), 503, "database_unavailable")


def test_log_level_decides_which_lines_are_written(api):
    """`LOG_LEVEL=warn` drops the line each stored upload writes (one
    `console.log` per upload); the default `info` writes it with the
    request id and the image id (a level the worker does not know is a
    configuration error: `app::config`'s unit tests)."""
    def stored_lines(w: Worker, request_id: str) -> list[dict]:
        lines = []
        for line in w.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and request_id in line:
                lines.append(json.loads(line))
        return [ln for ln in lines if ln.get("fields", {}).get("message") == "upload stored"]

    r = upload(api, jpeg(64, 48), params={"duplicates": "allow"})
    assert r.status_code == 201, r.text
    rid = r.headers["x-request-id"]
    [line] = wait_until(lambda: stored_lines(api, rid) or None, 30, "the upload's log line")
    assert line["fields"]["id"] == r.json()["id"] and line["fields"]["metric"] == "upload"

    quiet = Worker({"LOG_LEVEL": "warn"}).start()
    try:
        r = upload(quiet, jpeg(64, 48), params={"duplicates": "allow"})
        assert r.status_code == 201, r.text
        # A line written would be there by the time a second answer is: the
        # log is written in order.
        assert requests.get(quiet.url + "/healthz", timeout=10).status_code == 200
        assert stored_lines(quiet, r.headers["x-request-id"]) == []
    finally:
        quiet.stop()
