"""deploy/template.yaml passes cfn-lint and `sam validate --lint`, offline,
and keeps the wiring the resize Lambda depends on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "template.yaml"


def offline_env() -> dict[str, str]:
    # sam wants a region and credentials to build its clients even for a
    # local-only validate; dummy ones keep it from looking further.
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID="AKIDUMMY", AWS_SECRET_ACCESS_KEY="dummy", AWS_DEFAULT_REGION="us-east-1",
               AWS_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               SAM_CLI_TELEMETRY="0", SAM_CLI_DISABLE_UPDATE_CHECK="1")
    env.pop("AWS_PROFILE", None)
    return env


def test_cfn_lint():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    r = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, env=offline_env())
    assert r.returncode == 0, r.stdout + r.stderr


def test_sam_validate_lint():
    sam = subprocess.run([str(ROOT / "deploy" / "install-sam")], capture_output=True, text=True, check=True).stdout.strip()
    r = subprocess.run([sam, "validate", "--lint", "--region", "us-east-1", "-t", str(TEMPLATE)],
                       capture_output=True, text=True, env=offline_env(), cwd=TEMPLATE.parent, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


class CfnLoader(yaml.SafeLoader):
    """Reads !Ref/!GetAtt/!Sub/... as plain values: enough for structure checks."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def tpl() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)


def test_wiring(tpl):
    res = tpl["Resources"]
    fn = res["ResizeFunction"]["Properties"]
    assert fn["Runtime"] == "provided.al2023" and fn["Handler"] == "bootstrap"
    assert tpl["Parameters"]["Architecture"]["Default"] == "arm64"
    rules = res["ImagesBucket"]["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert [r["Filter"]["S3Key"]["Rules"] for r in rules] == [[{"Name": "prefix", "Value": "originals/"}]]
    cluster = res["Database"]["Properties"]
    assert cluster["Engine"] == "aurora-mysql" and cluster["EnableHttpEndpoint"] is True
    assert cluster["EngineVersion"].startswith("8.0.mysql_aurora.3.")
    assert res["DatabaseInstance"]["Properties"]["DBInstanceClass"] == "db.serverless"
    env = fn["Environment"]["Variables"]
    for name in ["PIXPORT_BUCKET", "PIXPORT_DB_CLUSTER_ARN", "PIXPORT_DB_SECRET_ARN", "PIXPORT_DB_NAME"]:
        assert name in env


def test_code_uri_is_one_path_sam_package_uploads(tpl):
    """`sam package` uploads a CodeUri that is a plain path and leaves any
    other (Fn::If, ...) local, which the transform then refuses; the
    rehearsal (tests/deploy) runs both. lambda/package writes this path."""
    assert tpl["Resources"]["ResizeFunction"]["Properties"]["CodeUri"] == "../dist/bootstrap.zip"


def test_transient_failures_are_redriven(tpl):
    res = tpl["Resources"]
    fn = res["ResizeFunction"]["Properties"]
    redrive = fn["Events"]["Redrive"]
    assert redrive["Type"] == "Schedule" and redrive["Properties"]["Schedule"].startswith("rate(")
    invoke = fn["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": {"GetAtt": "ResizeFailures.Arn"}}
    env = fn["Environment"]["Variables"]
    # The schedule outlasts an outage by hours, and an attempt's lease its timeout.
    assert int(env["PIXPORT_MAX_ATTEMPTS"]) >= 10
    assert int(env["PIXPORT_ATTEMPT_LEASE_MS"]) > fn["Timeout"] * 1000
    stmts = {s["Sid"]: s for s in fn["Policies"][0]["Statement"]}
    assert stmts["OnFailureDestination"] == {"Sid": "OnFailureDestination", "Effect": "Allow",
                                             "Action": "sqs:SendMessage", "Resource": {"GetAtt": "ResizeFailures.Arn"}}


def test_least_privilege(tpl):
    stmts = tpl["Resources"]["ResizeFunction"]["Properties"]["Policies"][0]["Statement"]
    by_sid = {s["Sid"]: s for s in stmts}
    assert by_sid["ReadOriginals"]["Action"] == "s3:GetObject"
    assert by_sid["ReadOriginals"]["Resource"]["Sub"].endswith("/originals/*")
    # Delete only its own variants (written for an image deleted mid-resize).
    assert by_sid["WriteVariants"]["Action"] == ["s3:PutObject", "s3:DeleteObject"]
    assert by_sid["WriteVariants"]["Resource"]["Sub"].endswith("/variants/*")
    # Listing only under variants/ (stray variants of an image with no row).
    assert by_sid["ListVariants"]["Action"] == "s3:ListBucket"
    assert by_sid["ListVariants"]["Condition"] == {"StringLike": {"s3:prefix": "variants/*"}}
    assert by_sid["DatabaseSecret"]["Action"] == "secretsmanager:GetSecretValue"
    assert all(a.startswith("rds-data:") for a in by_sid["DataApi"]["Action"])
    for s in stmts:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        assert not any(a.endswith("*") for a in actions), s
        if "s3:DeleteObject" in actions:
            assert s["Resource"]["Sub"].endswith("/variants/*"), "the resize path never deletes an original"


def test_least_privilege_of_the_bucket_and_the_database(tpl):
    """docs/security.md, "Least privilege": the worker writes originals/ only;
    each role has its own database secret; TLS only; versioned originals with
    a noncurrent-version expiry; a reserved concurrency for the resizer."""
    res = tpl["Resources"]
    edge = {s["Sid"]: s for s in res["EdgeUser"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]}
    for s in edge.values():
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        if "s3:PutObject" in actions:
            assert all(r["Sub"].endswith(("/originals/*", "/state/outbox-next", "/state/redrive-signal"))
                       for r in resources), s
        assert not any(a in ("s3:DeleteObjectVersion", "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration",
                             "s3:PutBucketPolicy") or a.endswith("*") for a in actions), s
    fn = res["ResizeFunction"]["Properties"]
    by_sid = {s["Sid"]: s for s in fn["Policies"][0]["Statement"]}
    # One secret per role, none the master's.
    assert edge["DatabaseSecret"]["Resource"] == {"Ref": "EdgeDatabaseSecret"}
    assert by_sid["DatabaseSecret"]["Resource"] == {"Ref": "ResizerDatabaseSecret"}
    assert fn["Environment"]["Variables"]["PIXPORT_DB_SECRET_ARN"] == {"Ref": "ResizerDatabaseSecret"}
    for name, user in (("EdgeDatabaseSecret", "pixport_edge"), ("ResizerDatabaseSecret", "pixport_resizer")):
        gen = res[name]["Properties"]["GenerateSecretString"]
        assert yaml.safe_load(gen["SecretStringTemplate"]) == {"username": user}
        assert gen["GenerateStringKey"] == "password" and gen["ExcludePunctuation"] is True
        assert f"'{user}'@'%'" in (ROOT / "migrations" / "0010_role_users.sql").read_text()
    assert tpl["Outputs"]["DbSecretArn"]["Value"] == {"Ref": "EdgeDatabaseSecret"}
    # TLS only, for every principal.
    policy = res["ImagesBucketPolicy"]
    assert "Condition" not in policy
    deny = policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Versioned, and noncurrent versions expire.
    bucket = res["ImagesBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "NoncurrentVersionDays"}}
    assert "Prefix" not in rules["expire-noncurrent-versions"]
    assert tpl["Parameters"]["NoncurrentVersionDays"]["Default"] >= 7
    # Reserved concurrency.
    assert fn["ReservedConcurrentExecutions"] == {"Ref": "ResizeConcurrency"}
    assert 1 <= tpl["Parameters"]["ResizeConcurrency"]["Default"] <= 100


def test_outputs_cover_wrangler_vars(tpl):
    outs = tpl["Outputs"]
    for name in ["S3Bucket", "S3Region", "S3Endpoint", "DataApiEndpoint", "DbClusterArn", "DbSecretArn", "DbName"]:
        assert name in outs


def test_variant_formats_are_the_contract_default(tpl):
    """The deployed set is the one docs/resizer.md measured: the template
    spells the contract's DEFAULT_SPEC, not a drifted copy."""
    import re

    src = (ROOT / "contract" / "src" / "outputs.rs").read_text()
    default = re.search(r'DEFAULT_SPEC: &\'static str = "([^"]+)"', src).group(1)
    env = tpl["Resources"]["ResizeFunction"]["Properties"]["Environment"]["Variables"]
    assert env["PIXPORT_VARIANT_FORMATS"] == default == "auto,webp,avif:640"
