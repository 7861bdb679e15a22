"""Presigned S3 URLs are byte-identical to boto3's generate_presigned_url."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from .support import AKID, SECRET, T0, creds_json

KEYS = [
    "photo.jpg",
    "a b/c d.jpg",
    "ünïcødé/日本語/😀.png",
    "plus+sign",
    "100%/%20literal",
    "tilde~and.dots..x",
    "nested/deep/path/",
    "a//b",
    "/leading",
    "sp!ec*ia'l(c)h;a:r@s&=$,?#[]",
]

# region, base_url for the crate, endpoint_url for boto3 (None = AWS default), path_style
ENDPOINTS = [
    ("eu-west-1", "https://s3.eu-west-1.amazonaws.com", None, True),
    ("eu-west-1", "https://s3.eu-west-1.amazonaws.com", None, False),
    # boto3 uses the global endpoint for us-east-1 virtual-hosted.
    ("us-east-1", "https://s3.amazonaws.com", None, False),
    ("us-east-1", "http://127.0.0.1:9000", "http://127.0.0.1:9000", True),
    ("eu-central-1", "http://localhost:4566", "http://localhost:4566", False),
]


def boto3_client(region, endpoint_url, path_style, token=None):
    session = boto3.session.Session(
        aws_access_key_id=AKID, aws_secret_access_key=SECRET, aws_session_token=token, region_name=region
    )
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path" if path_style else "virtual"}),
    )


def base_case(op, region, base_url, path_style, key, expires, token=None):
    return {
        "op": op, "creds": creds_json(token), "region": region, "time": T0, "expires": expires,
        "endpoint": {"base_url": base_url, "path_style": path_style}, "bucket": "my-bucket", "key": key,
    }


def compare(run_vectors, pairs):
    results = run_vectors([c for c, _ in pairs])
    for (case, expected), result in zip(pairs, results):
        assert "ok" in result, (case, result)
        assert result["ok"]["url"] == expected, case


@pytest.mark.parametrize("region,base_url,endpoint_url,path_style", ENDPOINTS)
def test_presigned_get_matches_boto3(run_vectors, frozen_time, region, base_url, endpoint_url, path_style):
    client = boto3_client(region, endpoint_url, path_style)
    pairs = []
    for key in KEYS:
        for expires in (1, 900, 604800):
            url = client.generate_presigned_url(
                "get_object", Params={"Bucket": "my-bucket", "Key": key}, ExpiresIn=expires
            )
            pairs.append((base_case("presign_get", region, base_url, path_style, key, expires), url))
    compare(run_vectors, pairs)


HEADER_SETS = [
    {},
    {"ContentType": "image/jpeg"},
    {"ContentType": "image/jpeg", "ChecksumSHA256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
    {"ContentType": "image/png", "ChecksumCRC32C": "4waSgw==", "ContentLength": 9},
    {"ChecksumCRC32C": "AAAAAA=="},
    {"ContentType": "text/plain; charset=utf-8", "ContentLength": 0},
]


def crate_headers(params):
    out = {}
    if "ContentType" in params:
        out["content_type"] = params["ContentType"]
    if "ContentLength" in params:
        out["content_length"] = params["ContentLength"]
    if "ChecksumSHA256" in params:
        out["checksum"] = {"algorithm": "sha256", "value": params["ChecksumSHA256"]}
    if "ChecksumCRC32C" in params:
        out["checksum"] = {"algorithm": "crc32c", "value": params["ChecksumCRC32C"]}
    return out


@pytest.mark.parametrize("region,base_url,endpoint_url,path_style", ENDPOINTS)
def test_presigned_put_matches_boto3(run_vectors, frozen_time, region, base_url, endpoint_url, path_style):
    client = boto3_client(region, endpoint_url, path_style)
    pairs = []
    for key in KEYS[:6]:
        for params in HEADER_SETS:
            url = client.generate_presigned_url(
                "put_object", Params={"Bucket": "my-bucket", "Key": key, **params}, ExpiresIn=600
            )
            case = base_case("presign_put", region, base_url, path_style, key, 600) | crate_headers(params)
            pairs.append((case, url))
    compare(run_vectors, pairs)


def test_presigned_put_returns_headers_to_send(run_vectors):
    case = base_case("presign_put", "eu-west-1", "https://s3.eu-west-1.amazonaws.com", False, "k", 60) | {
        "content_type": "image/webp", "content_length": 3,
        "checksum": {"algorithm": "sha256", "value": "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="},
    }
    [r] = run_vectors([case])
    assert r["ok"]["method"] == "PUT"
    assert r["ok"]["headers"] == {
        "content-type": "image/webp", "content-length": "3",
        "x-amz-checksum-sha256": "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
    }
    assert "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256&" in r["ok"]["url"]


@pytest.mark.parametrize("region,base_url,endpoint_url,path_style", ENDPOINTS)
def test_presigned_upload_part_matches_boto3(run_vectors, frozen_time, region, base_url, endpoint_url, path_style):
    client = boto3_client(region, endpoint_url, path_style)
    pairs = []
    for upload_id in ["simple", "VXBsb2FkIElE+/=", "a b%c"]:
        for part in (1, 2, 10000):
            for params in ({}, {"ChecksumSHA256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}):
                url = client.generate_presigned_url(
                    "upload_part",
                    Params={"Bucket": "my-bucket", "Key": "up/ü +.bin", "UploadId": upload_id, "PartNumber": part,
                            **params},
                    ExpiresIn=3600,
                )
                case = base_case("presign_upload_part", region, base_url, path_style, "up/ü +.bin", 3600)
                case |= {"upload_id": upload_id, "part_number": part} | crate_headers(params)
                pairs.append((case, url))
    compare(run_vectors, pairs)


def test_session_token_matches_boto3(run_vectors, frozen_time):
    token = "FwoGZXIvYXdzEBYaDH+/tok=="
    client = boto3_client("eu-west-1", None, False, token=token)
    url = client.generate_presigned_url("get_object", Params={"Bucket": "my-bucket", "Key": "k"}, ExpiresIn=300)
    case = base_case("presign_get", "eu-west-1", "https://s3.eu-west-1.amazonaws.com", False, "k", 300, token)
    compare(run_vectors, [(case, url)])
    assert "X-Amz-Security-Token=FwoGZXIvYXdzEBYaDH%2B%2Ftok%3D%3D&X-Amz-Signature=" in url


@pytest.mark.parametrize(
    "change",
    [
        {"key": ""},
        {"key": "a/../b"},
        {"key": "."},
        {"bucket": "Bad_Bucket"},
        {"bucket": "a/b"},
        {"expires": 0},
        {"expires": 604801},
    ],
)
def test_invalid_inputs_are_errors(run_vectors, change):
    case = base_case("presign_get", "eu-west-1", "https://s3.eu-west-1.amazonaws.com", False, "k", 60) | change
    [r] = run_vectors([case])
    assert r["error"]["type"] == "other"
    assert r["error"]["retryable"] is False
