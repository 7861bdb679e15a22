"""Least privilege in deploy/template.yaml, enforced by the local stand-ins
as AWS enforces it (docs/security.md, "Least privilege"):

- each role has a database user of its own (migrations/0010_role_users.sql)
  with only the grants its SQL uses; the Data API connects as the user of
  the secret a call names, so the database refuses the rest, answered as
  Aurora's Data API answers a refused statement (400 BadRequestException);
- the bucket policy denies every request that did not come over TLS;
- the bucket is versioned and no role may delete a version or change
  versioning or the lifecycle.
"""

from __future__ import annotations

import botocore.exceptions
import pytest

from support import ROOT


def sql(stack, identity: str, statement: str, **extra) -> dict:
    return stack.rds_client(identity).execute_statement(
        resourceArn=stack.db_cluster_arn, secretArn=stack.db_secrets[identity], database=stack.db_name,
        sql=statement, **extra)


def refused(stack, identity: str, statement: str) -> str:
    """The message of the BadRequestException the statement gets."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sql(stack, identity, statement)
    r = e.value.response
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]) == (400, "BadRequestException"), r
    return r["Error"]["Message"]


def test_each_role_connects_as_its_own_database_user(stack):
    who = {i: sql(stack, i, "SELECT CURRENT_USER()")["records"][0][0]["stringValue"]
           for i in ("worker", "lambda", "admin")}
    assert who["worker"] == "pixport_edge@%" and who["lambda"] == "pixport_resizer@%"
    assert who["admin"].split("@")[0] not in ("pixport_edge", "pixport_resizer")


@pytest.mark.parametrize("statement,what", [
    ("DROP TABLE sweep_bucket", "DROP command denied"),
    ("ALTER TABLE images ADD COLUMN x INT", "ALTER command denied"),
    ("CREATE TABLE scratch (id INT)", "CREATE command denied"),
    ("SELECT COUNT(*) FROM schema_migrations", "SELECT command denied"),
    ("DELETE FROM schema_migrations", "DELETE command denied"),
    ("INSERT INTO webhook_outbox (owner, image_id, event_type) VALUES ('o', 'i', 'image.ready')",
     "INSERT command denied"),
    ("CREATE USER 'intruder'@'%'", "denied"),
    ("GRANT ALL ON images TO 'pixport_edge'@'%'", "denied"),
    ("SELECT COUNT(*) FROM mysql.user", "denied"),
])
def test_the_workers_database_user_has_only_its_grants(stack, statement, what):
    message = refused(stack, "worker", statement)
    assert what in message, message
    assert "command denied" not in what or "pixport_edge" in message, message
    # The same statement by the master user is no grant problem: the
    # refusal is the role's, not the statement's (DDL is left untried).
    if statement.startswith("SELECT") and "mysql." not in statement:
        sql(stack, "admin", statement)


@pytest.mark.parametrize("statement,what", [
    ("SELECT COUNT(*) FROM webhooks", "SELECT command denied"),
    ("SELECT COUNT(*) FROM webhook_outbox", "SELECT command denied"),
    ("SELECT COUNT(*) FROM image_checksums", "SELECT command denied"),
    ("SELECT COUNT(*) FROM image_tags", "SELECT command denied"),
    ("SELECT COUNT(*) FROM sweep_cursors", "SELECT command denied"),
    ("INSERT INTO images (id, owner, status) VALUES ('x', 'o', 'pending')", "INSERT command denied"),
    ("DROP TABLE images", "DROP command denied"),
    ("SELECT COUNT(*) FROM schema_migrations", "SELECT command denied"),
])
def test_the_lambdas_database_user_has_only_its_grants(stack, statement, what):
    message = refused(stack, "lambda", statement)
    assert what in message and "pixport_resizer" in message, message


def test_each_role_runs_what_its_code_runs(stack):
    """The grants cover the statements the roles send (the full flows are
    the edge and Lambda suites, which run as these users)."""
    assert sql(stack, "worker", "SELECT COUNT(*) FROM images i JOIN image_tags t ON t.image_id = i.id")
    assert sql(stack, "worker", "SELECT COUNT(*) FROM webhook_outbox o JOIN webhooks w ON w.owner = o.owner")
    assert sql(stack, "worker", "SELECT after_key FROM sweep_cursors WHERE prefix = 'x'")
    assert sql(stack, "lambda", "UPDATE images SET attempts = attempts WHERE id = 'no-such-row'")[
        "numberOfRecordsUpdated"] == 0


def test_a_transaction_belongs_to_the_secret_that_began_it(stack):
    rds = stack.rds_client("admin")
    arns = dict(resourceArn=stack.db_cluster_arn, database=stack.db_name)
    tx = rds.begin_transaction(secretArn=stack.db_secrets["lambda"], **arns)["transactionId"]
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            rds.execute_statement(secretArn=stack.db_secrets["admin"], transactionId=tx,
                                  sql="SELECT COUNT(*) FROM webhooks", **arns)
        assert e.value.response["Error"]["Message"] == f"Transaction {tx} is not found"
    finally:
        rds.rollback_transaction(resourceArn=stack.db_cluster_arn, secretArn=stack.db_secrets["lambda"],
                                 transactionId=tx)


def test_the_worker_is_configured_with_its_own_secret(stack):
    """wrangler.toml hands `wrangler dev` the worker's secret, not the master's."""
    import tomllib

    vars_ = tomllib.loads((ROOT / "wrangler.toml").read_text())["vars"]
    assert vars_["DB_SECRET_ARN"] == stack.db_secrets["worker"] != stack.db_secret_arn


# S3: TLS only, versions -------------------------------------------------------


def insecure(client) -> None:
    """Marks every request of `client` as one that reached S3 over plain
    HTTP (local/s3: `X-Forwarded-Proto: http` sets aws:SecureTransport false)."""
    def add(request, **_):
        request.headers["X-Forwarded-Proto"] = "http"
    client.meta.events.register("before-sign.s3.*", add)


@pytest.mark.parametrize("identity", ["worker", "lambda", "admin"])
def test_requests_without_tls_are_denied_whoever_signs(stack, identity, uid):
    ok = stack.s3_client(identity)
    key = f"originals/{uid}" if identity != "lambda" else f"variants/{uid}/320.jpg"
    ok.put_object(Bucket=stack.bucket, Key=key, Body=b"over tls")
    plain = stack.s3_client(identity)
    insecure(plain)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        plain.put_object(Bucket=stack.bucket, Key=key, Body=b"over http")
    err = e.value.response["Error"]
    assert (e.value.response["ResponseMetadata"]["HTTPStatusCode"], err["Code"]) == (403, "AccessDenied")
    assert "with an explicit deny" in err["Message"], err
    if identity == "admin":
        with pytest.raises(botocore.exceptions.ClientError):
            plain.get_object(Bucket=stack.bucket, Key=key)
        assert ok.get_object(Bucket=stack.bucket, Key=key)["Body"].read() == b"over tls"


def test_the_bucket_policy_is_the_templates(stack):
    import json

    doc = json.loads((stack.state_dir / "iam.json").read_text())
    for name in ("EdgeUser", "ResizeFunctionRole", "admin"):
        deny = [s for s in doc["principals"][name]["statements"] if s.get("Sid") == "DenyInsecureTransport"]
        assert len(deny) == 1 and deny[0]["Effect"] == "Deny" and deny[0]["Action"] == "s3:*", name
        assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny[0]["Origin"] == "ImagesBucketPolicy (bucket policy)"


@pytest.mark.parametrize("identity", ["worker", "lambda"])
def test_no_role_can_destroy_a_version_or_turn_versioning_off(stack, identity, uid):
    c = stack.s3_client(identity)
    key = f"originals/{uid}" if identity == "worker" else f"variants/{uid}/320.jpg"
    calls = [
        ("s3:DeleteObjectVersion", lambda: c.delete_object(Bucket=stack.bucket, Key=key, VersionId="v1")),
        ("s3:PutBucketVersioning", lambda: c.put_bucket_versioning(
            Bucket=stack.bucket, VersioningConfiguration={"Status": "Suspended"})),
        ("s3:PutLifecycleConfiguration", lambda: c.put_bucket_lifecycle_configuration(
            Bucket=stack.bucket, LifecycleConfiguration={"Rules": [
                {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]})),
        ("s3:PutBucketPolicy", lambda: c.put_bucket_policy(Bucket=stack.bucket, Policy="{}")),
    ]
    for action, call in calls:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        err = e.value.response["Error"]
        assert err["Code"] == "AccessDenied" and f"perform: {action} " in err["Message"], (action, err)
    out = c.delete_objects(Bucket=stack.bucket, Delete={"Objects": [{"Key": key, "VersionId": "v1"}]})
    assert [(x["Key"], x["Code"]) for x in out["Errors"]] == [(key, "AccessDenied")]
    assert "s3:DeleteObjectVersion" in out["Errors"][0]["Message"]
