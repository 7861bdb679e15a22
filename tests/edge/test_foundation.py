"""The thinnest real path: built wasm, served by workerd through wrangler dev."""

import requests


def test_healthz_answers_from_workerd(worker):
    r = requests.get(worker.url + "/healthz", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    # Served by the wasm build: its linear memory is a whole number of 64 KiB pages.
    assert body["wasm_memory_bytes"] > 0 and body["wasm_memory_bytes"] % 65536 == 0


def test_multipart_echo_reports_field_names_and_file_size(worker):
    payload = bytes(range(256)) * 1000 + b"tail"
    r = requests.post(
        worker.url + "/echo",
        data={"title": "Sunset", "tags": "sea,sky"},
        files={"file": ("ünïcødé photo.jpg", payload, "image/jpeg")},
        headers={"Authorization": "Bearer local-dev-token"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    fields = r.json()["fields"]
    assert [f["name"] for f in fields] == ["title", "tags", "file"]
    by_name = {f["name"]: f for f in fields}
    assert by_name["file"]["size"] == len(payload)
    assert by_name["file"]["file_name"] == "ünïcødé photo.jpg"
    assert by_name["title"]["size"] == len("Sunset")
