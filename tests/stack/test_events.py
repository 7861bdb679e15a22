"""Writes under the watched prefix reach the Lambda as S3 notifications, in
AWS's documented shape; other writes send nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote_plus

SAMPLE = json.loads((Path(__file__).parent / "fixtures" / "s3_put_event_sample.json").read_text())


def record_keys(payload) -> list[str]:
    if not isinstance(payload, dict):
        return []
    return [r.get("s3", {}).get("object", {}).get("key", "") for r in payload.get("Records", [])]


def for_key(raw_key: str):
    return lambda payload: any(unquote_plus(k) == raw_key for k in record_keys(payload))


def assert_same_shape(sample, actual, path="$"):
    """Every field in AWS's sample is present with the same JSON type, and
    nothing is added (versionId may be absent: the bucket is unversioned)."""
    if isinstance(sample, dict):
        assert isinstance(actual, dict), path
        optional = {"versionId"}
        missing = set(sample) - set(actual) - optional
        extra = set(actual) - set(sample)
        assert not missing, f"{path}: missing {missing}"
        assert not extra, f"{path}: unexpected {extra}"
        for k in sample:
            if k in actual:
                assert_same_shape(sample[k], actual[k], f"{path}.{k}")
    elif isinstance(sample, list):
        assert isinstance(actual, list) and len(actual) == len(sample), path
        for i, (s, a) in enumerate(zip(sample, actual)):
            assert_same_shape(s, a, f"{path}[{i}]")
    else:
        assert type(actual) is type(sample), f"{path}: {type(actual).__name__} != {type(sample).__name__}"


def test_put_under_prefix_sends_exactly_one_event(stack, s3, uid):
    key = f"originals/{uid}/photo.jpg"
    body = b"\xff\xd8\xff" + b"0" * 1000
    put = s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
    # S3 delivers events in order (one queue, retries included): once a
    # later write's event has arrived, a duplicate of this one would have too.
    marker = f"originals/{uid}/marker.jpg"
    s3.put_object(Bucket=stack.bucket, Key=marker, Body=b"x")
    assert len(stack.wait_for_invocations(for_key(marker))) == 1
    found = stack.invocations_for(for_key(key))
    assert len(found) == 1, found
    inv = found[0]
    assert inv["invocationType"] == "Event"
    event = inv["payload"]
    assert_same_shape(SAMPLE, event)
    r = event["Records"][0]
    assert r["eventVersion"] == "2.1"
    assert r["eventSource"] == "aws:s3"
    assert r["awsRegion"] == stack.region
    assert r["eventName"] == "ObjectCreated:Put"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["eventTime"])
    assert r["requestParameters"]["sourceIPAddress"] == "127.0.0.1"
    assert r["responseElements"]["x-amz-request-id"] == put["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert r["s3"]["s3SchemaVersion"] == "1.0"
    assert r["s3"]["configurationId"] == "resize-originals"
    assert r["s3"]["bucket"]["name"] == stack.bucket
    assert r["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{stack.bucket}"
    obj = r["s3"]["object"]
    assert obj["key"] == key
    assert obj["size"] == len(body)
    assert obj["eTag"] == put["ETag"].strip('"')
    assert "versionId" not in obj
    assert re.fullmatch(r"[0-9A-F]{18}", obj["sequencer"])


def test_put_outside_prefix_sends_none(stack, s3, uid):
    outside = [f"variants/{uid}/photo.jpg", f"scratch/{uid}/originals/photo.jpg", f"Originals/{uid}.jpg"]
    for key in outside:
        s3.put_object(Bucket=stack.bucket, Key=key, Body=b"x")
    # A write under the prefix afterwards proves delivery ran past the others.
    marker = f"originals/{uid}/marker.jpg"
    s3.put_object(Bucket=stack.bucket, Key=marker, Body=b"x")
    assert len(stack.wait_for_invocations(for_key(marker))) == 1
    for key in outside:
        assert stack.invocations_for(for_key(key)) == [], key


def test_key_with_spaces_and_unicode_is_form_encoded(stack, s3, uid):
    key = f"originals/{uid}/my photo (1) é+ü.jpg"
    s3.put_object(Bucket=stack.bucket, Key=key, Body=b"x")
    found = stack.wait_for_invocations(for_key(key))
    assert len(found) == 1
    encoded = found[0]["payload"]["Records"][0]["s3"]["object"]["key"]
    assert encoded == f"originals/{uid}/my+photo+%281%29+%C3%A9%2B%C3%BC.jpg"
    assert unquote_plus(encoded) == key


def test_copy_and_multipart_events(stack, s3, uid):
    src = f"scratch/{uid}/src.jpg"
    s3.put_object(Bucket=stack.bucket, Key=src, Body=b"copy me")
    copied = f"originals/{uid}/copied.jpg"
    s3.copy_object(Bucket=stack.bucket, Key=copied, CopySource={"Bucket": stack.bucket, "Key": src})
    mp = f"originals/{uid}/multi.jpg"
    mpu = s3.create_multipart_upload(Bucket=stack.bucket, Key=mp)
    part = s3.upload_part(Bucket=stack.bucket, Key=mp, UploadId=mpu["UploadId"], PartNumber=1, Body=b"m" * 100)
    s3.complete_multipart_upload(Bucket=stack.bucket, Key=mp, UploadId=mpu["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    (c,) = stack.wait_for_invocations(for_key(copied))
    (m,) = stack.wait_for_invocations(for_key(mp))
    assert c["payload"]["Records"][0]["eventName"] == "ObjectCreated:Copy"
    assert c["payload"]["Records"][0]["s3"]["object"]["size"] == 7
    rec = m["payload"]["Records"][0]
    assert rec["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert rec["s3"]["object"]["size"] == 100
    assert rec["s3"]["object"]["eTag"].endswith("-1")


def test_sequencer_grows_per_key(stack, s3, uid):
    key = f"originals/{uid}/again.jpg"
    for body in (b"1", b"2", b"3"):
        s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
    found = stack.wait_for_invocations(for_key(key), count=3)
    seqs = [i["payload"]["Records"][0]["s3"]["object"]["sequencer"] for i in found]
    assert len(seqs) == 3
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_failed_write_sends_no_event(stack, s3, uid):
    import botocore.exceptions

    key = f"originals/{uid}/corrupt.jpg"
    try:
        s3.put_object(Bucket=stack.bucket, Key=key, Body=b"x", ChecksumCRC32C="AAAAAA==")
    except botocore.exceptions.ClientError:
        pass
    marker = f"originals/{uid}/after.jpg"
    s3.put_object(Bucket=stack.bucket, Key=marker, Body=b"x")
    stack.wait_for_invocations(for_key(marker))
    assert stack.invocations_for(for_key(key)) == []
