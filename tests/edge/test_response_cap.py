"""Issue 13 item 2: the Data API refuses any result over 1 MiB, and a row can
carry ~55 KB (title, description and tags in 4-byte characters, 32 KiB of
extra fields). Listing and the sweep must stay under the cap however many
such rows there are."""

from __future__ import annotations

import uuid

import requests

from .test_api import AUTH, jpeg
from .test_sweep import cron_worker, sweep_until  # noqa: F401  (fixture)

CLONES = 24  # 25 maximal rows: ~1.4 MB, well over the cap


def maximal_fields(run_tag: str) -> dict[str, str]:
    """Every field at its limit: 200-character title, 4000-character
    description, 20 tags of 64 characters (4-byte characters throughout),
    and extra fields filling the 32 KiB JSON limit."""
    tags = [run_tag] + [f"{n:02d}" + "😀" * 62 for n in range(19)]
    fields = {
        "title": "𝄞" * 200,
        "description": "😀" * 4000,
        "tags": ",".join(tags),
    }
    for n in range(3):
        fields[f"x{n}"] = "a" * 10_900
    return fields


def maximal_rows(api, sql, status: str, created_ago: str | None = None) -> tuple[str, list[str]]:
    """One maximal image uploaded through the edge (so the edge accepts it),
    then cloned in SQL; returns the run's tag and every id."""
    run_tag = f"cap-{uuid.uuid4().hex[:12]}"
    r = requests.post(api.url + "/images", data=maximal_fields(run_tag),
                      files={"file": ("p.jpg", jpeg(64, 48), "image/jpeg")}, headers=AUTH, timeout=120)
    assert r.status_code == 201, r.text
    first = r.json()["id"]
    size = sql.rows("SELECT LENGTH(title) + LENGTH(description) + LENGTH(tags) + LENGTH(extra) AS n "
                    "FROM images WHERE id = :id", id=first)[0]["n"]
    assert size > 54_000, size
    ids = [first]
    created = f"CURRENT_TIMESTAMP(3) - INTERVAL {created_ago}" if created_ago else "CURRENT_TIMESTAMP(3)"
    for n in range(CLONES):
        iid = f"{first[:-6]}CAP{n:03d}"
        sql.rows(
            "INSERT INTO images (id, owner, status, title, description, tags, extra, file_name, content_type, "
            f"original_key, created_at) SELECT :new, owner, :status, title, description, tags, extra, file_name, "
            f"content_type, CONCAT('originals/', :new), {created} FROM images WHERE id = :id",
            new=iid, id=first, status=status)
        sql.rows("INSERT INTO image_tags (tag, image_id) VALUES (:tag, :id)", tag=run_tag, id=iid)
        ids.append(iid)
    return run_tag, ids


def test_listing_maximal_rows_pages_by_size(worker, sql, stack):
    run_tag, ids = maximal_rows(worker, sql, "ready")
    try:
        seen, pages, cursor = [], 0, None
        while True:
            params = {"tag": run_tag, "limit": 100, **({"cursor": cursor} if cursor else {})}
            r = requests.get(worker.url + "/images", params=params, headers=AUTH, timeout=60)
            assert r.status_code == 200, r.text
            body = r.json()
            pages += 1
            assert body["items"], body
            seen += [i["id"] for i in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(ids)
        assert pages > 1  # the page was cut by size, not by the limit
        full = next(i for i in body["items"])
        assert len(full["description"]) == 4000 and len(full["title"]) == 200
    finally:
        sql.rows("DELETE FROM images WHERE id IN (" + ",".join(f"'{i}'" for i in ids) + ")")


def test_sweep_settles_maximal_rows(cron_worker, sql, stack):  # noqa: F811
    _, ids = maximal_rows(cron_worker, sql, "uploading", created_ago="2 HOUR")
    clones = ids[1:]
    try:
        sweep_until(cron_worker, sql, "SELECT id FROM images WHERE id = :id", clones[-1])
        left = sql.rows("SELECT id FROM images WHERE id IN (" + ",".join(f"'{i}'" for i in clones) + ")")
        assert left == []  # no original: every stale maximal row went
    finally:
        sql.rows("DELETE FROM images WHERE id IN (" + ",".join(f"'{i}'" for i in ids) + ")")
