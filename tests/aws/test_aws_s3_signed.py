"""Signed S3 requests equal boto3's, and S3 responses parse as boto3 reads them.

boto3 sends each operation to a loopback listener with the signing clock
frozen; the crate builds the same operation. URL path, query parameters,
body and the whole `Authorization` header must match.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .aws_loopback import Canned
from .support import AKID, SECRET, T0, creds_json

KEYS = ["photo.jpg", "a b/ü+%~!.jpg", "a//b", "日本/😀"]


def client(lb, token=None):
    session = boto3.session.Session(
        aws_access_key_id=AKID, aws_secret_access_key=SECRET, aws_session_token=token, region_name="eu-west-1"
    )
    return session.client(
        "s3",
        endpoint_url=lb.url,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def case(lb, action, key="", token=None, **extra):
    return {
        "op": "s3_signed", "action": action, "creds": creds_json(token), "region": "eu-west-1", "time": T0,
        "endpoint": {"base_url": lb.url, "path_style": True}, "bucket": "my-bucket", "key": key, **extra,
    }


def assert_same(captured, ours):
    url = urlsplit(ours["url"])
    cap = urlsplit(captured.path)
    assert ours["method"] == captured.method
    assert url.path == cap.path
    assert sorted(parse_qsl(url.query, keep_blank_values=True)) == sorted(parse_qsl(cap.query, keep_blank_values=True))
    assert base64.b64decode(ours["body_b64"]) == captured.body
    for h in ("x-amz-date", "x-amz-content-sha256", "authorization"):
        assert ours["headers"][h] == captured.headers[h], h
    if "x-amz-security-token" in captured.headers:
        assert ours["headers"]["x-amz-security-token"] == captured.headers["x-amz-security-token"]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("token", [None, "session/token+=="])
def test_object_requests_match_boto3(run_vectors, frozen_time, loopback, key, token):
    c = client(loopback, token)
    calls = []
    loopback.response = Canned(200, {"ETag": '"e"'}, b"")
    c.get_object(Bucket="my-bucket", Key=key)
    calls.append(case(loopback, "get", key, token))
    c.head_object(Bucket="my-bucket", Key=key)
    calls.append(case(loopback, "head", key, token))
    loopback.response = Canned(204, {}, b"")
    c.delete_object(Bucket="my-bucket", Key=key)
    calls.append(case(loopback, "delete", key, token))
    loopback.response = Canned(200, {"ETag": '"e"'}, b"")
    c.put_object(Bucket="my-bucket", Key=key, Body=b"hello world", ContentType="image/jpeg")
    calls.append(case(loopback, "put", key, token, body_b64=base64.b64encode(b"hello world").decode(),
                      content_type="image/jpeg"))
    body = b"\x00\x01binary"
    c.put_object(Bucket="my-bucket", Key=key, Body=body,
                 ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode())
    calls.append(case(loopback, "put", key, token, body_b64=base64.b64encode(body).decode(),
                      checksum_algorithm="sha256"))
    results = run_vectors(calls)
    assert len(loopback.requests) == len(calls)
    for captured, result in zip(loopback.requests, results):
        assert_same(captured, result["ok"])
    # The checksum the crate computed is the one boto3 was given.
    assert results[-1]["ok"]["headers"]["x-amz-checksum-sha256"] == loopback.requests[-1].headers["x-amz-checksum-sha256"]


LIST_EMPTY = b'<ListBucketResult><Name>my-bucket</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>'


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"Prefix": "a b/ü+"},
        {"Prefix": "", "Delimiter": "/"},
        {"Prefix": "x/", "Delimiter": "/", "MaxKeys": 5, "ContinuationToken": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
         "StartAfter": "x/a"},
    ],
)
def test_list_matches_boto3(run_vectors, frozen_time, loopback, params):
    loopback.response = Canned(200, {}, LIST_EMPTY)
    client(loopback).list_objects_v2(Bucket="my-bucket", **params)
    names = {"Prefix": "prefix", "Delimiter": "delimiter", "MaxKeys": "max_keys",
             "ContinuationToken": "continuation_token", "StartAfter": "start_after"}
    [r] = run_vectors([case(loopback, "list", list={names[k]: v for k, v in params.items()})])
    assert_same(loopback.last(), r["ok"])


def test_multipart_requests_match_boto3(run_vectors, frozen_time, loopback):
    c = client(loopback)
    key = "uploads/ü b+.bin"
    calls = []
    loopback.response = Canned(200, {}, b"<InitiateMultipartUploadResult><Bucket>my-bucket</Bucket><Key>k</Key>"
                                        b"<UploadId>up+/=</UploadId></InitiateMultipartUploadResult>")
    c.create_multipart_upload(Bucket="my-bucket", Key=key)
    calls.append(case(loopback, "create_mpu", key))
    c.create_multipart_upload(Bucket="my-bucket", Key=key, ContentType="image/jpeg", ChecksumAlgorithm="CRC32C")
    calls.append(case(loopback, "create_mpu", key, content_type="image/jpeg", checksum_algorithm="crc32c"))
    loopback.response = Canned(200, {}, b'<CompleteMultipartUploadResult><ETag>"x-2"</ETag></CompleteMultipartUploadResult>')
    c.complete_multipart_upload(Bucket="my-bucket", Key=key, UploadId="up+/=", MultipartUpload={"Parts": [
        {"ETag": '"e1"', "PartNumber": 1}, {"ETag": '"e2"', "PartNumber": 2}]})
    calls.append(case(loopback, "complete_mpu", key, upload_id="up+/=", parts=[
        {"part_number": 2, "etag": '"e2"'}, {"part_number": 1, "etag": '"e1"'}]))
    c.complete_multipart_upload(Bucket="my-bucket", Key=key, UploadId="u", MultipartUpload={"Parts": [
        {"ETag": '"e1"', "PartNumber": 1, "ChecksumCRC32C": "AAAAAA=="},
        {"ETag": '"e2"', "PartNumber": 2, "ChecksumCRC32C": "4waSgw=="}]})
    calls.append(case(loopback, "complete_mpu", key, upload_id="u", parts=[
        {"part_number": 1, "etag": '"e1"', "checksum": {"algorithm": "crc32c", "value": "AAAAAA=="}},
        {"part_number": 2, "etag": '"e2"', "checksum": {"algorithm": "crc32c", "value": "4waSgw=="}}]))
    loopback.response = Canned(204, {}, b"")
    c.abort_multipart_upload(Bucket="my-bucket", Key=key, UploadId="up+/=")
    calls.append(case(loopback, "abort_mpu", key, upload_id="up+/="))
    results = run_vectors(calls)
    for captured, result in zip(loopback.requests, results):
        assert_same(captured, result["ok"])
    assert loopback.requests[1].headers["x-amz-checksum-algorithm"] == "CRC32C"
    assert loopback.requests[1].headers["content-type"] == "image/jpeg"


# --- responses -------------------------------------------------------------

def s3_resp(action, status, body, headers=None):
    return {"op": "s3_response", "action": action, "status": status, "headers": headers or {},
            "body_b64": base64.b64encode(body).decode()}


ERRORS = [
    (404, b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key><RequestId>R1</RequestId><HostId>H1</HostId></Error>'),
    (403, b"<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><RequestId>R2</RequestId></Error>"),
    (400, b"<Error><Code>BadDigest</Code><Message>The CRC32C you specified did not match the calculated checksum.</Message><RequestId>R3</RequestId></Error>"),
    (503, b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>R4</RequestId></Error>"),
    (500, b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"),
]


@pytest.mark.parametrize("status,body", ERRORS)
def test_error_documents_parse_like_boto3(run_vectors, loopback, status, body):
    loopback.response = Canned(status, {"x-amz-request-id": "HDR-RID", "Content-Type": "application/xml"}, body)
    with pytest.raises(ClientError) as exc:
        client(loopback).get_object(Bucket="my-bucket", Key="k")
    err = exc.value.response["Error"]
    [r] = run_vectors([s3_resp("error", status, body, {"x-amz-request-id": "HDR-RID"})])
    e = r["error"]
    assert (e["code"], e["message"]) == (err["Code"], err["Message"])
    assert e["request_id"] == exc.value.response["ResponseMetadata"]["RequestId"]
    assert e["retryable"] == (status >= 500)


def test_head_404_like_boto3(run_vectors, loopback):
    loopback.response = Canned(404, {"x-amz-request-id": "RID"}, b"")
    with pytest.raises(ClientError) as exc:
        client(loopback).head_object(Bucket="my-bucket", Key="k")
    [r] = run_vectors([s3_resp("head", 404, b"", {"x-amz-request-id": "RID"})])
    assert r["error"]["code"] == exc.value.response["Error"]["Code"] == "404"
    assert r["error"]["message"] == exc.value.response["Error"]["Message"]


def test_list_page_parses_like_boto3(run_vectors, loopback):
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>my-bucket</Name><Prefix>a+b%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
        b"<Delimiter>%2F</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
        b"<NextContinuationToken>next/tok=</NextContinuationToken>"
        b"<Contents><Key>a+b%2F%C3%BC%2B%25.jpg</Key><LastModified>2024-05-01T12:00:00.000Z</LastModified>"
        b"<ETag>&quot;e1&quot;</ETag><Size>10</Size><StorageClass>STANDARD</StorageClass></Contents>"
        b"<Contents><Key>a+b%2Fz</Key><LastModified>2024-05-01T12:00:00.000Z</LastModified>"
        b"<ETag>\"e2\"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>"
        b"<CommonPrefixes><Prefix>a+b%2Fsub%2F</Prefix></CommonPrefixes></ListBucketResult>"
    )
    loopback.response = Canned(200, {}, body)
    page = client(loopback).list_objects_v2(Bucket="my-bucket", Prefix="a b/", Delimiter="/")
    [r] = run_vectors([s3_resp("list", 200, body)])
    ours = r["ok"]
    assert ours["keys"] == [o["Key"] for o in page["Contents"]]
    assert ours["sizes"] == [o["Size"] for o in page["Contents"]]
    assert ours["etags"] == [o["ETag"] for o in page["Contents"]]
    assert ours["common_prefixes"] == [p["Prefix"] for p in page["CommonPrefixes"]]
    assert ours["is_truncated"] == page["IsTruncated"]
    assert ours["next_continuation_token"] == page["NextContinuationToken"]


def test_multipart_results_parse_like_boto3(run_vectors, loopback):
    c = client(loopback)
    init = b'<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>my-bucket</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>'
    loopback.response = Canned(200, {}, init)
    theirs = c.create_multipart_upload(Bucket="my-bucket", Key="k")
    done = b'<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>http://x/my-bucket/k</Location><Bucket>my-bucket</Bucket><Key>k</Key><ETag>"abc-2"</ETag></CompleteMultipartUploadResult>'
    loopback.response = Canned(200, {}, done)
    theirs_done = c.complete_multipart_upload(Bucket="my-bucket", Key="k", UploadId="u",
                                              MultipartUpload={"Parts": [{"ETag": '"e"', "PartNumber": 1}]})
    err200 = b'<?xml version="1.0" encoding="UTF-8"?>\n\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>R</RequestId><HostId>H</HostId></Error>'
    loopback.response = Canned(200, {}, err200)
    with pytest.raises(ClientError) as exc:
        c.complete_multipart_upload(Bucket="my-bucket", Key="k", UploadId="u",
                                    MultipartUpload={"Parts": [{"ETag": '"e"', "PartNumber": 1}]})
    r_init, r_done, r_err = run_vectors([s3_resp("create_mpu", 200, init), s3_resp("complete_mpu", 200, done),
                                         s3_resp("complete_mpu", 200, err200)])
    assert r_init["ok"]["upload_id"] == theirs["UploadId"]
    assert r_done["ok"]["etag"] == theirs_done["ETag"]
    assert r_done["ok"]["location"] == theirs_done["Location"]
    assert r_err["error"]["code"] == exc.value.response["Error"]["Code"] == "InternalError"
    assert r_err["error"]["retryable"] is True
