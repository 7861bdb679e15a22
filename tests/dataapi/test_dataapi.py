"""The local Data API through boto3's unmodified `rds-data` client."""

from __future__ import annotations

import base64
import datetime
import json
import time
from unittest import mock

import botocore.auth
import pytest
import requests
from botocore.exceptions import ClientError

from dataapi import dbctl
from support import budget


def p(name, **value):
    hint = value.pop("typeHint", None)
    out = {"name": name, "value": value}
    if hint:
        out["typeHint"] = hint
    return out


def error(exc: ClientError) -> tuple[str, int, str]:
    r = exc.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def test_start_to_ready_is_under_five_seconds(dataapi):
    # Only meaningful when this session started the server itself.
    if dataapi.proc is None:
        pytest.skip("server was already running")
    assert dataapi.ready_seconds < 5, dataapi.ready_seconds


def test_insert_reports_generated_fields_and_counts(rds, arns, table):
    rds.execute_statement(sql=f"CREATE TABLE {table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))", **arns)
    r = rds.execute_statement(sql=f"INSERT INTO {table} (v) VALUES (:v)", parameters=[p("v", stringValue="a")], **arns)
    assert r["numberOfRecordsUpdated"] == 1
    assert r["generatedFields"] == [{"longValue": 1}]
    assert "records" not in r
    r = rds.execute_statement(sql=f"INSERT INTO {table} (v) VALUES ('b'), ('c')", **arns)
    assert r["numberOfRecordsUpdated"] == 2
    r = rds.execute_statement(sql=f"UPDATE {table} SET v = 'z' WHERE id > :id", parameters=[p("id", longValue=0)], **arns)
    assert r["numberOfRecordsUpdated"] == 3 and r["generatedFields"] == []
    r = rds.execute_statement(sql=f"SELECT id FROM {table} ORDER BY id", **arns)
    assert r["records"] == [[{"longValue": 1}], [{"longValue": 2}], [{"longValue": 3}]]
    assert r["numberOfRecordsUpdated"] == 0


def test_every_value_kind_round_trips(rds, arns, table):
    rds.execute_statement(sql=f"""CREATE TABLE {table} (
        id INT PRIMARY KEY, n INT NULL, b BOOLEAN, l BIGINT, u BIGINT UNSIGNED, d DOUBLE, f FLOAT,
        s VARCHAR(50), bl BLOB, dt DATE, tm TIME, ts DATETIME(3), dec1 DECIMAL(12,4), j JSON,
        uu CHAR(36), tx TEXT, bit1 BIT(1))""", **arns)
    blob = bytes(range(256))
    params = [
        p("id", longValue=1), p("n", isNull=True), p("b", booleanValue=True), p("l", longValue=-(2**63)),
        p("u", stringValue="18446744073709551615"), p("d", doubleValue=1.5e300), p("f", doubleValue=0.25),
        p("s", stringValue="héllo ✓ 'quoted' :notparam"), p("bl", blobValue=blob),
        p("dt", stringValue="2024-02-29", typeHint="DATE"), p("tm", stringValue="13:14:15", typeHint="TIME"),
        p("ts", stringValue="2024-02-29 13:14:15.123", typeHint="TIMESTAMP"),
        p("dec1", stringValue="12345678.1234", typeHint="DECIMAL"),
        p("j", stringValue='{"a": [1, 2]}', typeHint="JSON"),
        p("uu", stringValue="123e4567-e89b-12d3-a456-426614174000", typeHint="UUID"),
        p("tx", stringValue="x" * 1000), p("bit1", booleanValue=True),
    ]
    cols = [x["name"] for x in params]
    rds.execute_statement(
        sql=f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})",
        parameters=params, **arns)
    r = rds.execute_statement(sql=f"SELECT {', '.join(cols)} FROM {table}", **arns)
    (row,) = r["records"]
    got = dict(zip(cols, row))
    assert got["id"] == {"longValue": 1}
    assert got["n"] == {"isNull": True}
    assert got["b"] == {"booleanValue": True}
    assert got["l"] == {"longValue": -(2**63)}
    assert got["u"] == {"longValue": 2**64 - 1}
    assert got["d"] == {"doubleValue": 1.5e300}
    assert got["f"] == {"doubleValue": 0.25}
    assert got["s"] == {"stringValue": "héllo ✓ 'quoted' :notparam"}
    assert got["bl"] == {"blobValue": blob}
    assert got["dt"] == {"stringValue": "2024-02-29"}
    assert got["tm"] == {"stringValue": "13:14:15"}
    assert got["ts"] == {"stringValue": "2024-02-29 13:14:15.123"}
    assert got["dec1"] == {"stringValue": "12345678.1234"}
    assert json.loads(got["j"]["stringValue"]) == {"a": [1, 2]}
    assert got["uu"] == {"stringValue": "123e4567-e89b-12d3-a456-426614174000"}
    assert got["tx"] == {"stringValue": "x" * 1000}
    assert got["bit1"] == {"booleanValue": True}

    # The same values bound as parameters find the row (binary protocol path).
    r = rds.execute_statement(
        sql=f"SELECT id FROM {table} WHERE bl = :bl AND dt = :dt AND ts = :ts AND n IS NULL AND s = :s",
        parameters=[p("bl", blobValue=blob), p("dt", stringValue="2024-02-29", typeHint="DATE"),
                    p("ts", stringValue="2024-02-29 13:14:15.123", typeHint="TIMESTAMP"),
                    p("s", stringValue="héllo ✓ 'quoted' :notparam")], **arns)
    assert r["records"] == [[{"longValue": 1}]]


def test_bad_type_hint_values_and_arrays_are_refused(rds, arns):
    for param in (p("x", stringValue="2024-13-40", typeHint="DATE"),
                  p("x", stringValue="not-a-uuid", typeHint="UUID"),
                  p("x", stringValue="{bad json", typeHint="JSON")):
        with pytest.raises(rds.exceptions.BadRequestException):
            rds.execute_statement(sql="SELECT :x", parameters=[param], **arns)
    with pytest.raises(rds.exceptions.BadRequestException) as e:
        rds.execute_statement(sql="SELECT :x", parameters=[p("x", arrayValue={"longValues": [1, 2]})], **arns)
    assert "Array parameters are not supported" in error(e.value)[2]


def test_result_metadata(rds, arns, table):
    rds.execute_statement(sql=f"CREATE TABLE {table} (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL, price DECIMAL(10,2), created DATETIME)", **arns)
    rds.execute_statement(sql=f"INSERT INTO {table} (name, price, created) VALUES ('a', 1.50, '2024-01-01 00:00:00')", **arns)
    r = rds.execute_statement(sql=f"SELECT id, name AS label_name, price, created FROM {table}", includeResultMetadata=True, **arns)
    meta = r["columnMetadata"]
    assert [m["label"] for m in meta] == ["id", "label_name", "price", "created"]
    assert meta[1]["name"] == "name"
    assert {m["tableName"] for m in meta} == {table}
    assert (meta[0]["type"], meta[0]["typeName"], meta[0]["isAutoIncrement"], meta[0]["isSigned"]) == (4, "INT UNSIGNED", True, False)
    assert (meta[1]["type"], meta[1]["typeName"], meta[1]["nullable"], meta[1]["precision"]) == (12, "VARCHAR", 0, 40)
    assert (meta[2]["type"], meta[2]["precision"], meta[2]["scale"], meta[2]["isSigned"]) == (3, 10, 2, True)
    assert (meta[3]["type"], meta[3]["typeName"]) == (93, "DATETIME")
    assert r["records"] == [[{"longValue": 1}, {"stringValue": "a"}, {"stringValue": "1.50"}, {"stringValue": "2024-01-01 00:00:00"}]]
    r = rds.execute_statement(sql=f"SELECT id FROM {table}", **arns)
    assert "columnMetadata" not in r


def test_format_records_as_json(rds, arns, table):
    rds.execute_statement(sql=f"CREATE TABLE {table} (z INT, a VARCHAR(5), n INT, b BLOB)", **arns)
    rds.execute_statement(sql=f"INSERT INTO {table} VALUES (1, 'x', NULL, 'hi'), (2, 'y', 3, NULL)", **arns)
    r = rds.execute_statement(sql=f"SELECT * FROM {table} ORDER BY z", formatRecordsAs="JSON", **arns)
    assert "records" not in r
    assert r["formattedRecords"].startswith('[{"z":1,"a":"x"')  # column order kept
    assert json.loads(r["formattedRecords"]) == [
        {"z": 1, "a": "x", "n": None, "b": base64.b64encode(b"hi").decode()},
        {"z": 2, "a": "y", "n": 3, "b": None},
    ]
    r = rds.execute_statement(sql=f"SELECT * FROM {table} WHERE z > 5", formatRecordsAs="JSON", **arns)
    assert r["formattedRecords"] == "[]"


def test_batch_execute(rds, arns, table):
    rds.execute_statement(sql=f"CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10) UNIQUE)", **arns)
    r = rds.batch_execute_statement(sql=f"INSERT INTO {table} (v) VALUES (:v)",
                                    parameterSets=[[p("v", stringValue=s)] for s in "abc"], **arns)
    assert r["updateResults"] == [{"generatedFields": [{"longValue": i}]} for i in (1, 2, 3)]
    # A failing set leaves nothing behind outside a transaction.
    with pytest.raises(rds.exceptions.BadRequestException):
        rds.batch_execute_statement(sql=f"INSERT INTO {table} (v) VALUES (:v)",
                                    parameterSets=[[p("v", stringValue="d")], [p("v", stringValue="a")]], **arns)
    r = rds.execute_statement(sql=f"SELECT COUNT(*) FROM {table}", **arns)
    assert r["records"] == [[{"longValue": 3}]]


def count(rds, arns, table, **kw):
    return rds.execute_statement(sql=f"SELECT COUNT(*) FROM {table}", **arns, **kw)["records"][0][0]["longValue"]


def test_commit_makes_writes_visible(rds, arns, table):
    rds.execute_statement(sql=f"CREATE TABLE {table} (id INT PRIMARY KEY)", **arns)
    tx = rds.begin_transaction(**arns)["transactionId"]
    assert tx
    rds.execute_statement(sql=f"INSERT INTO {table} VALUES (1)", transactionId=tx, **arns)
    rds.batch_execute_statement(sql=f"INSERT INTO {table} VALUES (:id)", transactionId=tx,
                                parameterSets=[[p("id", longValue=2)], [p("id", longValue=3)]], **arns)
    assert count(rds, arns, table, transactionId=tx) == 3
    assert count(rds, arns, table) == 0  # isolated until commit
    r = rds.commit_transaction(resourceArn=arns["resourceArn"], secretArn=arns["secretArn"], transactionId=tx)
    assert r["transactionStatus"] == "Transaction Committed"
    assert count(rds, arns, table) == 3
    with pytest.raises(rds.exceptions.BadRequestException) as e:
        rds.commit_transaction(resourceArn=arns["resourceArn"], secretArn=arns["secretArn"], transactionId=tx)
    assert error(e.value)[2] == f"Transaction {tx} is not found"


def test_rollback_really_undoes_writes(rds, arns, table):
    rds.execute_statement(sql=f"CREATE TABLE {table} (id INT PRIMARY KEY, v INT)", **arns)
    rds.execute_statement(sql=f"INSERT INTO {table} VALUES (1, 10)", **arns)
    tx = rds.begin_transaction(**arns)["transactionId"]
    rds.execute_statement(sql=f"INSERT INTO {table} VALUES (2, 20)", transactionId=tx, **arns)
    rds.execute_statement(sql=f"UPDATE {table} SET v = 99 WHERE id = 1", transactionId=tx, **arns)
    rds.execute_statement(sql=f"DELETE FROM {table} WHERE id = 1", transactionId=tx, **arns)
    assert count(rds, arns, table, transactionId=tx) == 1
    r = rds.rollback_transaction(resourceArn=arns["resourceArn"], secretArn=arns["secretArn"], transactionId=tx)
    assert r["transactionStatus"] == "Rollback Complete"
    r = rds.execute_statement(sql=f"SELECT id, v FROM {table}", **arns)
    assert r["records"] == [[{"longValue": 1}, {"longValue": 10}]]


def test_duplicate_key_is_bad_request(rds, arns, table):
    rds.execute_statement(sql=f"CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(5) UNIQUE)", **arns)
    rds.execute_statement(sql=f"INSERT INTO {table} VALUES (1, 'a')", **arns)
    with pytest.raises(rds.exceptions.BadRequestException) as e:
        rds.execute_statement(sql=f"INSERT INTO {table} VALUES (:id, 'b')", parameters=[p("id", longValue=1)], **arns)
    code, status, message = error(e.value)
    assert (code, status) == ("BadRequestException", 400)
    assert message == "Duplicate entry '1' for key 'PRIMARY'"


def test_sql_errors_are_bad_request(rds, arns):
    with pytest.raises(rds.exceptions.BadRequestException) as e:
        rds.execute_statement(sql="SELEC 1", **arns)
    assert "SQL syntax" in error(e.value)[2]
    with pytest.raises(rds.exceptions.BadRequestException):
        rds.execute_statement(sql="SELECT :a", **arns)


def test_wrong_arns_are_refused(rds, arns):
    with pytest.raises(rds.exceptions.BadRequestException) as e:
        rds.execute_statement(sql="SELECT 1", **{**arns, "secretArn": arns["secretArn"] + "x"})
    assert "secret" in error(e.value)[2].lower()
    with pytest.raises(rds.exceptions.BadRequestException) as e:
        rds.execute_statement(sql="SELECT 1", **{**arns, "resourceArn": arns["resourceArn"] + "x"})
    assert "HttpEndpoint is not enabled" in error(e.value)[2]
    with pytest.raises(rds.exceptions.BadRequestException):
        rds.begin_transaction(**{**arns, "secretArn": arns["secretArn"] + "x"})


def test_bad_signatures_are_refused(dataapi, arns):
    wrong_secret = dbctl.client(dataapi.endpoint, secret_key="not-the-secret")
    with pytest.raises(ClientError) as e:
        wrong_secret.execute_statement(sql="SELECT 1", **arns)
    code, status, message = error(e.value)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("The request signature we calculated does not match")

    unknown_key = dbctl.client(dataapi.endpoint, access_key="AKIAUNKNOWN")
    with pytest.raises(ClientError) as e:
        unknown_key.execute_statement(sql="SELECT 1", **arns)
    assert error(e.value)[:2] == ("UnrecognizedClientException", 403)

    r = requests.post(f"{dataapi.endpoint}/Execute", json={"sql": "SELECT 1", **arns}, timeout=5)
    assert r.status_code == 403
    assert r.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert "message" in r.json()


def test_stale_signature_is_refused(dataapi, arns):
    old = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    c = dbctl.client(dataapi.endpoint)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=old):
        with pytest.raises(ClientError) as e:
            c.execute_statement(sql="SELECT 1", **arns)
    code, status, message = error(e.value)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("Signature expired")


def test_unknown_transaction_id(rds, arns):
    bogus = base64.b64encode(b"x" * 48).decode()
    with pytest.raises(rds.exceptions.BadRequestException) as e:
        rds.execute_statement(sql="SELECT 1", transactionId=bogus, **arns)
    assert error(e.value) == ("BadRequestException", 400, f"Transaction {bogus} is not found")
    with pytest.raises(rds.exceptions.BadRequestException):
        rds.rollback_transaction(resourceArn=arns["resourceArn"], secretArn=arns["secretArn"], transactionId=bogus)


def test_response_and_row_size_limits(rds, arns):
    # 20 rows of 60 000 bytes: each row fits 64 KB, the response exceeds 1 MiB.
    big = "SELECT REPEAT('x', 60000) AS s FROM seq_1_to_20"
    with pytest.raises(rds.exceptions.BadRequestException) as e:
        rds.execute_statement(sql=big, **arns)
    assert error(e.value)[2] == "Database returned more than the allowed response size limit"
    assert len(rds.execute_statement(sql="SELECT REPEAT('x', 60000) AS s FROM seq_1_to_15", **arns)["records"]) == 15
    with pytest.raises(rds.exceptions.BadRequestException) as e:
        rds.execute_statement(sql="SELECT REPEAT('x', 70000) AS s", **arns)
    assert error(e.value)[2].startswith("Packet for query is too large")


def test_result_set_options(rds, arns):
    r = rds.execute_statement(sql="SELECT CAST(2.5 AS DECIMAL(4,2)) AS d, 7 AS l",
                              resultSetOptions={"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"}, **arns)
    assert r["records"] == [[{"doubleValue": 2.5}, {"stringValue": "7"}]]


@pytest.mark.slow
def test_idle_transactions_expire_and_roll_back(dataapi, arns, table):
    # A second server with a short idle limit stands in for AWS's 3 minutes.
    # It is long enough that a statement sent a quarter of it after the last
    # one always arrives in time on a loaded machine (the limit counts from
    # the start of the last statement, so a slow statement eats into it).
    idle_s = max(2, round(budget(2)))
    server = dbctl.start_dataapi(dbctl.free_addr(), extra_env={"PIXPORT_DATAAPI_TX_TIMEOUT_SECS": str(idle_s)})
    try:
        c = dbctl.client(server.endpoint)
        c.execute_statement(sql=f"CREATE TABLE {table} (id INT PRIMARY KEY)", **arns)
        tx = c.begin_transaction(**arns)["transactionId"]
        began = time.monotonic()
        n = 0
        # Use keeps it alive: statements a quarter of the limit apart, until
        # it has lived well past the limit.
        while time.monotonic() - began < 1.5 * idle_s:
            n += 1
            c.execute_statement(sql=f"INSERT INTO {table} VALUES ({n})", transactionId=tx, **arns)
            time.sleep(idle_s / 4)
        # Then idle: a sleep never ends early, so it is idle past the limit,
        # and the reaper (every quarter of it) has rolled it back.
        time.sleep(idle_s * 1.5)
        with pytest.raises(c.exceptions.BadRequestException) as e:
            c.execute_statement(sql="SELECT 1", transactionId=tx, **arns)
        assert error(e.value)[2] == f"Transaction {tx} is not found"
        assert count(c, arns, table) == 0  # rolled back, and its locks released
        # Released: a write the transaction's rows would block goes through.
        c.execute_statement(sql=f"INSERT INTO {table} VALUES (1)", **arns)
    finally:
        server.stop()


def test_foreign_host_refused_before_anything_runs(dataapi, rds, arns, table):
    # A DNS-rebinding page reaches 127.0.0.1 under its own name; the local key
    # is committed, so only the Host check stands between it and the database.
    host = dataapi.endpoint.split("://", 1)[1]
    port = host.rsplit(":", 1)[1]
    rds.execute_statement(sql=f"CREATE TABLE {table} (id INT PRIMARY KEY)", **arns)

    def rebind(request, **_):
        del request.headers["Host"]
        request.headers["Host"] = f"rebind.example:{port}"

    rds.meta.events.register_first("before-sign.rds-data.ExecuteStatement", rebind)
    try:
        with pytest.raises(ClientError) as e:
            rds.execute_statement(sql=f"INSERT INTO {table} VALUES (1)", **arns)
    finally:
        rds.meta.events.unregister("before-sign.rds-data.ExecuteStatement", rebind)
    code, status, message = error(e.value)
    assert (code, status) == ("AccessDeniedException", 403), message
    assert "rebind.example" in message
    assert rds.execute_statement(sql=f"SELECT COUNT(*) FROM {table}", **arns)["records"] == [[{"longValue": 0}]]
    # The names a local client uses are still served.
    for name in (host, f"localhost:{port}"):
        r = requests.post(f"{dataapi.endpoint}/Execute", headers={"Host": name}, data=b"{}", timeout=5)
        assert r.headers.get("x-amzn-ErrorType") == "MissingAuthenticationTokenException", (name, r.text)
