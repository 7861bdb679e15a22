"""The local S3 speaks S3 to unmodified clients and refuses what S3 refuses."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import botocore.exceptions
import pytest
import requests


def error_code(resp: requests.Response) -> str:
    import re

    m = re.search(r"<Code>([^<]+)</Code>", resp.text)
    return m.group(1) if m else ""


def test_put_get_list_delete(stack, s3, uid):
    key = f"scratch/{uid}/hello.txt"
    put = s3.put_object(Bucket=stack.bucket, Key=key, Body=b"hello", ContentType="text/plain")
    assert put["ETag"] == '"%s"' % hashlib.md5(b"hello").hexdigest()
    got = s3.get_object(Bucket=stack.bucket, Key=key)
    assert got["Body"].read() == b"hello"
    assert got["ContentType"] == "text/plain"
    assert got["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
    listed = s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"scratch/{uid}/")
    assert [o["Key"] for o in listed["Contents"]] == [key]
    assert s3.head_object(Bucket=stack.bucket, Key=key)["ContentLength"] == 5
    s3.delete_object(Bucket=stack.bucket, Key=key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=stack.bucket, Key=key)
    assert e.value.response["Error"]["Code"] == "NoSuchKey"


def test_multipart_upload(stack, s3, uid):
    key = f"scratch/{uid}/big.bin"
    part1, part2 = b"a" * (5 * 1024 * 1024), b"b" * 1000
    mpu = s3.create_multipart_upload(Bucket=stack.bucket, Key=key)
    parts = []
    for n, data in enumerate([part1, part2], start=1):
        r = s3.upload_part(Bucket=stack.bucket, Key=key, UploadId=mpu["UploadId"], PartNumber=n, Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    done = s3.complete_multipart_upload(Bucket=stack.bucket, Key=key, UploadId=mpu["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["ETag"].strip('"').endswith("-2")
    body = s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    assert body == part1 + part2
    s3.delete_object(Bucket=stack.bucket, Key=key)


def test_aws_cli_cp_up_and_down(stack, uid, tmp_path):
    src = tmp_path / "up.bin"
    src.write_bytes(bytes(range(256)) * 400)
    url = f"s3://{stack.bucket}/scratch/{uid}/cli.bin"
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", stack.s3_url, "s3"]
    subprocess.run(aws + ["cp", str(src), url], env=stack.aws_env(), check=True, capture_output=True)
    dst = tmp_path / "down.bin"
    subprocess.run(aws + ["cp", url, str(dst)], env=stack.aws_env(), check=True, capture_output=True)
    assert dst.read_bytes() == src.read_bytes()


def test_aws_cli_multipart_cp(stack, uid, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(b"x" * (9 * 1024 * 1024))  # over awscli's 8 MiB multipart threshold
    url = f"s3://{stack.bucket}/scratch/{uid}/big-cli.bin"
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", stack.s3_url, "s3"]
    subprocess.run(aws + ["cp", str(src), url], env=stack.aws_env(), check=True, capture_output=True)
    dst = tmp_path / "down.bin"
    subprocess.run(aws + ["cp", url, str(dst)], env=stack.aws_env(), check=True, capture_output=True)
    assert dst.read_bytes() == src.read_bytes()


def presigned_put(s3, stack, key: str, expires: int = 300) -> str:
    return s3.generate_presigned_url("put_object", Params={"Bucket": stack.bucket, "Key": key}, ExpiresIn=expires)


def test_presigned_put_works(stack, s3, uid):
    key = f"scratch/{uid}/presigned.txt"
    r = requests.put(presigned_put(s3, stack, key), data=b"via presigned url", timeout=10)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read() == b"via presigned url"


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    q = dict(parse_qsl(parts.query, keep_blank_values=True))
    q.update(changes)
    return urlunsplit(parts._replace(query=urlencode(q)))


def test_tampered_presigned_put_is_refused(stack, s3, uid):
    key = f"scratch/{uid}/tampered.txt"
    url = presigned_put(s3, stack, key)
    sig = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    r = requests.put(with_query(url, **{"X-Amz-Signature": flipped}), data=b"x", timeout=10)
    assert r.status_code == 403
    assert error_code(r) == "SignatureDoesNotMatch"
    # Changing what was signed (the key) is caught the same way.
    other = url.replace(f"/{uid}/tampered.txt", f"/{uid}/other.txt")
    r = requests.put(other, data=b"x", timeout=10)
    assert (r.status_code, error_code(r)) == (403, "SignatureDoesNotMatch")
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_object(Bucket=stack.bucket, Key=key)


def test_expired_presigned_put_is_refused(stack, s3, uid):
    key = f"scratch/{uid}/expired.txt"
    url = presigned_put(s3, stack, key, expires=1)
    time.sleep(2.1)
    r = requests.put(url, data=b"x", timeout=10)
    assert r.status_code == 403
    assert error_code(r) == "AccessDenied"
    assert "Request has expired" in r.text


def test_wrong_key_is_refused(stack, uid):
    bad = stack.s3_client(aws_access_key_id="AKIANOTAPIXPORTKEY00")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.put_object(Bucket=stack.bucket, Key=f"scratch/{uid}/x", Body=b"x")
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    url = presigned_put(bad, stack, f"scratch/{uid}/y")
    r = requests.put(url, data=b"x", timeout=10)
    assert (r.status_code, error_code(r)) == (403, "InvalidAccessKeyId")


def test_wrong_secret_is_refused(stack, uid):
    bad = stack.s3_client(aws_secret_access_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.put_object(Bucket=stack.bucket, Key=f"scratch/{uid}/x", Body=b"x")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@pytest.mark.parametrize("header", ["ChecksumSHA256", "ChecksumCRC32C", "ContentMD5"])
def test_checksum_mismatch_is_refused_and_keeps_old_object(stack, s3, uid, header):
    key = f"scratch/{uid}/sum.txt"
    s3.put_object(Bucket=stack.bucket, Key=key, Body=b"original")
    wrong = {
        "ChecksumSHA256": b64(hashlib.sha256(b"something else").digest()),
        "ChecksumCRC32C": "AAAAAA==",
        "ContentMD5": b64(hashlib.md5(b"something else").digest()),
    }[header]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=stack.bucket, Key=key, Body=b"replacement", **{header: wrong})
    assert e.value.response["Error"]["Code"] == "BadDigest"
    assert s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read() == b"original"


def test_matching_checksum_is_accepted(stack, s3, uid):
    key = f"scratch/{uid}/ok.txt"
    s3.put_object(Bucket=stack.bucket, Key=key, Body=b"data", ChecksumSHA256=b64(hashlib.sha256(b"data").digest()))
    head = s3.head_object(Bucket=stack.bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64(hashlib.sha256(b"data").digest())


def test_malformed_checksum_is_invalid_request(stack, uid):
    # A raw request, so the SDK cannot "fix" the header before sending.
    s3 = stack.s3_client()
    url = s3.generate_presigned_url("put_object", Params={"Bucket": stack.bucket, "Key": f"scratch/{uid}/m"})
    r = requests.put(url, data=b"x", headers={"x-amz-checksum-sha256": "not-base64!"}, timeout=10)
    assert r.status_code == 400
    assert error_code(r) == "InvalidRequest"
