"""Issue 13 item 3: the original is stored when its file part ends, while
later fields are still read, and the resize Lambda may finish before a later
field fails. The undo must then leave nothing: no row, no original and no
`variants/<id>/`."""

from __future__ import annotations

import uuid

import requests

from support import WaitTimeout, budget, wait_until

from .test_api import AUTH, jpeg

BOUNDARY = "stallXyZ"


def test_a_bad_field_after_a_finished_resize_leaves_no_variants(worker, s3, sql, stack):
    bucket = stack["PIXPORT_BUCKET"]
    title = f"undo-{uuid.uuid4().hex}"
    seen: dict[str, str] = {}

    def body():
        yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n"
               f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\n"
               "Content-Type: image/jpeg\r\n\r\n").encode()
        yield jpeg(800, 600)
        # The file part ends here; the next field's value is held back until
        # the Lambda has resized the stored original and marked it ready.
        yield (f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\n").encode()
        # (On a cold machine the shared Lambda may first compile the module.)
        def ready():
            rows = sql.rows("SELECT id, status FROM images WHERE title = :t", t=title)
            return rows[0]["id"] if rows and rows[0]["status"] == "ready" else None

        try:
            seen["id"] = wait_until(ready, 180, "the stored original to be resized", interval=0.2)
        except WaitTimeout:
            pass  # asserted below, once the request is over
        yield ("x" * 65 + f"\r\n--{BOUNDARY}--\r\n").encode()  # a tag over 64 characters

    r = requests.post(worker.url + "/images", data=body(), timeout=budget(120),
                      headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert "id" in seen, "the resize did not finish while the stream stalled"
    iid = seen["id"]
    assert r.status_code in (400, 422), r.text
    assert r.json()["error"]["code"] == "invalid_field"
    assert sql.rows("SELECT id FROM images WHERE id = :id", id=iid) == []
    for prefix in (f"originals/{iid}", f"variants/{iid}/"):
        left = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        assert left == [], prefix
