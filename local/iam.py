"""Resolves the IAM policies of deploy/template.yaml against the local stack
and writes them as the identities file the local S3 and Data API enforce
(`$PIXPORT_IAM_POLICIES`, by default `.state/iam.json`).

The template is the one source: CloudFormation's intrinsic functions (short
tags and `Fn::` forms: Ref, GetAtt, Sub, Join, Select, Split, If, Equals,
And, Or, Not, FindInMap) are evaluated with the local values — partition
`aws`, account 000000000000, `PIXPORT_REGION`, the images bucket named
`PIXPORT_BUCKET`, the cluster and secret ARNs `PIXPORT_DB_CLUSTER_ARN` and
`PIXPORT_DB_SECRET_ARN` (the master user's), each role's database secret
(LOCAL_SECRETS: `PIXPORT_DB_<ROLE>_SECRET_ARN`, its username checked against
`PIXPORT_DB_<ROLE>_USER`), the function `PIXPORT_FUNCTION_NAME` — and
parameters take their defaults. Anything it cannot resolve exactly (an
attribute it does not know, a managed policy it cannot expand, a policy
attached some other way) is an error naming the spot, never a guess.

Identities and their local keys (local/ports.env):

  EdgeUser            PIXPORT_ACCESS_KEY_ID         the worker (AWS::IAM::User)
  ResizeFunctionRole  PIXPORT_LAMBDA_ACCESS_KEY_ID  the Lambda (SAM's role for ResizeFunction)
  admin               PIXPORT_ADMIN_ACCESS_KEY_ID   local only: tests inspecting state, migrations

Run by local/stack before the servers start; `python local/iam.py --print`
shows the result. Needs PyYAML (the project venv has it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "template.yaml"
ACCOUNT = "000000000000"
PARTITION = "aws"

# Principal name -> the ports.env prefix of its key pair (<prefix>_ACCESS_KEY_ID,
# <prefix>_SECRET_ACCESS_KEY).
LOCAL_KEYS = {
    "EdgeUser": "PIXPORT",
    "ResizeFunctionRole": "PIXPORT_LAMBDA",
    "admin": "PIXPORT_ADMIN",
}

# Secrets Manager secrets of the template -> the ports.env prefix of their
# local stand-in: <prefix>_SECRET_ARN is the ARN, <prefix>_USER the database
# user the secret's username must name (the local Data API connects as it).
LOCAL_SECRETS = {
    "EdgeDatabaseSecret": "PIXPORT_DB_EDGE",
    "ResizerDatabaseSecret": "PIXPORT_DB_RESIZER",
}

# What SAM attaches to every function role it creates (the AWS managed policy
# AWSLambdaBasicExecutionRole, expanded).
BASIC_EXECUTION = {
    "Effect": "Allow",
    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    "Resource": "*",
}
MANAGED = {"AWSLambdaBasicExecutionRole": [BASIC_EXECUTION]}

# SAM's permissions for an EventInvokeConfig destination, by type.
DESTINATION_ACTIONS = {
    "SQS": "sqs:SendMessage",
    "SNS": "sns:Publish",
    "Lambda": "lambda:InvokeFunction",
    "EventBridge": "events:PutEvents",
}
# SAM event sources that need no permission on the function's own role.
ROLELESS_EVENTS = {"Schedule", "ScheduleV2", "S3", "Api", "HttpApi", "CloudWatchEvent", "EventBridgeRule", "SNS",
                   "CloudWatchLogs", "IoTRule", "AlexaSkill", "Cognito"}

STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}


class ResolveError(Exception):
    pass


class _NoValue:
    """AWS::NoValue: the property or list entry disappears."""


NO_VALUE = _NoValue()


def load_template(path: Path = TEMPLATE) -> dict:
    """The template with every short tag (`!Ref x`, `!GetAtt a.b`, `!Sub ...`)
    turned into its long form (`{"Ref": x}`, `{"Fn::GetAtt": [a, b]}`, ...)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix in ("Ref", "Condition"):
            return {suffix: value}
        if suffix == "GetAtt" and isinstance(value, str):
            logical, _, attr = value.partition(".")
            value = [logical, attr]
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    return yaml.load(path.read_text(), Loader=Loader)


class Resolver:
    def __init__(self, template: dict, env: dict[str, str]):
        self.t = template
        self.env = env
        self.resources: dict = template.get("Resources") or {}
        self.region = env.get("PIXPORT_REGION", "us-east-1")
        self.bucket = env.get("PIXPORT_BUCKET", "pixport-local").split(",")[0].strip()
        self.function = env.get("PIXPORT_FUNCTION_NAME", "pixport-resizer")
        buckets = [k for k, r in self.resources.items() if r.get("Type") == "AWS::S3::Bucket"]
        if len(buckets) > 1:
            raise ResolveError(f"several buckets ({', '.join(buckets)}): say which is PIXPORT_BUCKET")
        self.bucket_id = buckets[0] if buckets else None
        # The bucket's name formula: policies that spell it out with !Sub
        # rather than !Ref (to avoid a dependency cycle) mean the same bucket.
        self.bucket_formula = None
        if self.bucket_id:
            name = (self.resources[self.bucket_id].get("Properties") or {}).get("BucketName")
            if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
                self.bucket_formula = name["Fn::Sub"]
        functions = [k for k, r in self.resources.items()
                     if r.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")]
        if len(functions) > 1:
            raise ResolveError(f"several functions ({', '.join(functions)}): say which is PIXPORT_FUNCTION_NAME")

    # Intrinsic functions ---------------------------------------------------

    def ref(self, name: str, where: str) -> Any:
        pseudo = {
            "AWS::Partition": PARTITION, "AWS::AccountId": ACCOUNT, "AWS::Region": self.region,
            "AWS::StackName": "pixport-local", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        params = self.t.get("Parameters") or {}
        if name in params:
            if "Default" not in params[name]:
                raise ResolveError(f"{where}: parameter {name} has no default")
            return params[name]["Default"]
        res = self.resources.get(name)
        if res is None:
            raise ResolveError(f"{where}: Ref to unknown {name}")
        kind = res.get("Type")
        if kind == "AWS::S3::Bucket":
            return self.bucket
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return self.function
        if kind == "AWS::RDS::DBCluster":
            return self.env["PIXPORT_DB_CLUSTER_ARN"].rsplit(":", 1)[-1]
        if kind in ("AWS::IAM::User", "AWS::IAM::Role"):
            return name
        if kind == "AWS::SecretsManager::Secret":
            return self.secret_arn(name, where)
        raise ResolveError(f"{where}: Ref {name} ({kind}) has no local value")

    def secret_arn(self, logical: str, where: str) -> str:
        """A database secret's local ARN; its username must be the local user
        the Data API maps that ARN to, or grants tested here would be another
        user's."""
        prefix = LOCAL_SECRETS.get(logical)
        if prefix is None:
            raise ResolveError(f"{where}: secret {logical} has no local stand-in (LOCAL_SECRETS in local/iam.py)")
        arn, user = self.env.get(f"{prefix}_SECRET_ARN"), self.env.get(f"{prefix}_USER")
        if not arn or not user:
            raise ResolveError(f"{where}: {prefix}_SECRET_ARN / {prefix}_USER are not set (local/ports.env)")
        gen = ((self.resources[logical].get("Properties") or {}).get("GenerateSecretString") or {})
        try:
            username = json.loads(gen.get("SecretStringTemplate", "{}")).get("username")
        except ValueError as e:
            raise ResolveError(f"Resources.{logical}: SecretStringTemplate is not JSON: {e}") from e
        if username != user:
            raise ResolveError(f"Resources.{logical}: username {username!r} is not {prefix}_USER {user!r}")
        return arn

    def get_att(self, logical: str, attr: str, where: str) -> str:
        res = self.resources.get(logical)
        if res is None:
            raise ResolveError(f"{where}: GetAtt of unknown {logical}")
        kind = res.get("Type")
        known = {
            ("AWS::RDS::DBCluster", "DBClusterArn"): lambda: self.env["PIXPORT_DB_CLUSTER_ARN"],
            ("AWS::RDS::DBCluster", "MasterUserSecret.SecretArn"): lambda: self.env["PIXPORT_DB_SECRET_ARN"],
            ("AWS::S3::Bucket", "Arn"): lambda: f"arn:{PARTITION}:s3:::{self.bucket}",
            ("AWS::SQS::Queue", "Arn"): lambda: f"arn:{PARTITION}:sqs:{self.region}:{ACCOUNT}:{logical}",
            ("AWS::Serverless::Function", "Arn"):
                lambda: f"arn:{PARTITION}:lambda:{self.region}:{ACCOUNT}:function:{self.function}",
            ("AWS::Lambda::Function", "Arn"):
                lambda: f"arn:{PARTITION}:lambda:{self.region}:{ACCOUNT}:function:{self.function}",
            ("AWS::IAM::User", "Arn"): lambda: f"arn:{PARTITION}:iam::{ACCOUNT}:user/{logical}",
            ("AWS::IAM::Role", "Arn"): lambda: f"arn:{PARTITION}:iam::{ACCOUNT}:role/{logical}",
        }
        f = known.get((kind, attr))
        if f is None:
            raise ResolveError(f"{where}: GetAtt {logical}.{attr} ({kind}) has no local value")
        return f()

    def sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.value(v, where) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}
        if self.bucket_formula and self.bucket_formula in text:
            text = text.replace(self.bucket_formula, self.bucket)

        def one(m: re.Match) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                return self.get_att(logical, attr, where)
            return str(self.ref(name, where))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def condition(self, name: str, where: str = "Conditions") -> bool:
        conds = self.t.get("Conditions") or {}
        if name not in conds:
            raise ResolveError(f"{where}: unknown condition {name}")
        return bool(self.value(conds[name], f"Conditions.{name}"))

    def value(self, node: Any, where: str) -> Any:
        """`node` with every intrinsic function evaluated."""
        if isinstance(node, list):
            out = [self.value(v, where) for v in node]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg, where)
            if fn == "Condition":
                return self.condition(arg, where)
            if fn == "Fn::GetAtt":
                logical, attr = (arg.split(".", 1) if isinstance(arg, str) else arg)
                return self.get_att(logical, attr, where)
            if fn == "Fn::Sub":
                return self.sub(arg, where)
            if fn == "Fn::Join":
                delim, items = arg
                return str(delim).join(str(v) for v in self.value(items, where))
            if fn == "Fn::Select":
                index, items = arg
                return self.value(items, where)[int(self.value(index, where))]
            if fn == "Fn::Split":
                delim, text = arg
                return str(self.value(text, where)).split(delim)
            if fn == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name, where) else no, where)
            if fn == "Fn::Equals":
                a, b = (self.value(v, where) for v in arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self.value(arg[0], where)
            if fn == "Fn::And":
                return all(self.value(v, where) for v in arg)
            if fn == "Fn::Or":
                return any(self.value(v, where) for v in arg)
            if fn == "Fn::FindInMap":
                m, k1, k2 = (self.value(v, where) for v in arg)
                return (self.t.get("Mappings") or {})[m][k1][k2]
            if fn.startswith("Fn::"):
                raise ResolveError(f"{where}: {fn} is not resolvable locally")
        out = {k: self.value(v, f"{where}.{k}") for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    # Principals --------------------------------------------------------

    def active(self, logical: str) -> bool:
        cond = self.resources[logical].get("Condition")
        return cond is None or self.condition(cond, f"Resources.{logical}")

    def document(self, doc: Any, origin: str) -> list[dict]:
        doc = self.value(doc, origin)
        if not isinstance(doc, dict) or doc.get("Version") != "2012-10-17":
            raise ResolveError(f"{origin}: a policy document needs Version 2012-10-17")
        stmts = doc.get("Statement")
        stmts = stmts if isinstance(stmts, list) else [stmts]
        out = []
        for s in stmts:
            extra = set(s) - STATEMENT_KEYS
            if extra:
                raise ResolveError(f"{origin}: statement {s.get('Sid', '?')} has {sorted(extra)} "
                                   "(not valid in an identity-based policy)")
            out.append({**s, "Origin": origin})
        return out

    def inline(self, logical: str, props: dict) -> list[dict]:
        out = []
        for i, p in enumerate(props.get("Policies") or []):
            name = p.get("PolicyName", i) if isinstance(p, dict) else i
            out += self.document(p["PolicyDocument"], f"{logical}.Policies[{name}]")
        for key in ("ManagedPolicyArns", "Groups", "PermissionsBoundary"):
            if props.get(key):
                raise ResolveError(f"{logical}.{key}: not expanded locally (use inline Policies, "
                                   "or teach local/iam.py)")
        return out

    def function_role(self, logical: str, props: dict) -> tuple[str, list[dict]]:
        """SAM's `<Function>Role`: the function's Policies, the basic execution
        policy, and what its EventInvokeConfig destinations and events need."""
        if props.get("Role"):
            raise ResolveError(f"{logical}.Role: an explicit role is not resolved locally")
        policies = props.get("Policies") or []
        policies = policies if isinstance(policies, list) else [policies]
        stmts = list(MANAGED["AWSLambdaBasicExecutionRole"])
        stmts = [{**s, "Origin": "SAM: AWSLambdaBasicExecutionRole"} for s in stmts]
        for i, p in enumerate(policies):
            where = f"{logical}.Policies[{i}]"
            if isinstance(p, str):
                if p not in MANAGED:
                    raise ResolveError(f"{where}: managed policy {p} is not expanded locally")
                stmts += [{**s, "Origin": f"{where} {p}"} for s in MANAGED[p]]
            elif isinstance(p, dict) and "Statement" in p:
                stmts += self.document(p, where)
            else:
                raise ResolveError(f"{where}: SAM policy templates are not expanded locally")
        dests = ((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {})
        for when, d in dests.items():
            action = DESTINATION_ACTIONS.get(d.get("Type"))
            if action is None:
                raise ResolveError(f"{logical}.EventInvokeConfig.{when}: destination type {d.get('Type')}")
            if "Destination" in d:
                stmts.append({"Effect": "Allow", "Action": action,
                              "Resource": self.value(d["Destination"], f"{logical}.EventInvokeConfig.{when}"),
                              "Origin": f"SAM: EventInvokeConfig {when}"})
        for name, ev in (props.get("Events") or {}).items():
            if ev.get("Type") not in ROLELESS_EVENTS:
                raise ResolveError(f"{logical}.Events.{name}: SAM adds role permissions for "
                                   f"{ev.get('Type')} events; not expanded locally")
        return f"{logical}Role", stmts

    def principals(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for logical, res in self.resources.items():
            kind, props = res.get("Type"), res.get("Properties") or {}
            if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::UserPolicy",
                        "AWS::IAM::RolePolicy") and self.active(logical):
                raise ResolveError(f"{logical} ({kind}): attach policies inline, or teach local/iam.py")
            if not self.active(logical):
                continue
            if kind == "AWS::IAM::User":
                name = self.value(props.get("UserName", logical), logical)
                out[logical] = {"arn": f"arn:{PARTITION}:iam::{ACCOUNT}:user/{name}",
                                "statements": self.inline(logical, props)}
            elif kind == "AWS::IAM::Role":
                out[logical] = {"arn": f"arn:{PARTITION}:sts::{ACCOUNT}:assumed-role/{logical}/local",
                                "statements": self.inline(logical, props)}
            elif kind == "AWS::Serverless::Function":
                role, stmts = self.function_role(logical, props)
                out[role] = {"arn": f"arn:{PARTITION}:sts::{ACCOUNT}:assumed-role/{role}/{self.function}",
                             "statements": stmts}
        out["admin"] = {"arn": f"arn:{PARTITION}:iam::{ACCOUNT}:user/admin",
                        "statements": [{"Sid": "LocalAdmin", "Effect": "Allow", "Action": "*", "Resource": "*",
                                        "Origin": "local/iam.py: the tests' inspecting identity (not in AWS)"}]}
        # After admin: a bucket policy's Deny for everyone binds an operator too.
        self.bucket_policies(out)
        return out

    def bucket_policies(self, out: dict[str, dict]) -> None:
        """Statements of an active bucket policy that name one of the local
        principals (or everyone) join that principal's statements: in one
        account an Allow in either policy allows and a Deny in either denies.
        Service principals (CloudFront, ...) have no local key and are skipped."""
        for logical, res in self.resources.items():
            if res.get("Type") != "AWS::S3::BucketPolicy" or not self.active(logical):
                continue
            doc = self.value((res.get("Properties") or {}).get("PolicyDocument"), logical)
            for s in doc.get("Statement") or []:
                if "NotPrincipal" in s:
                    raise ResolveError(f"{logical}: NotPrincipal is not resolved locally")
                principal = s.get("Principal")
                aws = principal.get("AWS") if isinstance(principal, dict) else principal
                if aws is None:
                    continue
                arns = aws if isinstance(aws, list) else [aws]
                stmt = {k: v for k, v in s.items() if k != "Principal"}
                for p in out.values():
                    if "*" in arns or p["arn"] in arns:
                        p["statements"].append({**stmt, "Origin": f"{logical} (bucket policy)"})


def resolve(env: dict[str, str], template: Path = TEMPLATE) -> dict:
    r = Resolver(load_template(template), env)
    principals = r.principals()
    for name, prefix in LOCAL_KEYS.items():
        if name not in principals:
            raise ResolveError(f"the template has no {name}, which local key {prefix}_ACCESS_KEY_ID stands for")
        key, secret = env.get(f"{prefix}_ACCESS_KEY_ID"), env.get(f"{prefix}_SECRET_ACCESS_KEY")
        if not key or not secret:
            raise ResolveError(f"{prefix}_ACCESS_KEY_ID / {prefix}_SECRET_ACCESS_KEY are not set (local/ports.env)")
        principals[name]["keys"] = {key: secret}
    return {
        "version": 1,
        "source": str(template.relative_to(ROOT) if template.is_relative_to(ROOT) else template),
        "context": {"partition": PARTITION, "account": ACCOUNT, "region": r.region, "bucket": r.bucket},
        "principals": principals,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", type=Path, default=TEMPLATE)
    ap.add_argument("--out", type=Path, default=None, help="default: $PIXPORT_IAM_POLICIES")
    ap.add_argument("--print", action="store_true", help="print the result instead of writing it")
    args = ap.parse_args(argv)
    try:
        doc = resolve(dict(os.environ), args.template)
    except (ResolveError, KeyError, ValueError, TypeError) as e:
        print(f"local/iam.py: {args.template}: {e}", file=sys.stderr)
        return 1
    text = json.dumps(doc, indent=2) + "\n"
    if args.print:
        sys.stdout.write(text)
        return 0
    out = args.out or Path(os.environ["PIXPORT_IAM_POLICIES"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    # Holds the local secret keys: readable by this user only.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
