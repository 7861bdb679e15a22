"""local/iam.py: deploy/template.yaml's identities and policies resolved
against the local stack, the one source both stand-ins enforce."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from support import ROOT

spec = importlib.util.spec_from_file_location("pixport_local_iam", ROOT / "local" / "iam.py")
iam = importlib.util.module_from_spec(spec)
spec.loader.exec_module(iam)

ENV = {
    "PIXPORT_REGION": "eu-west-1",
    "PIXPORT_BUCKET": "local-bucket",
    "PIXPORT_FUNCTION_NAME": "fn",
    "PIXPORT_DB_CLUSTER_ARN": "arn:aws:rds:eu-west-1:000000000000:cluster:c",
    "PIXPORT_DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:000000000000:secret:s-AbCdEf",
    "PIXPORT_ACCESS_KEY_ID": "EDGE", "PIXPORT_SECRET_ACCESS_KEY": "e",
    "PIXPORT_LAMBDA_ACCESS_KEY_ID": "LAMBDA", "PIXPORT_LAMBDA_SECRET_ACCESS_KEY": "l",
    "PIXPORT_ADMIN_ACCESS_KEY_ID": "ADMIN", "PIXPORT_ADMIN_SECRET_ACCESS_KEY": "a",
    "PIXPORT_DB_EDGE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:000000000000:secret:edge-EdGe",
    "PIXPORT_DB_EDGE_USER": "pixport_edge",
    "PIXPORT_DB_RESIZER_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:000000000000:secret:resizer-ReSi",
    "PIXPORT_DB_RESIZER_USER": "pixport_resizer",
}


def by_sid(principal: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in principal["statements"] if "Sid" in s}


def test_template_resolves_to_the_local_names():
    doc = iam.resolve(ENV)
    p = doc["principals"]
    assert set(p) == {"EdgeUser", "ResizeFunctionRole", "admin"}
    assert p["EdgeUser"]["keys"] == {"EDGE": "e"} and p["ResizeFunctionRole"]["keys"] == {"LAMBDA": "l"}
    assert p["EdgeUser"]["arn"] == "arn:aws:iam::000000000000:user/EdgeUser"
    assert p["ResizeFunctionRole"]["arn"] == "arn:aws:sts::000000000000:assumed-role/ResizeFunctionRole/fn"
    edge = by_sid(p["EdgeUser"])
    # The bucket's !Sub formula is the local bucket, whatever the prefix parameter says.
    # The worker writes originals/ only; it reads and deletes both.
    assert edge["WriteOriginals"]["Resource"] == "arn:aws:s3:::local-bucket/originals/*"
    assert edge["ReadAndDeleteObjects"]["Resource"] == ["arn:aws:s3:::local-bucket/originals/*",
                                                        "arn:aws:s3:::local-bucket/variants/*"]
    assert "s3:PutObject" not in edge["ReadAndDeleteObjects"]["Action"]
    assert edge["ListForDelete"]["Resource"] == "arn:aws:s3:::local-bucket"
    assert (edge["MultipartParts"]["Action"], edge["MultipartParts"]["Resource"]) == (
        "s3:ListMultipartUploadParts", "arn:aws:s3:::local-bucket/originals/*")
    assert edge["DataApi"]["Resource"] == ENV["PIXPORT_DB_CLUSTER_ARN"]
    # Each role reads its own database user's secret, never the master's.
    assert edge["DatabaseSecret"]["Resource"] == ENV["PIXPORT_DB_EDGE_SECRET_ARN"]
    fn = by_sid(p["ResizeFunctionRole"])
    assert fn["DatabaseSecret"]["Resource"] == ENV["PIXPORT_DB_RESIZER_SECRET_ARN"]
    assert ENV["PIXPORT_DB_SECRET_ARN"] not in str(p["EdgeUser"]) + str(p["ResizeFunctionRole"])
    # The bucket policy's TLS-only Deny binds every principal, admin too.
    for name in p:
        assert by_sid(p[name])["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert fn["ListVariants"]["Condition"] == {"StringLike": {"s3:prefix": "variants/*"}}
    assert fn["OnFailureDestination"]["Resource"] == "arn:aws:sqs:eu-west-1:000000000000:ResizeFailures"
    # What SAM adds to the role it makes: basic execution and the destination.
    origins = {s["Origin"] for s in p["ResizeFunctionRole"]["statements"]}
    assert {"SAM: AWSLambdaBasicExecutionRole", "SAM: EventInvokeConfig OnFailure"} <= origins
    assert p["admin"]["statements"][0]["Action"] == "*"
    # Nothing unresolved is left behind.
    assert "${" not in str(doc) and "Fn::" not in str(doc) and "'Ref'" not in str(doc)


def write(tmp_path: Path, text: str) -> Path:
    t = tmp_path / "template.yaml"
    t.write_text(text)
    return t


USER = """
Parameters:
  Flag: {Type: String, Default: "no"}
Conditions:
  On: !Equals [!Ref Flag, "yes"]
Resources:
  EdgeUser:
    Type: AWS::IAM::User
    Properties:
      Policies:
        - PolicyName: p
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: !If [On, "s3:*", "s3:GetObject"]
                Resource: !Join ["", ["arn:", !Ref "AWS::Partition", ":s3:::", !Select [1, !Split [",", "a,b"]], "/*"]]
  ResizeFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies: [AWSLambdaBasicExecutionRole]
  Optional:
    Type: AWS::IAM::User
    Condition: On
    Properties: {}
"""


def test_intrinsics_and_conditions(tmp_path):
    doc = iam.resolve(ENV, write(tmp_path, USER))
    (stmt,) = doc["principals"]["EdgeUser"]["statements"]
    assert (stmt["Action"], stmt["Resource"]) == ("s3:GetObject", "arn:aws:s3:::b/*")
    assert "Optional" not in doc["principals"]  # its condition is false


@pytest.mark.parametrize("change,message", [
    ("Resource: !GetAtt EdgeUser.Nope", "GetAtt EdgeUser.Nope"),
    ("Resource: !ImportValue x", "Fn::ImportValue is not resolvable locally"),
    ("Resource: !Ref Missing", "Ref to unknown Missing"),
    ("Resource: '*'\n                Principal: '*'", "not valid in an identity-based policy"),
])
def test_what_cannot_be_resolved_exactly_is_an_error(tmp_path, change, message):
    text = USER.replace('Resource: !Join ["", ["arn:", !Ref "AWS::Partition", ":s3:::", '
                        '!Select [1, !Split [",", "a,b"]], "/*"]]', change)
    with pytest.raises(iam.ResolveError, match=message):
        iam.resolve(ENV, write(tmp_path, text))


def test_a_sam_policy_template_or_unknown_managed_policy_is_an_error(tmp_path):
    for policy, message in [("S3ReadPolicy: {BucketName: b}", "SAM policy templates"),
                            ("AmazonS3FullAccess", "managed policy AmazonS3FullAccess")]:
        text = USER.replace("Policies: [AWSLambdaBasicExecutionRole]", f"Policies:\n        - {policy}")
        with pytest.raises(iam.ResolveError, match=message):
            iam.resolve(ENV, write(tmp_path, text))


def test_a_database_secret_must_name_the_local_user():
    env = {**ENV, "PIXPORT_DB_EDGE_USER": "someone_else"}
    with pytest.raises(iam.ResolveError, match="EdgeDatabaseSecret: username 'pixport_edge' is not PIXPORT_DB_EDGE_USER"):
        iam.resolve(env)
    env = {k: v for k, v in ENV.items() if not k.startswith("PIXPORT_DB_RESIZER_")}
    with pytest.raises(iam.ResolveError, match="PIXPORT_DB_RESIZER_SECRET_ARN"):
        iam.resolve(env)


def test_missing_local_key_is_an_error():
    env = {k: v for k, v in ENV.items() if not k.startswith("PIXPORT_LAMBDA_")}
    with pytest.raises(iam.ResolveError, match="PIXPORT_LAMBDA_ACCESS_KEY_ID"):
        iam.resolve(env)
