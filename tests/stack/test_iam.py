"""The local S3 and Data API enforce deploy/template.yaml's IAM policies
(local/iam.py resolves them, pixport-local-iam evaluates): each local key is
one principal of the template, with exactly its permissions, so a
permission the template lacks fails here as it would in AWS.

  worker = EdgeUser (the worker's key, .dev.vars)
  lambda = ResizeFunctionRole (the bootstrap's AWS_* under the local runtime)
  admin  = local only, allowed everything (tests that set up or inspect state)
"""

from __future__ import annotations

import re
import time

import botocore.exceptions
import pytest
import requests


def denied(call, *args, **kwargs) -> dict:
    """The AccessDenied error a boto3 call raises (anything else fails)."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(*args, **kwargs)
    err = e.value.response["Error"]
    assert (e.value.response["ResponseMetadata"]["HTTPStatusCode"], err["Code"]) == (403, "AccessDenied"), err
    return err


def status(call, *args, **kwargs) -> int:
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]
    return 200


@pytest.fixture(scope="module")
def worker(stack):
    return stack.s3_client("worker")


@pytest.fixture(scope="module")
def lam(stack):
    return stack.s3_client("lambda")


def test_worker_writes_where_the_template_allows_and_nowhere_else(stack, s3, worker, uid):
    # EdgeUser's WriteOriginals: originals/* only; variants/ are the Lambda's.
    worker.put_object(Bucket=stack.bucket, Key=f"originals/{uid}", Body=b"o")
    err = denied(worker.put_object, Bucket=stack.bucket, Key=f"variants/{uid}/320.jpg", Body=b"v")
    assert "s3:PutObject" in err["Message"] and f"variants/{uid}/320.jpg" in err["Message"]
    denied(worker.create_multipart_upload, Bucket=stack.bucket, Key=f"variants/{uid}/640.jpg")
    assert status(s3.head_object, Bucket=stack.bucket, Key=f"variants/{uid}/320.jpg") == 404
    # ...but it reads and deletes variants (GET /images/{id}/{w}, DELETE, the sweep).
    s3.put_object(Bucket=stack.bucket, Key=f"variants/{uid}/320.jpg", Body=b"v")
    assert worker.get_object(Bucket=stack.bucket, Key=f"variants/{uid}/320.jpg")["Body"].read() == b"v"
    worker.delete_object(Bucket=stack.bucket, Key=f"variants/{uid}/320.jpg")
    # Its scheduled-work record, and not the Lambda's signal.
    worker.put_object(Bucket=stack.bucket, Key="state/outbox-next", Body=b"0")
    denied(worker.put_object, Bucket=stack.bucket, Key="state/outbox-enqueued", Body=b"0")
    err = denied(worker.put_object, Bucket=stack.bucket, Key=f"scratch/{uid}/x", Body=b"x")
    assert err["Message"] == (
        "User: arn:aws:iam::000000000000:user/EdgeUser is not authorized to perform: s3:PutObject on "
        f'resource: "arn:aws:s3:::{stack.bucket}/scratch/{uid}/x" because no identity-based policy '
        "allows the s3:PutObject action")
    denied(worker.create_multipart_upload, Bucket=stack.bucket, Key=f"scratch/{uid}/mpu")
    assert status(s3.head_object, Bucket=stack.bucket, Key=f"scratch/{uid}/x") == 404
    # ListUploadsForAbort: the worker finds a key's unfinished uploads to abort them.
    worker.list_multipart_uploads(Bucket=stack.bucket, Prefix=f"originals/{uid}")
    # Not granted to the worker at all.
    denied(worker.list_buckets)


def test_worker_cannot_touch_another_bucket(stack, s3, worker, uid):
    other = "pixport-iam-other"
    if status(s3.head_bucket, Bucket=other) == 404:
        s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=other, Key=f"originals/{uid}", Body=b"secret")
    denied(worker.get_object, Bucket=other, Key=f"originals/{uid}")
    denied(worker.put_object, Bucket=other, Key=f"originals/{uid}", Body=b"x")
    denied(worker.list_objects_v2, Bucket=other)
    denied(worker.delete_object, Bucket=other, Key=f"originals/{uid}")
    assert s3.get_object(Bucket=other, Key=f"originals/{uid}")["Body"].read() == b"secret"
    s3.delete_object(Bucket=other, Key=f"originals/{uid}")


def test_lambda_reads_originals_writes_variants_and_cannot_delete_originals(stack, s3, lam, uid):
    s3.put_object(Bucket=stack.bucket, Key=f"scratch/{uid}", Body=b"plain")
    s3.put_object(Bucket=stack.bucket, Key=f"originals/{uid}", Body=b"photo")
    assert lam.get_object(Bucket=stack.bucket, Key=f"originals/{uid}")["Body"].read() == b"photo"
    lam.put_object(Bucket=stack.bucket, Key=f"variants/{uid}/640.jpg", Body=b"v")
    denied(lam.delete_object, Bucket=stack.bucket, Key=f"originals/{uid}")
    denied(lam.put_object, Bucket=stack.bucket, Key=f"originals/{uid}", Body=b"overwritten")
    denied(lam.get_object, Bucket=stack.bucket, Key=f"scratch/{uid}")
    # No s3:GetObject on variants/ for the Lambda: HEAD is refused too (403, no body).
    assert status(lam.head_object, Bucket=stack.bucket, Key=f"variants/{uid}/640.jpg") == 403
    assert s3.get_object(Bucket=stack.bucket, Key=f"originals/{uid}")["Body"].read() == b"photo"
    lam.delete_object(Bucket=stack.bucket, Key=f"variants/{uid}/640.jpg")
    assert status(s3.head_object, Bucket=stack.bucket, Key=f"variants/{uid}/640.jpg") == 404


def test_lambda_lists_only_under_variants(stack, lam, uid):
    # ListVariants: s3:ListBucket with StringLike s3:prefix "variants/*".
    lam.list_objects_v2(Bucket=stack.bucket, Prefix=f"variants/{uid}/")
    denied(lam.list_objects_v2, Bucket=stack.bucket, Prefix="originals/")
    denied(lam.list_objects_v2, Bucket=stack.bucket)  # no prefix: the condition key is absent
    denied(lam.list_objects, Bucket=stack.bucket, Prefix="")


def test_missing_key_is_404_only_to_those_who_may_list(stack, worker, lam, uid):
    """S3 answers a missing key with NoSuchKey only when the caller has
    s3:ListBucket on the bucket; otherwise 403, so existence does not leak."""
    key = f"originals/{uid}-missing"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        worker.get_object(Bucket=stack.bucket, Key=key)
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    assert status(worker.head_object, Bucket=stack.bucket, Key=key) == 404
    # The Lambda may list only with a variants/ prefix, which a GET carries not.
    denied(lam.get_object, Bucket=stack.bucket, Key=key)
    assert status(lam.head_object, Bucket=stack.bucket, Key=key) == 403


def test_delete_objects_is_decided_per_key(stack, s3, lam, uid):
    s3.put_object(Bucket=stack.bucket, Key=f"originals/{uid}", Body=b"o")
    s3.put_object(Bucket=stack.bucket, Key=f"variants/{uid}/320.jpg", Body=b"v")
    out = lam.delete_objects(Bucket=stack.bucket, Delete={"Objects": [
        {"Key": f"variants/{uid}/320.jpg"}, {"Key": f"originals/{uid}"}]})
    assert [d["Key"] for d in out.get("Deleted", [])] == [f"variants/{uid}/320.jpg"]
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [(f"originals/{uid}", "AccessDenied")]
    assert s3.get_object(Bucket=stack.bucket, Key=f"originals/{uid}")["Body"].read() == b"o"
    assert status(s3.head_object, Bucket=stack.bucket, Key=f"variants/{uid}/320.jpg") == 404


def test_copy_needs_read_on_the_source(stack, s3, worker, uid):
    s3.put_object(Bucket=stack.bucket, Key=f"originals/{uid}", Body=b"o")
    s3.put_object(Bucket=stack.bucket, Key=f"scratch/{uid}", Body=b"s")
    worker.copy_object(Bucket=stack.bucket, Key=f"originals/{uid}-copy",
                       CopySource={"Bucket": stack.bucket, "Key": f"originals/{uid}"})
    err = denied(worker.copy_object, Bucket=stack.bucket, Key=f"originals/{uid}-copy2",
                 CopySource={"Bucket": stack.bucket, "Key": f"scratch/{uid}"})
    assert "s3:GetObject" in err["Message"] and f"scratch/{uid}" in err["Message"]


def test_presigned_urls_act_as_their_signer(stack, s3, worker, lam, uid):
    s3.put_object(Bucket=stack.bucket, Key=f"scratch/{uid}", Body=b"s")
    by_worker = worker.generate_presigned_url("get_object", Params={"Bucket": stack.bucket, "Key": f"scratch/{uid}"})
    r = requests.get(by_worker, timeout=10)
    assert r.status_code == 403
    assert re.search(r"<Code>AccessDenied</Code>", r.text), r.text
    assert "arn:aws:iam::000000000000:user/EdgeUser" in r.text
    by_admin = s3.generate_presigned_url("get_object", Params={"Bucket": stack.bucket, "Key": f"scratch/{uid}"})
    assert requests.get(by_admin, timeout=10).content == b"s"
    put = lam.generate_presigned_url("put_object", Params={"Bucket": stack.bucket, "Key": f"originals/{uid}"})
    r = requests.put(put, data=b"x", timeout=10)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    assert status(s3.head_object, Bucket=stack.bucket, Key=f"originals/{uid}") == 404


def test_unsigned_requests_are_refused(stack, s3, uid):
    s3.put_object(Bucket=stack.bucket, Key=f"variants/{uid}/320.jpg", Body=b"v")
    r = requests.get(f"{stack.s3_url}/{stack.bucket}/variants/{uid}/320.jpg", timeout=10)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text


def test_requests_are_counted_per_principal(stack, lam, uid):
    """The Lambda of the stack may be resizing meanwhile under the same
    role: its requests can only add to the counts, so a window with more is
    measured again, and one with fewer fails at once."""
    role = "ResizeFunctionRole"
    seen = []
    for _ in range(10):
        before = stack.counters()
        lam.list_objects_v2(Bucket=stack.bucket, Prefix=f"variants/{uid}/")
        lam.list_objects_v2(Bucket=stack.bucket, Prefix=f"variants/{uid}/")
        denied(lam.put_object, Bucket=stack.bucket, Key=f"scratch/{uid}", Body=b"x")
        after = stack.counters()

        def delta(op: str) -> int:
            return after.get(role, {}).get(op, 0) - before.get(role, {}).get(op, 0)

        got = (delta("ListObjectsV2"), delta("PutObject"))
        assert got[0] >= 2 and got[1] >= 1, got
        seen.append(got)
        if got == (2, 1):
            break
        time.sleep(1)
    assert seen[-1] == (2, 1), seen
    assert requests.post(f"{stack.s3_url}/__pixport/counters", timeout=10).status_code == 405


# Data API ----------------------------------------------------------------


def run_sql(client, stack, identity="admin", **overrides):
    args = dict(resourceArn=stack.db_cluster_arn, secretArn=stack.db_secrets[identity], database=stack.db_name,
                sql="SELECT 1")
    args.update(overrides)
    return client.execute_statement(**args)


@pytest.mark.parametrize("identity", ["worker", "lambda", "admin"])
def test_data_api_allows_the_cluster_and_its_secret(stack, identity):
    out = run_sql(stack.rds_client(identity), stack, identity)
    assert out["records"] == [[{"longValue": 1}]]


@pytest.mark.parametrize("identity,others", [("worker", ["admin", "lambda"]), ("lambda", ["admin", "worker"])])
def test_roles_read_only_their_own_database_secret(stack, identity, others):
    """EdgeUser and ResizeFunctionRole each get secretsmanager:GetSecretValue
    on their own database user's secret: never the master's, nor each other's."""
    rds = stack.rds_client(identity)
    for other in others:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            run_sql(rds, stack, other)
        assert e.value.response["Error"]["Code"] == "AccessDeniedException"
        assert (f"secretsmanager:GetSecretValue on resource: {stack.db_secrets[other]}"
                in e.value.response["Error"]["Message"])


@pytest.mark.parametrize("identity,principal", [("worker", "arn:aws:iam::000000000000:user/EdgeUser"),
                                                ("lambda", "arn:aws:sts::000000000000:assumed-role/"
                                                           "ResizeFunctionRole/")])
def test_data_api_refuses_other_clusters_and_secrets(stack, identity, principal):
    rds = stack.rds_client(identity)
    other_cluster = stack.db_cluster_arn.rsplit(":", 1)[0] + ":elsewhere"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        run_sql(rds, stack, identity, resourceArn=other_cluster)
    r = e.value.response
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]) == (403, "AccessDeniedException")
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "AccessDeniedException"
    assert r["Error"]["Message"].startswith(f"User: {principal}")
    assert r["Error"]["Message"].endswith(
        f"is not authorized to perform: rds-data:ExecuteStatement on resource: {other_cluster} "
        "because no identity-based policy allows the rds-data:ExecuteStatement action")
    other_secret = stack.db_secrets[identity] + "x"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        run_sql(rds, stack, identity, secretArn=other_secret)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"secretsmanager:GetSecretValue on resource: {other_secret}" in e.value.response["Error"]["Message"]


def test_data_api_counts_per_principal(stack):
    before = stack.counters("dataapi")
    rds = stack.rds_client("lambda")
    secret = stack.db_secrets["lambda"]
    run_sql(rds, stack, "lambda")
    tx = rds.begin_transaction(resourceArn=stack.db_cluster_arn, secretArn=secret,
                               database=stack.db_name)["transactionId"]
    rds.rollback_transaction(resourceArn=stack.db_cluster_arn, secretArn=secret, transactionId=tx)
    after = stack.counters("dataapi")
    role = after["ResizeFunctionRole"]
    prior = before.get("ResizeFunctionRole", {})
    assert {op: role.get(op, 0) - prior.get(op, 0) for op in
            ("ExecuteStatement", "BeginTransaction", "RollbackTransaction")} == {
        "ExecuteStatement": 1, "BeginTransaction": 1, "RollbackTransaction": 1}


def test_worker_lists_the_parts_of_originals_only(stack, s3, worker, uid):
    """EdgeUser's MultipartParts: the browser upload's resume and completion."""
    key = f"originals/{uid}"
    upload = worker.create_multipart_upload(Bucket=stack.bucket, Key=key)["UploadId"]
    assert worker.list_parts(Bucket=stack.bucket, Key=key, UploadId=upload).get("Parts", []) == []
    worker.abort_multipart_upload(Bucket=stack.bucket, Key=key, UploadId=upload)
    # An upload under variants/ (which the worker cannot start) is not its to list or abort.
    key = f"variants/{uid}/320.jpg"
    upload = s3.create_multipart_upload(Bucket=stack.bucket, Key=key)["UploadId"]
    denied(worker.list_parts, Bucket=stack.bucket, Key=key, UploadId=upload)
    denied(worker.abort_multipart_upload, Bucket=stack.bucket, Key=key, UploadId=upload)
    s3.abort_multipart_upload(Bucket=stack.bucket, Key=key, UploadId=upload)
