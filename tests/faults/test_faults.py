"""Faults while images are being resized, on the fault stack (faultstack.py):
its S3, Data API or MariaDB SIGKILLed for at least 4 s (and until the outage
has cost an invocation), S3 events delivered twice and out of
order, the Lambda's `bootstrap` SIGKILLed mid-resize, the Data API lost
between a resize's variants and its row. Every accepted image
(row `pending`, original in S3) must end `ready` with its original intact,
and S3 must hold exactly what the table says: no object without a row, no
row without its objects."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import time

import pytest

from support import ROOT, photos_dir, wait_until

PHOTOS = photos_dir()

pytestmark = pytest.mark.slow

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
OUTAGE_S = 4.0
ZERO_SEQ = "0" * 64


def new_id() -> str:
    return random.choice(CROCKFORD[:8]) + "".join(random.choice(CROCKFORD) for _ in range(25))


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def insert_pending(fs, id_: str) -> None:
    fs.sql("INSERT INTO images (id, owner, status, tags, extra, content_type, original_key) "
           "VALUES (:id, 'faults', 'pending', '[]', '{}', 'image/jpeg', :key)", id=id_, key=f"originals/{id_}")


def rows(fs, ids: list[str]) -> dict[str, dict]:
    marks = ", ".join(f":i{n}" for n in range(len(ids)))
    found = fs.sql("SELECT id, status, variants, failure_reason, attempts, event_sequencer, format, width, height "
                   f"FROM images WHERE id IN ({marks})", **{f"i{n}": i for n, i in enumerate(ids)})
    return {r["id"]: r for r in found}


# Every accepted photo of a test through one bootstrap, one at a time, on a
# cold, loaded 2-core machine: a restarted bootstrap compiles resizer.wasm
# first, a 48 MP resize takes tens of seconds with both cores busy, and the
# retry schedule (FAST in faultstack.py) adds seconds per failure.
SETTLE_S = 300.0


def wait_settled(fs, ids: list[str], budget_s: float = SETTLE_S) -> dict[str, dict]:
    def settled():
        got = rows(fs, ids)
        if len(got) == len(ids) and all(r["status"] in ("ready", "failed") for r in got.values()):
            return got
        return None

    return wait_until(settled, budget_s, f"rows {ids} to end ready or failed", interval=0.3,
                      detail=lambda: [(i, r["status"], r["attempts"]) for i, r in rows(fs, ids).items()])


def keys(s3, bucket: str, prefix: str) -> set[str]:
    out, token = set(), None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **kw)
        out |= {o["Key"] for o in page.get("Contents", [])}
        if not page.get("IsTruncated"):
            return out
        token = page["NextContinuationToken"]


def assert_ready_and_consistent(fs, settled: dict[str, dict], sources: dict[str, bytes]) -> None:
    """Every row `ready`, its original byte for byte, its variants exactly the
    objects under variants/<id>/ with the recorded checksums; and S3 holds
    nothing the table does not know."""
    s3 = fs.s3()
    for id_, row in settled.items():
        assert row["status"] == "ready", (id_, row)
        original = s3.get_object(Bucket=fs.bucket, Key=f"originals/{id_}")["Body"].read()
        assert sha(original) == sha(sources[id_]), f"original of {id_} changed"
        variants = json.loads(row["variants"])
        assert variants, row
        assert keys(s3, fs.bucket, f"variants/{id_}/") == {v["key"] for v in variants}
        for v in variants:
            body = s3.get_object(Bucket=fs.bucket, Key=v["key"])["Body"].read()
            assert len(body) == v["bytes"] and sha(body) == v["sha256"], v["key"]
    table = {r["id"] for r in fs.sql("SELECT id FROM images")}
    for key in keys(s3, fs.bucket, "originals/") | keys(s3, fs.bucket, "variants/"):
        assert key.split("/")[1] in table, f"{key} has no row"


PHOTO_MIX = ["p12mp.jpg", "p24mp.jpg", "retina.jpg", "p48mp.jpg", "p12mp.jpg", "astronaut.png"]


def upload_accepted(fs, names: list[str]) -> dict[str, bytes]:
    """What the edge does for an accepted upload: the row, then the original
    (whose S3 event starts the resize)."""
    s3, sources = fs.s3(), {}
    for name in names:
        id_, body = new_id(), (PHOTOS / name).read_bytes()
        insert_pending(fs, id_)
        s3.put_object(Bucket=fs.bucket, Key=f"originals/{id_}", Body=body)
        sources[id_] = body
    return sources


def fault_hit(before: dict, after: dict, settled: dict[str, dict]) -> bool:
    """The outage cost something: an invocation failed, or a row was only
    finished by the redrive (its S3 event was lost with the server)."""
    return after["failed"] > before["failed"] or any(
        r["event_sequencer"] == ZERO_SEQ or int(r["attempts"]) > 1 for r in settled.values())


def outage_until_it_costs(fs, service: str, before: dict) -> float:
    """Keeps `service` down for OUTAGE_S, and longer if no invocation has
    failed yet: on a slow machine the bootstrap may spend the whole
    OUTAGE_S inside one resize (no S3 or Data API call), and an outage
    nothing touched proves nothing. Returns how long it was down."""
    t0 = time.monotonic()
    fs.kill(service)
    try:
        time.sleep(OUTAGE_S)
        wait_until(lambda: fs.runtime_status()["counts"]["failed"] > before["failed"], 240,
                   f"an invocation to fail while {service} is down", interval=0.2)
    finally:
        fs.start(service)
    return time.monotonic() - t0


@pytest.mark.parametrize("service", ["s3", "dataapi", "mariadb"])
def test_outage_while_resizing_every_accepted_image_ends_ready(faults, service):
    before = faults.runtime_status()["counts"]
    sources = upload_accepted(faults, PHOTO_MIX)
    t0 = time.monotonic()
    down_s = outage_until_it_costs(faults, service, before)
    settled = wait_settled(faults, list(sources))
    recovered_s = time.monotonic() - t0
    after = faults.runtime_status()["counts"]
    assert fault_hit(before, after, settled), (before, after)
    assert_ready_and_consistent(faults, settled, sources)
    print(f"\n{service} down {down_s:.1f} s: {len(sources)} images ready {recovered_s:.1f} s after the kill; "
          f"invocations failed {after['failed'] - before['failed']}, retried {after['retried'] - before['retried']}, "
          f"dead-lettered {after['deadLettered'] - before['deadLettered']}, "
          f"attempts {sorted(int(r['attempts']) for r in settled.values())}")


def _records_for(fs, key: str) -> list[dict]:
    return [i for i in fs.runtime_status()["invocations"]
            if isinstance(i.get("payload"), dict)
            and any(r.get("s3", {}).get("object", {}).get("key") == key for r in i["payload"].get("Records", []))]


def test_events_twice_and_out_of_order_end_as_one_delivery(faults):
    s3 = faults.s3()
    names = {"A": "retina.jpg", "B": "p12mp.jpg", "C": "astronaut.png"}
    # The reference: one image through the normal path, one delivery.
    reference = upload_accepted(faults, [names["A"]])
    ref_id = next(iter(reference))
    wait_settled(faults, [ref_id])
    # The others' originals land before their rows exist: S3's own events
    # find no row and are skipped, and we hold the events to deliver later.
    ids = {k: new_id() for k in names}
    sources, events = {}, {}
    for k, id_ in ids.items():
        body = (PHOTOS / names[k]).read_bytes()
        s3.put_object(Bucket=faults.bucket, Key=f"originals/{id_}", Body=body)
        sources[id_] = body
    for k, id_ in ids.items():
        wait_until(lambda: [r for r in _records_for(faults, f"originals/{id_}") if r["status"] == "succeeded"], 120,
                   f"S3's event for {id_} to be handled")
        events[k] = _records_for(faults, f"originals/{id_}")[0]["payload"]
    # Rows (one statement), then at once every delivery: nothing else is
    # queued before them for long enough (PIXPORT_REDRIVE_IDLE_MS) to
    # re-drive the new rows, however slow each Data API call is.
    marks = ", ".join(f"(:i{n}, 'faults', 'pending', '[]', '{{}}', 'image/jpeg', :k{n})" for n in range(len(ids)))
    faults.sql(f"INSERT INTO images (id, owner, status, tags, extra, content_type, original_key) VALUES {marks}",
               **{f"i{n}": i for n, i in enumerate(ids.values())},
               **{f"k{n}": f"originals/{i}" for n, i in enumerate(ids.values())})

    def older(ev: dict) -> dict:
        ev = json.loads(json.dumps(ev))
        obj = ev["Records"][0]["s3"]["object"]
        obj["sequencer"] = "0" + obj["sequencer"][:-1]  # one hex digit shorter: an earlier write
        return ev

    for ev in [events["C"], events["B"], events["A"], older(events["A"]), events["C"], older(events["B"]),
               events["A"], events["B"], older(events["C"])]:
        faults.invoke_async(ev)
    settled = wait_settled(faults, list(ids.values()) + [ref_id])
    assert_ready_and_consistent(faults, settled, {**sources, **reference})

    for k, id_ in ids.items():
        seq = events[k]["Records"][0]["s3"]["object"]["sequencer"]
        assert settled[id_]["event_sequencer"] == seq.upper().rjust(64, "0"), "the real event is the one applied"
        outcomes = [o["outcome"] for r in _records_for(faults, f"originals/{id_}")
                    for o in (r.get("response") or {}).get("outcomes", [])]
        assert outcomes.count("ready") == 1, (k, outcomes)
    # The same bytes delivered twice and out of order end exactly as one delivery.
    def shape(row):
        return (row["format"], row["width"], row["height"],
                [(v["width"], v["height"], v["bytes"], v["sha256"]) for v in json.loads(row["variants"])])

    assert shape(settled[ids["A"]]) == shape(settled[ref_id])


def test_bootstrap_killed_mid_resize_is_retried_and_ends_ready(faults):
    sources = upload_accepted(faults, ["p48mp.jpg"])
    id_ = next(iter(sources))
    key = f"originals/{id_}"
    running = wait_until(lambda: [r for r in _records_for(faults, key) if r["status"] == "running"], 120,
                         f"the resize of {key} to start", interval=0.005)
    pid = faults.runtime_status()["bootstrap"]["pid"]
    os.kill(pid, signal.SIGKILL)
    settled = wait_settled(faults, [id_])
    assert_ready_and_consistent(faults, settled, sources)
    record = next(r for r in _records_for(faults, key) if r["requestId"] == running[0]["requestId"])
    assert record["status"] == "succeeded" and record["attempts"] >= 2, record
    assert record["error"]["errorType"] == "Runtime.ExitError", record
    boot = faults.runtime_status()["bootstrap"]
    assert boot["exits"] >= 1 and boot["pid"] != pid


def test_variants_written_while_the_data_api_was_down_go_with_their_upload(faults):
    """The stray variants of the faults-under-load run: a resize claims its
    row, the Data API goes down, the variants land but `mark_ready` fails;
    meanwhile the upload is undone (its original and row removed, as the
    edge's undo or the sweep does). The delivery's retry finds no row and
    removes what its first attempt wrote: no object is left without a row."""
    s3 = faults.s3()
    body = (PHOTOS / "p48mp.jpg").read_bytes()
    id_ = new_id()
    key = f"originals/{id_}"
    faults.sql("INSERT INTO images (id, owner, status, tags, extra, content_type, original_key) "
               "VALUES (:id, 'faults', 'uploading', '[]', '{}', 'image/jpeg', :key)", id=id_, key=key)
    mark = faults.log_size("s3")
    s3.put_object(Bucket=faults.bucket, Key=key, Body=body)
    # The Data API goes down once the claim is done: the bootstrap fetches
    # the original only after claiming the row (handler.rs), so the local
    # S3's answer to that GET is the event to wait for, however slow the
    # claim's two statements are on this machine.
    wait_until(lambda: faults.s3_answered("GET", key, since=mark), 120,
               f"the bootstrap to claim the row and fetch {key}", interval=0.005)
    faults.kill("dataapi")
    try:
        # The 48 MP resize runs on (tens of seconds on a loaded 2-core
        # machine), its variants land, `mark_ready` fails, and the
        # invocation ends failed: nothing of it is still running.
        wait_until(lambda: keys(s3, faults.bucket, f"variants/{id_}/") and
                   not any(r["status"] == "running" for r in _records_for(faults, key)), 240,
                   f"the resize of {key} to write its variants and end while the Data API is down", interval=0.05,
                   detail=lambda: [(r["status"], r["attempts"]) for r in _records_for(faults, key)])
        written = keys(s3, faults.bucket, f"variants/{id_}/")
        # The upload undone while the Data API is still down: straight in
        # MariaDB, as the edge would once it can. The row is still the
        # claimed, unfinished one: the outage really came between the
        # variants and `mark_ready`.
        row = subprocess.run([str(ROOT / "local" / "mariadb"), "sql", "-N", "-e",
                              f"SELECT status FROM images WHERE id = '{id_}'"],
                             env=faults.env, check=True, capture_output=True, text=True, timeout=60).stdout.split()
        assert row == ["uploading"], row
        s3.delete_object(Bucket=faults.bucket, Key=key)
        subprocess.run([str(ROOT / "local" / "mariadb"), "sql", "-e", f"DELETE FROM images WHERE id = '{id_}'"],
                       env=faults.env, check=True, capture_output=True, timeout=60)
    finally:
        faults.start("dataapi")
    assert len(written) >= 1, written
    redelivered = False

    def strays_removed() -> bool:
        nonlocal redelivered
        if not keys(s3, faults.bucket, f"variants/{id_}/"):
            return True
        records = _records_for(faults, key)
        # Lambda's retries may all have run inside the outage; its dead
        # letter is then redelivered, as an operator's redrive would.
        if not redelivered and records and all(r["status"] == "dead-lettered" for r in records):
            faults.invoke_async(records[0]["payload"])
            redelivered = True
        return False

    wait_until(strays_removed, 120, f"the stray variants {sorted(written)} to be removed", interval=0.1)
    outcomes = [o for r in _records_for(faults, key) for o in (r.get("response") or {}).get("outcomes", [])]
    assert any("stray variants removed" in o.get("why", "") for o in outcomes), outcomes
    table = {r["id"] for r in faults.sql("SELECT id FROM images")}
    for k in keys(s3, faults.bucket, "originals/") | keys(s3, faults.bucket, "variants/"):
        assert k.split("/")[1] in table, f"{k} has no row"
