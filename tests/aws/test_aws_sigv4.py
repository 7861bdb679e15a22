"""SigV4 test-suite vectors: crate == botocore == the literals in aws/src/sign.rs.

The vectors are those of the AWS aws-sig-v4-test-suite that an
`http::Request` can express (credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z,
us-east-1, service "service"). botocore's SigV4Auth is the independent
implementation; the Rust unit tests hold the same signatures as literals,
and this test checks those literals too.
"""

from __future__ import annotations

import datetime
import re
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .conftest import ROOT
from .support import AKID, SECRET

SUITE_TIME = datetime.datetime(2015, 8, 30, 12, 36, 0)
SUITE_EPOCH = 1_440_938_160
TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YU"
    "uwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6f"
    "E8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQw"
    "j2ICCR/oLxBA=="
)
UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# name, method, url, headers, body, token
VECTORS = [
    ("get-vanilla", "GET", "https://example.amazonaws.com/", [], "", None),
    ("get-vanilla-query-order-key-case", "GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", [], "", None),
    ("get-vanilla-query-unreserved", "GET", f"https://example.amazonaws.com/?{UNRESERVED}={UNRESERVED}", [], "", None),
    ("get-utf8 (sent encoded)", "GET", "https://example.amazonaws.com/%E1%88%B4", [], "", None),
    ("get-relative-relative", "GET", "https://example.amazonaws.com/example1/example2/../..", [], "", None),
    ("get-header-value-trim", "GET", "https://example.amazonaws.com/",
     [["My-Header1", " value1"], ["My-Header2", ' "a   b   c"']], "", None),
    ("post-vanilla", "POST", "https://example.amazonaws.com/", [], "", None),
    ("post-x-www-form-urlencoded", "POST", "https://example.amazonaws.com/",
     [["Content-Type", "application/x-www-form-urlencoded"]], "Param1=value1", None),
    ("post-sts-header-after", "POST", "https://example.amazonaws.com/", [], "", TOKEN),
]


def botocore_authorization(method, url, headers, body, token):
    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body.encode())
    with mock.patch("botocore.auth.get_current_datetime", return_value=SUITE_TIME):
        SigV4Auth(Credentials(AKID, SECRET, token), "service", "us-east-1").add_auth(req)
    return req.headers["Authorization"]


@pytest.mark.parametrize("name,method,url,headers,body,token", VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_matches_botocore_and_rust_literal(run_vectors, name, method, url, headers, body, token):
    case = {
        "op": "sign", "method": method, "url": url, "header_list": headers, "body": body,
        "service": "service", "region": "us-east-1", "time": SUITE_EPOCH,
        "creds": {"access_key_id": AKID, "secret_access_key": SECRET, "session_token": token},
    }
    [result] = run_vectors([case])
    ours = result["ok"]["headers"]["authorization"]
    theirs = botocore_authorization(method, url, headers, body, token)
    assert ours == theirs
    signature = theirs.rsplit("Signature=", 1)[1]
    rust_tests = (ROOT / "aws" / "src" / "sign.rs").read_text()
    assert re.search(rf'"{signature}"', rust_tests), f"{name}: literal {signature} missing from sign.rs tests"
    if token:
        assert result["ok"]["headers"]["x-amz-security-token"] == token
