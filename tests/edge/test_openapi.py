"""The OpenAPI document is the contract: served as committed, and every
operation answers only with documented statuses and bodies that validate."""

from __future__ import annotations

import json

import jsonschema
import pytest
import requests

from .test_api import AUTH, jpeg
from .workerctl import ROOT

DOC = json.loads((ROOT / "edge" / "openapi.json").read_text())


def validate(path: str, method: str, r: requests.Response) -> None:
    op = DOC["paths"][path][method]
    responses = op["responses"]
    assert str(r.status_code) in responses, f"{method.upper()} {path} answered undocumented {r.status_code}: {r.text}"
    spec = responses[str(r.status_code)]
    if "$ref" in spec:
        spec = DOC["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    schema = spec.get("content", {}).get("application/json", {}).get("schema")
    if schema:
        jsonschema.validate(r.json(), {**schema, "components": DOC["components"]})


def test_served_document_is_the_committed_one(worker):
    r = requests.get(worker.url + "/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.json() == DOC
    jsonschema.Draft202012Validator.check_schema(DOC["components"]["schemas"]["Image"])


def test_every_operation_answers_as_documented(stack, worker):
    url = worker.url
    img = requests.post(url + "/images", files={"file": ("a.jpg", jpeg(64, 48))}, data={"title": "doc"},
                        headers=AUTH, timeout=30)
    validate("/images", "post", img)
    iid = img.json()["id"]
    calls = [
        ("/healthz", "get", lambda: requests.get(url + "/healthz", timeout=10)),
        ("/echo", "post", lambda: requests.post(url + "/echo", files={"f": ("x", b"123")}, headers=AUTH, timeout=10)),
        ("/echo", "post", lambda: requests.post(url + "/echo", data=b"x", headers={**AUTH, "Content-Type": "text/plain"},
                                                timeout=10)),
        ("/echo", "post", lambda: requests.post(url + "/echo", files={"f": ("x", b"123")}, timeout=10)),
        ("/images", "get", lambda: requests.get(url + "/images", params={"status": "uploading"}, timeout=10)),
        ("/images", "post", lambda: requests.post(url + "/images", files={"file": ("a.jpg", b"text")}, headers=AUTH, timeout=10)),
        ("/images", "post", lambda: requests.post(url + "/images", files={"file": ("a.jpg", jpeg(8, 8))}, timeout=10)),
        ("/images", "get", lambda: requests.get(url + "/images", params={"limit": 3}, headers=AUTH, timeout=10)),
        ("/images", "get", lambda: requests.get(url + "/images", params={"cursor": "bad"}, headers=AUTH, timeout=10)),
        ("/images/{id}", "get", lambda: requests.get(f"{url}/images/{iid}", headers=AUTH, timeout=10)),
        ("/images/{id}/original", "get", lambda: requests.get(f"{url}/images/{iid}/original", headers=AUTH,
                                                              timeout=10)),
        ("/images/{id}/original", "get", lambda: requests.get(f"{url}/images/{iid}/original", timeout=10)),
        ("/images/{id}/original", "head", lambda: requests.head(f"{url}/images/{iid}/original", headers=AUTH,
                                                                timeout=10)),
        ("/images/{id}/{width}", "get", lambda: requests.get(f"{url}/images/{iid}/64", params={"format": "gif"},
                                                             timeout=10)),
        ("/images/{id}", "get", lambda: requests.get(f"{url}/images/{iid}", timeout=10)),
        ("/images/{id}", "get", lambda: requests.get(f"{url}/images/01ARZ3NDEKTSV4RRFFQ69G5FAV", timeout=10)),
        ("/images/{id}", "patch", lambda: requests.patch(f"{url}/images/{iid}", json={"tags": ["d"]}, headers=AUTH, timeout=10)),
        ("/images/{id}", "patch", lambda: requests.patch(f"{url}/images/{iid}", data=b"{", headers=AUTH, timeout=10)),
        # 200 or 409 (not resized yet), 404 (no such width or image), 406.
        ("/images/{id}/{width}", "get", lambda: requests.get(f"{url}/images/{iid}/64", timeout=10)),
        ("/images/{id}/{width}", "get", lambda: requests.get(f"{url}/images/{iid}/7", timeout=10)),
        ("/images/{id}/{width}", "get", lambda: requests.get(f"{url}/images/{iid}/64", headers={"Accept": "image/gif"},
                                                             timeout=10)),
        ("/images/{id}/{width}", "get", lambda: requests.get(f"{url}/images/01ARZ3NDEKTSV4RRFFQ69G5FAV/640", timeout=10)),
        ("/images/{id}/{width}", "head", lambda: requests.head(f"{url}/images/{iid}/64", timeout=10)),
        ("/uploads", "post", lambda: requests.post(url + "/uploads", json={"content_type": "image/png", "bytes": 10,
                                                                          "sha256": "A" * 43 + "="}, headers=AUTH, timeout=10)),
        ("/uploads", "post", lambda: requests.post(url + "/uploads", json={"bytes": 10}, headers=AUTH, timeout=10)),
        ("/images/{id}", "delete", lambda: requests.delete(f"{url}/images/{iid}", headers=AUTH, timeout=10)),
        ("/images/{id}", "delete", lambda: requests.delete(f"{url}/images/{iid}", headers=AUTH, timeout=10)),
        ("/webhook", "put", lambda: requests.put(url + "/webhook", json={"url": "https://example.org/h"}, headers=AUTH,
                                                 timeout=10)),
        ("/webhook", "get", lambda: requests.get(url + "/webhook", headers=AUTH, timeout=10)),
        ("/webhook", "delete", lambda: requests.delete(url + "/webhook", headers=AUTH, timeout=10)),
        ("/webhook", "delete", lambda: requests.delete(url + "/webhook", headers=AUTH, timeout=10)),
        ("/webhooks/deliveries", "get", lambda: requests.get(url + "/webhooks/deliveries", params={"limit": 5},
                                                             headers=AUTH, timeout=10)),
        ("/webhooks/deliveries", "get", lambda: requests.get(url + "/webhooks/deliveries", params={"cursor": "x"},
                                                             headers=AUTH, timeout=10)),
        ("/webhooks/deliveries/{id}/redeliver", "post",
         lambda: requests.post(url + "/webhooks/deliveries/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver", headers=AUTH,
                               timeout=10)),
        ("/webhooks/deliveries/{id}/redeliver", "post",
         lambda: requests.post(url + "/webhooks/deliveries/x/redeliver", timeout=10)),
        # A wake-up call without the wake secret's signature.
        ("/internal/wake", "post", lambda: requests.post(url + "/internal/wake", json={}, timeout=10)),
        ("/me", "get", lambda: requests.get(url + "/me", headers=AUTH, timeout=10)),
        ("/me", "get", lambda: requests.get(url + "/me", timeout=10)),
        ("/grants", "post", lambda: requests.post(url + "/grants", json={"max_bytes": 1000}, headers=AUTH, timeout=10)),
        ("/grants", "post", lambda: requests.post(url + "/grants", json={"content_types": ["text/plain"]},
                                                  headers=AUTH, timeout=10)),
        ("/grants", "post", lambda: requests.post(url + "/grants", json={}, timeout=10)),
        ("/admin/images", "get", lambda: requests.get(url + "/admin/images", headers=AUTH, timeout=10)),
        ("/admin/images", "get", lambda: requests.get(url + "/admin/images", timeout=10)),
        ("/images/{id}/reprocess", "post", lambda: requests.post(f"{url}/images/{iid}/reprocess", headers=AUTH,
                                                                 timeout=10)),
        ("/images/{id}/reprocess", "post", lambda: requests.post(f"{url}/images/{iid}/reprocess", timeout=10)),
        ("/admin/reprocess", "get", lambda: requests.get(url + "/admin/reprocess", headers=AUTH, timeout=10)),
        ("/admin/reprocess", "post", lambda: requests.post(url + "/admin/reprocess", json={"limit": 1},
                                                           headers=AUTH, timeout=10)),
    ]
    calls += s3_calls(url)
    exercised = set()
    for path, method, call in calls:
        validate(path, method, call())
        exercised.add((path, method))
    documented = {(p, m) for p, ops in DOC["paths"].items() for m in ops if m != "parameters"}
    assert documented - exercised - {("/openapi.json", "get")} == set()


def s3_calls(url: str) -> list:
    """The Companion routes (`@uppy/aws-s3`) in the order Uppy uses them: a
    one-part upload of a real JPEG sent to the presigned part URL, then
    the refusals."""
    body = jpeg(64, 48)
    made = requests.post(url + "/s3/multipart", json={"filename": "a.jpg", "type": "image/jpeg",
                                                     "metadata": {"size": str(len(body))}}, headers=AUTH, timeout=10)
    key, uid = made.json()["key"], made.json()["uploadId"]
    q = {"key": key}
    sign = requests.get(f"{url}/s3/multipart/{uid}/1", params=q, headers=AUTH, timeout=10)
    etag = requests.put(sign.json()["url"], data=body, timeout=10).headers["ETag"]
    s3m = "/s3/multipart/{uploadId}"
    return [
        ("/s3/multipart", "post", lambda: made),
        ("/s3/multipart", "post", lambda: requests.post(url + "/s3/multipart", json={"type": "text/plain", "metadata": {"size": 3}},
                                                        headers=AUTH, timeout=10)),
        (s3m + "/{partNumber}", "get", lambda: sign),
        (s3m + "/{partNumber}", "get", lambda: requests.get(f"{url}/s3/multipart/{uid}/0", params=q, headers=AUTH, timeout=10)),
        (s3m, "get", lambda: requests.get(f"{url}/s3/multipart/{uid}", params=q, headers=AUTH, timeout=10)),
        (s3m, "get", lambda: requests.get(f"{url}/s3/multipart/{uid}", params={"key": "originals/x"}, headers=AUTH, timeout=10)),
        (s3m + "/complete", "post", lambda: requests.post(f"{url}/s3/multipart/{uid}/complete", params=q, headers=AUTH, timeout=10,
                                                          json={"parts": [{"PartNumber": 1, "ETag": "nope"}]})),
        (s3m + "/complete", "post", lambda: requests.post(f"{url}/s3/multipart/{uid}/complete", params=q, headers=AUTH, timeout=30,
                                                          json={"parts": [{"PartNumber": 1, "ETag": etag}]})),
        (s3m, "delete", lambda: requests.delete(f"{url}/s3/multipart/{uid}", params=q, headers=AUTH, timeout=10)),
        ("/s3/params", "get", lambda: requests.get(url + "/s3/params", params={"filename": "b.png", "type": "image/png",
                                                                               "metadata[size]": "10"}, headers=AUTH, timeout=10)),
        ("/s3/params", "get", lambda: requests.get(url + "/s3/params", params={"type": "image/png"}, headers=AUTH, timeout=10)),
    ]


@pytest.mark.parametrize("method,path", [("put", "/images"), ("delete", "/images"), ("post", "/healthz")])
def test_undocumented_methods_are_refused(worker, method, path):
    r = requests.request(method, worker.url + path, timeout=10)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    allowed = {m.strip().lower() for m in r.headers["allow"].split(",")}
    assert allowed == {m for m in DOC["paths"][path] if m != "parameters"}
    assert method not in DOC["paths"][path]
