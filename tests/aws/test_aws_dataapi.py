"""Data API requests equal boto3's `rds-data` requests; responses and errors
decode as boto3 decodes them.

boto3 talks to a loopback listener: its request bodies are captured and its
parser is fed canned responses. The crate gets the same inputs through the
`vectors` example.
"""

from __future__ import annotations

import base64
import json
from unittest import mock

import boto3
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .aws_loopback import Canned
from .support import AKID, SECRET, T0, T0_DT, creds_json

CLUSTER = "arn:aws:rds:eu-west-1:123456789012:cluster:pixport"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pixport-AbCdEf"
BASE = {"resourceArn": CLUSTER, "secretArn": SECRET_ARN}

EVERY_VALUE = [
    {"name": "n", "value": {"isNull": True}},
    {"name": "b", "value": {"booleanValue": False}},
    {"name": "l", "value": {"longValue": -9223372036854775808}},
    {"name": "d", "value": {"doubleValue": 0.1}},
    {"name": "d2", "value": {"doubleValue": 1e300}},
    {"name": "s", "value": {"stringValue": "ü \"quoted\" \n\t 😀"}},
    {"name": "blob", "value": {"blobValue": b"\x00\xff\x10binary"}},
    {"name": "ab", "value": {"arrayValue": {"booleanValues": [True, False]}}},
    {"name": "al", "value": {"arrayValue": {"longValues": [1, -2, 3]}}},
    {"name": "ad", "value": {"arrayValue": {"doubleValues": [1.5, -0.25]}}},
    {"name": "as", "value": {"arrayValue": {"stringValues": ["a", "ü"]}}},
    {"name": "aa", "value": {"arrayValue": {"arrayValues": [{"longValues": [1]}, {"arrayValues": [{"stringValues": ["x"]}]}]}}},
    {"name": "j", "value": {"stringValue": "{\"a\":1}"}, "typeHint": "JSON"},
    {"name": "u", "value": {"stringValue": "6f1b8a8e-0000-4000-8000-000000000000"}, "typeHint": "UUID"},
    {"name": "ts", "value": {"stringValue": "2024-05-01 12:00:00"}, "typeHint": "TIMESTAMP"},
    {"name": "dt", "value": {"stringValue": "2024-05-01"}, "typeHint": "DATE"},
    {"name": "tm", "value": {"stringValue": "12:00:00"}, "typeHint": "TIME"},
    {"name": "dec", "value": {"stringValue": "12.345"}, "typeHint": "DECIMAL"},
]

REQUESTS = [
    ("ExecuteStatement", "execute_statement", {**BASE, "sql": "SELECT 1"}),
    ("ExecuteStatement", "execute_statement", {
        **BASE, "sql": "SELECT * FROM t WHERE a = :a", "database": "pixport", "schema": "public",
        "parameters": EVERY_VALUE, "transactionId": "tx-123", "includeResultMetadata": True,
        "continueAfterTimeout": False,
        "resultSetOptions": {"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"},
        "formatRecordsAs": "JSON",
    }),
    ("ExecuteStatement", "execute_statement", {**BASE, "sql": "SELECT 1", "formatRecordsAs": "NONE",
                                               "resultSetOptions": {"decimalReturnType": "STRING"}}),
    ("BatchExecuteStatement", "batch_execute_statement", {
        **BASE, "sql": "INSERT INTO t VALUES (:a, :b)", "database": "pixport",
        "parameterSets": [EVERY_VALUE[:6], EVERY_VALUE[6:]], "transactionId": "tx-1",
    }),
    ("BatchExecuteStatement", "batch_execute_statement", {**BASE, "sql": "DELETE FROM t", "schema": "s"}),
    ("BeginTransaction", "begin_transaction", {**BASE}),
    ("BeginTransaction", "begin_transaction", {**BASE, "database": "pixport", "schema": "public"}),
    ("CommitTransaction", "commit_transaction", {**BASE, "transactionId": "tx-123"}),
    ("RollbackTransaction", "rollback_transaction", {**BASE, "transactionId": "tx-123"}),
]

OK_BODIES = {
    "ExecuteStatement": b'{"numberOfRecordsUpdated": 0}',
    "BatchExecuteStatement": b'{"updateResults": []}',
    "BeginTransaction": b'{"transactionId": "tx"}',
    "CommitTransaction": b'{"transactionStatus": "Transaction Committed"}',
    "RollbackTransaction": b'{"transactionStatus": "Rollback Complete"}',
}


def to_wire(obj):
    """boto3 kwargs -> wire JSON (blobs base64), the crate's input."""
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    if isinstance(obj, dict):
        return {k: to_wire(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_wire(v) for v in obj]
    return obj


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def client(lb, token=None):
    session = boto3.session.Session(
        aws_access_key_id=AKID, aws_secret_access_key=SECRET, aws_session_token=token, region_name="eu-west-1"
    )
    return session.client("rds-data", endpoint_url=lb.url, config=Config(retries={"max_attempts": 1, "mode": "standard"}))


@pytest.mark.parametrize("token", [None, "temp/token+=="])
def test_request_bodies_equal_boto3(run_vectors, frozen_time, loopback, token):
    c = client(loopback, token)
    cases = []
    for op, method, kwargs in REQUESTS:
        loopback.response = Canned(200, {"Content-Type": "application/json"}, OK_BODIES[op])
        getattr(c, method)(**kwargs)
        cases.append({"op": "dataapi_request", "operation": op, "request": to_wire(kwargs),
                      "creds": creds_json(token), "region": "eu-west-1", "endpoint": loopback.url, "time": T0})
    results = run_vectors(cases)
    for (op, _, _), captured, result in zip(REQUESTS, loopback.requests, results):
        ours = result["ok"]
        body = base64.b64decode(ours["body_b64"])
        assert canonical(json.loads(body)) == canonical(json.loads(captured.body)), op
        assert ours["method"] == captured.method == "POST"
        assert ours["url"] == loopback.url + captured.path
        assert ours["headers"]["content-type"] == captured.headers["content-type"]
        assert ours["headers"]["x-amz-date"] == captured.headers["x-amz-date"]
        # Bodies differ in whitespace, so signatures do too; botocore checks ours.
        req = AWSRequest(method="POST", url=ours["url"], data=body,
                         headers={"Content-Type": ours["headers"]["content-type"]})
        with mock.patch("botocore.auth.get_current_datetime", return_value=T0_DT):
            SigV4Auth(Credentials(AKID, SECRET, token), "rds-data", "eu-west-1").add_auth(req)
        assert ours["headers"]["authorization"] == req.headers["Authorization"], op
        signed = captured.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        assert f"SignedHeaders={signed}," in ours["headers"]["authorization"]


def test_default_endpoint_and_paths():
    model = botocore.session.get_session().get_service_model("rds-data")
    assert model.signing_name == "rds-data"
    paths = {name: model.operation_model(name).http["requestUri"] for name, _, _ in REQUESTS}
    assert paths == {"ExecuteStatement": "/Execute", "BatchExecuteStatement": "/BatchExecute",
                     "BeginTransaction": "/BeginTransaction", "CommitTransaction": "/CommitTransaction",
                     "RollbackTransaction": "/RollbackTransaction"}
    c = boto3.session.Session(aws_access_key_id=AKID, aws_secret_access_key=SECRET,
                              region_name="eu-west-1").client("rds-data")
    assert c.meta.endpoint_url == "https://rds-data.eu-west-1.amazonaws.com"


# --- responses -------------------------------------------------------------

ALL_FIELDS_ROW = [
    {"isNull": True}, {"booleanValue": True}, {"longValue": 42}, {"doubleValue": 2.5},
    {"stringValue": "ü"}, {"blobValue": "AP8Q"},
    {"arrayValue": {"longValues": [1, 2]}},
    {"arrayValue": {"arrayValues": [{"stringValues": ["a"]}, {"doubleValues": [0.5]}, {"booleanValues": [False]}]}},
]
COLUMNS = [
    {"name": n, "label": n, "type": t, "typeName": tn, "schemaName": "", "tableName": "photos",
     "isAutoIncrement": n == "id", "isSigned": True, "isCurrency": False, "isCaseSensitive": n == "s",
     "nullable": 1, "precision": 10, "scale": 0, "arrayBaseColumnType": 0}
    for n, t, tn in [("nul", 12, "varchar"), ("b", -7, "bit"), ("id", 4, "int4"), ("d", 8, "float8"),
                     ("s", 12, "text"), ("blob", -2, "bytea"), ("arr", 2003, "_int4"), ("nested", 2003, "_text")]
]

RESPONSES = [
    ("ExecuteStatement", {"records": [ALL_FIELDS_ROW, ALL_FIELDS_ROW], "columnMetadata": COLUMNS,
                          "numberOfRecordsUpdated": 0}),
    ("ExecuteStatement", {"records": [[{"longValue": 1}]], "numberOfRecordsUpdated": 0}),
    ("ExecuteStatement", {"numberOfRecordsUpdated": 3, "generatedFields": [{"longValue": 17}, {"stringValue": "x"}]}),
    ("ExecuteStatement", {"formattedRecords": "[{\"id\":1,\"title\":\"a\"},{\"id\":2,\"title\":null}]",
                          "numberOfRecordsUpdated": 0}),
    ("ExecuteStatement", {"records": [], "columnMetadata": [], "numberOfRecordsUpdated": 0}),
    ("ExecuteStatement", {}),
    ("BatchExecuteStatement", {"updateResults": [{"generatedFields": [{"longValue": 1}]}, {"generatedFields": []}, {}]}),
    ("BatchExecuteStatement", {}),
    ("BeginTransaction", {"transactionId": "AQIDBAUGBwgJCgsMDQ4PEA=="}),
    ("CommitTransaction", {"transactionStatus": "Transaction Committed"}),
    ("RollbackTransaction", {"transactionStatus": "Rollback Complete"}),
    ("CommitTransaction", {}),
]
METHODS = {op: m for op, m, _ in REQUESTS}
SAMPLE_KWARGS = {op: kw for op, _, kw in REQUESTS}


def normalize(obj):
    """boto3's parsed output and the crate's serialised output, made comparable."""
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    if isinstance(obj, dict):
        return {k: normalize(v) for k, v in obj.items()
                if k != "ResponseMetadata" and v is not None and v != [] and v != {}}
    if isinstance(obj, list):
        return [normalize(v) for v in obj]
    return obj


@pytest.mark.parametrize("op,body", RESPONSES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(RESPONSES)])
def test_responses_decode_like_boto3(run_vectors, loopback, op, body):
    raw = json.dumps(body).encode()
    loopback.response = Canned(200, {"Content-Type": "application/json"}, raw)
    theirs = getattr(client(loopback), METHODS[op])(**SAMPLE_KWARGS[op])
    [r] = run_vectors([{"op": "dataapi_response", "operation": op, "status": 200, "body": raw.decode()}])
    assert "ok" in r, r
    assert canonical(normalize(r["ok"])) == canonical(normalize(theirs))


def test_rows_decode_by_column_label(run_vectors):
    body = {"records": [ALL_FIELDS_ROW], "columnMetadata": COLUMNS}
    [r] = run_vectors([{"op": "dataapi_response", "operation": "ExecuteStatement", "status": 200,
                        "body": json.dumps(body)}])
    [row] = r["rows"]["ok"]
    assert row == {"nul": None, "b": True, "id": 42, "d": 2.5, "s": "ü", "blob": [0, 255, 16],
                   "arr": [1, 2], "nested": [["a"], [0.5], [False]]}
    [r] = run_vectors([{"op": "dataapi_response", "operation": "ExecuteStatement", "status": 200,
                        "body": json.dumps(RESPONSES[3][1])}])
    assert r["rows"]["ok"] == [{"id": 1, "title": "a"}, {"id": 2, "title": None}]
    [r] = run_vectors([{"op": "dataapi_response", "operation": "ExecuteStatement", "status": 200,
                        "body": json.dumps(RESPONSES[1][1])}])
    assert "includeResultMetadata" in r["rows"]["error"]


# --- errors ----------------------------------------------------------------

RETRYABLE = {"StatementTimeoutException", "ServiceUnavailableError", "DatabaseResumingException",
             "DatabaseUnavailableException", "InternalServerErrorException"}


def model_errors():
    model = botocore.session.get_session().get_service_model("rds-data")
    return sorted((s.name, s.metadata["error"]["httpStatusCode"]) for s in model.error_shapes)


def expected_kind(code: str) -> str:
    for suffix in ("Exception", "Error"):
        if code.endswith(suffix):
            return code[: -len(suffix)]
    return code


def test_model_exceptions_are_the_known_set():
    names = {n for n, _ in model_errors()}
    assert names == {
        "AccessDeniedException", "BadRequestException", "DatabaseErrorException", "DatabaseNotFoundException",
        "DatabaseResumingException", "DatabaseUnavailableException", "ForbiddenException",
        "HttpEndpointNotEnabledException", "InternalServerErrorException", "InvalidResourceStateException",
        "InvalidSecretException", "NotFoundException", "SecretsErrorException", "ServiceUnavailableError",
        "StatementTimeoutException", "TransactionNotFoundException", "UnsupportedResultException",
    }


@pytest.mark.parametrize("code,status", model_errors())
@pytest.mark.parametrize("style", ["header", "body-code", "body-type"])
def test_errors_map_like_boto3(run_vectors, loopback, code, status, style):
    body = {"message": f"{code} happened"}
    headers = {"Content-Type": "application/json", "x-amzn-RequestId": "req-9"}
    if style == "header":
        headers["x-amzn-ErrorType"] = f"{code}:http://internal.amazon.com/coral/com.amazon.rdsdataservice/"
    elif style == "body-code":
        body["code"] = code
    else:
        body["__type"] = f"com.amazonaws.rdsdata#{code}"
    if code == "StatementTimeoutException":
        body["dbConnectionId"] = 77
    raw = json.dumps(body).encode()
    loopback.response = Canned(status, headers, raw)
    with pytest.raises(ClientError) as exc:
        client(loopback).execute_statement(**SAMPLE_KWARGS["ExecuteStatement"])
    theirs = exc.value.response
    [r] = run_vectors([{"op": "dataapi_response", "operation": "ExecuteStatement", "status": status,
                        "headers": {k.lower(): v for k, v in headers.items()}, "body": raw.decode()}])
    e = r["error"]
    assert e["code"] == theirs["Error"]["Code"] == code
    assert e["message"] == theirs["Error"]["Message"]
    assert e["request_id"] == theirs["ResponseMetadata"]["RequestId"]
    assert e["kind"] == expected_kind(code)
    assert e["retryable"] == (code in RETRYABLE or status >= 500)
    if code == "StatementTimeoutException":
        assert e["db_connection_id"] == 77 == theirs["dbConnectionId"]


@pytest.mark.parametrize("status,retryable", [(500, True), (502, True), (503, True), (429, True), (400, False),
                                              (403, False)])
def test_unknown_and_bodyless_errors(run_vectors, status, retryable):
    cases = [
        {"op": "dataapi_response", "operation": "BeginTransaction", "status": status, "body": ""},
        {"op": "dataapi_response", "operation": "CommitTransaction", "status": status,
         "headers": {"x-amzn-errortype": "BrandNewException"}, "body": "{}"},
    ]
    bare, unknown = run_vectors(cases)
    assert bare["error"]["code"] == str(status)
    assert unknown["error"]["code"] == "BrandNewException"
    assert unknown["error"]["kind"] == "Unknown"
    assert bare["error"]["retryable"] == unknown["error"]["retryable"] == retryable
