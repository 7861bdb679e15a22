"""Keys that XML and URL decoding can mangle survive every listing unchanged.

botocore asks for `EncodingType=url` on ListObjects, ListObjectsV2 and
ListMultipartUploads and url-decodes keys whenever the response says so; a
server that echoes the header but sends raw keys turns `+` into a space and
`%25` into `%` (issue 14, item 5). These tests use boto3 unmodified."""

from __future__ import annotations

from urllib.parse import quote_plus, unquote_plus

import botocore.exceptions
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import pytest
import requests

# Each name is hostile to one decoding step: `+` and `%XX` to url-decoding,
# spaces and non-ASCII to both, `&<>"'` to XML escaping.
NAMES = [
    "ünï cödé+plus %25.jpg",
    "a+b.jpg",
    "100%.jpg",
    "%2F not a slash.jpg",
    "sp ace  twice.jpg",
    "日本語/写真.jpg",
    "x&y<z>\"q'.jpg",
    "tilde~dash-under_dot.jpg",
]


def put_all(s3, bucket: str, base: str) -> list[str]:
    keys = [f"{base}/{n}" for n in NAMES]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return sorted(keys)


def test_list_v2_returns_keys_byte_for_byte(stack, s3, uid):
    keys = put_all(s3, stack.bucket, f"scratch/{uid}/dir")
    got = s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"scratch/{uid}/dir/")
    assert got["EncodingType"] == "url"
    assert [o["Key"] for o in got["Contents"]] == keys
    for k in keys:  # and each listed key reads back the object it names
        assert s3.get_object(Bucket=stack.bucket, Key=k)["Body"].read() == k.encode()


def test_list_v2_pages_prefixes_and_start_after(stack, s3, uid):
    base = f"scratch/{uid}/ä b+c%"
    keys = put_all(s3, stack.bucket, base)
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=stack.bucket, Prefix=base + "/", MaxKeys=3, **kw)
        assert page["Prefix"] == base + "/"
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == keys
    after = s3.list_objects_v2(Bucket=stack.bucket, Prefix=base + "/", StartAfter=keys[2])
    assert after["StartAfter"] == keys[2]
    assert [o["Key"] for o in after["Contents"]] == keys[3:]
    rolled = s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"scratch/{uid}/", Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == [base + "/"]
    assert rolled["Delimiter"] == "/"


def test_list_v1_returns_keys_markers_and_prefixes(stack, s3, uid):
    base = f"scratch/{uid}/v1 +%"
    keys = put_all(s3, stack.bucket, base)
    got = s3.list_objects(Bucket=stack.bucket, Prefix=base + "/")
    assert got["EncodingType"] == "url"
    assert [o["Key"] for o in got["Contents"]] == keys
    page = s3.list_objects(Bucket=stack.bucket, Prefix=base + "/", Marker=keys[0], MaxKeys=2)
    assert page["Marker"] == keys[0]
    assert [o["Key"] for o in page["Contents"]] == keys[1:3]
    assert page["IsTruncated"] and page["NextMarker"] == keys[2]
    rolled = s3.list_objects(Bucket=stack.bucket, Prefix=f"scratch/{uid}/", Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == [base + "/"]


def presigned(stack, query: str) -> str:
    """A presigned GET on the bucket with exactly this query: botocore's own
    calls always add `encoding-type=url`."""
    req = AWSRequest(method="GET", url=f"{stack.s3_url}/{stack.bucket}?{query}")
    S3SigV4QueryAuth(Credentials(stack.access_key_id, stack.secret_access_key), "s3", stack.region,
                     expires=300).add_auth(req)
    return req.url


def test_raw_listing_without_encoding_type_is_plain_xml(stack, s3, uid):
    """Without the parameter keys come back as XML text, escaped, not encoded."""
    key = f"scratch/{uid}/a+b %25&.jpg"
    s3.put_object(Bucket=stack.bucket, Key=key, Body=b"x")
    r = requests.get(presigned(stack, f"list-type=2&prefix=scratch%2F{uid}%2F"), timeout=10)
    assert r.status_code == 200, r.text
    assert f"<Key>scratch/{uid}/a+b %25&amp;.jpg</Key>" in r.text
    assert "<EncodingType>" not in r.text


def test_unknown_encoding_type_is_refused(stack, s3, uid):
    s3.put_object(Bucket=stack.bucket, Key=f"scratch/{uid}/k", Body=b"x")
    r = requests.get(presigned(stack, f"list-type=2&encoding-type=base64&prefix=scratch%2F{uid}%2F"), timeout=10)
    assert r.status_code == 400, r.text
    assert "<Code>InvalidArgument</Code>" in r.text
    assert "<Contents>" not in r.text


def test_delete_objects_deletes_exactly_the_named_keys(stack, s3, uid):
    base = f"scratch/{uid}/del"
    keys = put_all(s3, stack.bucket, base)
    # A decoy whose name is what a double decode of "a+b.jpg" would give.
    decoy = f"{base}/a b.jpg"
    s3.put_object(Bucket=stack.bucket, Key=decoy, Body=b"decoy")
    out = s3.delete_objects(Bucket=stack.bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in out["Deleted"]) == keys
    assert not out.get("Errors")
    left = s3.list_objects_v2(Bucket=stack.bucket, Prefix=base + "/")
    assert [o["Key"] for o in left["Contents"]] == [decoy]
    s3.delete_object(Bucket=stack.bucket, Key=decoy)


def test_multipart_uploads_list_and_complete_with_hostile_keys(stack, s3, uid):
    base = f"scratch/{uid}/mpu ü+%25"
    keys = sorted(f"{base}/{n}" for n in NAMES[:4])
    ids = {k: s3.create_multipart_upload(Bucket=stack.bucket, Key=k)["UploadId"] for k in keys}
    # botocore neither asks for nor decodes url encoding here: raw XML first,
    listed = s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=base + "/")
    assert "EncodingType" not in listed
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == [(k, ids[k]) for k in keys]
    assert listed["Prefix"] == base + "/"
    # then asked for explicitly: every key-valued field encoded, as S3 does.
    enc = s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=base + "/", EncodingType="url")
    assert enc["EncodingType"] == "url"
    assert [unquote_plus(u["Key"]) for u in enc["Uploads"]] == keys
    assert [u["Key"] for u in enc["Uploads"]] == [quote_plus(k, safe="-_.~") for k in keys]
    assert unquote_plus(enc["Prefix"]) == base + "/"

    page = s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=base + "/", MaxUploads=2)
    assert page["IsTruncated"] and page["NextKeyMarker"] == keys[1]
    rest = s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=base + "/",
                                     KeyMarker=page["NextKeyMarker"], UploadIdMarker=page["NextUploadIdMarker"])
    assert [u["Key"] for u in rest["Uploads"]] == keys[2:]
    rolled = s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=f"scratch/{uid}/", Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == [base + "/"]

    done, aborted = keys[0], keys[1:]
    part = s3.upload_part(Bucket=stack.bucket, Key=done, UploadId=ids[done], PartNumber=1, Body=b"part")
    parts = s3.list_parts(Bucket=stack.bucket, Key=done, UploadId=ids[done])
    assert parts["Key"] == done and [p["PartNumber"] for p in parts["Parts"]] == [1]
    s3.complete_multipart_upload(Bucket=stack.bucket, Key=done, UploadId=ids[done],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    for k in aborted:
        s3.abort_multipart_upload(Bucket=stack.bucket, Key=k, UploadId=ids[k])
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=base + "/")
    assert s3.get_object(Bucket=stack.bucket, Key=done)["Body"].read() == b"part"
    listed = s3.list_objects_v2(Bucket=stack.bucket, Prefix=base + "/")
    assert [o["Key"] for o in listed["Contents"]] == [done]


def test_list_multipart_uploads_of_a_missing_bucket(stack, s3):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_multipart_uploads(Bucket="no-such-bucket-here")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
