"""Applies migrations/*.sql through the RDS Data API, once each, in name order.

The same command serves the local stack and Aurora in AWS, so the schema in
production is made exactly as the tests make it:

    ./run migrate                      # the local Data API (local/ports.env)
    ./run migrate --aws --cluster-arn ARN --secret-arn MASTER_ARN \
        --role-secret EDGE_ARN --role-secret RESIZER_ARN [--database pixport] [--region R]

`--aws` uses boto3's usual credential chain (environment, profile, SSO).
Migrations run as the master user (`--secret-arn`). Then each role's
database user (made locked by migrations/0010_role_users.sql) gets the
password of its secret and is unlocked: `--role-secret` names the secrets
in AWS (read from Secrets Manager, `{"username", "password"}`); locally
they are local/ports.env's `PIXPORT_DB_<ROLE>_USER` / `_PASSWORD`. This
runs every time, so migrating again applies a rotated secret.
Applied files are recorded with their SHA-256 in `schema_migrations`; a file
changed after it was applied stops the run, because MySQL DDL cannot be
rolled back and the fix is a new migration, not an edit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
  name       VARCHAR(255) NOT NULL PRIMARY KEY,
  sha256     CHAR(64)     NOT NULL,
  applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
)"""


def statements(sql: str) -> list[str]:
    """Splits a file into statements: the Data API runs one per call. Semicolons
    inside quotes, backticks and comments do not end a statement."""
    out, cur, i, n = [], [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"`":
            j = i + 1
            while j < n and sql[j] != c:
                j += 2 if sql[j] == "\\" and c != "`" else 1
            cur.append(sql[i:j + 1])
            i = j + 1
        elif sql.startswith("--", i) or c == "#":
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == ";":
            out.append("".join(cur).strip())
            cur = []
            i += 1
        else:
            cur.append(c)
            i += 1
    out.append("".join(cur).strip())
    return [s for s in out if s]


class DataApi:
    def __init__(self, client, cluster_arn: str, secret_arn: str, database: str):
        self.client, self.cluster_arn, self.secret_arn, self.database = client, cluster_arn, secret_arn, database

    def run(self, sql: str, **params: str) -> list[list]:
        out = self.client.execute_statement(
            resourceArn=self.cluster_arn, secretArn=self.secret_arn, database=self.database, sql=sql,
            parameters=[{"name": k, "value": {"stringValue": v}} for k, v in params.items()],
        )
        return [[next(iter(f.values())) for f in rec] for rec in out.get("records", [])]


def migrate(api: DataApi, say=print, directory: Path = MIGRATIONS) -> list[str]:
    """Applies what is pending; returns the names applied now."""
    api.run(VERSION_TABLE)
    applied = dict((name, digest) for name, digest in api.run("SELECT name, sha256 FROM schema_migrations"))
    done = []
    for path in sorted(directory.glob("*.sql")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if path.name in applied:
            if applied[path.name] != digest:
                raise SystemExit(f"migrate: {path.name} changed after it was applied; write a new migration instead")
            continue
        say(f"migrate: applying {path.name}")
        for stmt in statements(path.read_text()):
            api.run(stmt)
        api.run("INSERT INTO schema_migrations (name, sha256) VALUES (:name, :sha256)", name=path.name, sha256=digest)
        done.append(path.name)
    return done


# Local roles (local/ports.env): the users the local Data API connects as
# for PIXPORT_DB_<ROLE>_SECRET_ARN.
LOCAL_ROLES = ("EDGE", "RESIZER")
USER_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}")
# What may stand between the quotes of ALTER USER ... IDENTIFIED BY '...':
# the template's secrets are letters and digits (ExcludePunctuation).
PASSWORD = re.compile(r"[A-Za-z0-9._~+=-]{12,128}")


def set_role_passwords(api: DataApi, roles: list[tuple[str, str]], say=print) -> None:
    """Gives each role's user (made by a migration, locked) its secret's
    password and unlocks it. The password is spliced into the statement
    (ALTER USER takes no parameters), so both parts are checked first."""
    for user, password in roles:
        if not USER_NAME.fullmatch(user):
            raise SystemExit(f"migrate: database user name {user!r} is not [a-z_][a-z0-9_]*")
        if not PASSWORD.fullmatch(password):
            raise SystemExit(f"migrate: the password of {user} must be 12-128 letters, digits or ._~+=-")
        try:
            api.run(f"ALTER USER '{user}'@'%' IDENTIFIED BY '{password}' ACCOUNT UNLOCK")
        except Exception as e:  # botocore's ClientError, without importing botocore here
            raise SystemExit(f"migrate: could not set the password of {user} (made by a migration in "
                             f"migrations/?): {getattr(e, 'response', {}).get('Error', {}).get('Message', e)}")
        say(f"migrate: database user {user} has its secret's password")


def aws_role(secrets, arn: str) -> tuple[str, str]:
    """(username, password) of a role's secret in Secrets Manager."""
    doc = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    return doc["username"], doc["password"]


def main() -> None:
    import boto3

    ap = argparse.ArgumentParser(description="Apply migrations/*.sql through the RDS Data API.")
    ap.add_argument("--aws", action="store_true", help="the real Data API (boto3 credentials) instead of the local one")
    ap.add_argument("--cluster-arn", default=os.environ.get("PIXPORT_DB_CLUSTER_ARN"))
    ap.add_argument("--secret-arn", default=os.environ.get("PIXPORT_DB_SECRET_ARN"))
    ap.add_argument("--database", default=os.environ.get("PIXPORT_DB_NAME", "pixport"))
    ap.add_argument("--region", default=None)
    ap.add_argument("--role-secret", action="append", default=[], metavar="ARN",
                    help="--aws: a role's database secret (the stack's DbSecretArn, ResizerDbSecretArn)")
    args = ap.parse_args()
    if args.aws:
        if not (args.cluster_arn and args.secret_arn):
            ap.error("--aws needs --cluster-arn and --secret-arn")
        if not args.role_secret:
            ap.error("--aws needs each role's --role-secret (the stack's DbSecretArn and ResizerDbSecretArn)")
        client = boto3.client("rds-data", region_name=args.region)
        secrets = boto3.client("secretsmanager", region_name=args.region)
        roles = [aws_role(secrets, arn) for arn in args.role_secret]
    else:
        env = os.environ
        client = boto3.client(
            "rds-data", endpoint_url=f"http://{env['PIXPORT_DATAAPI_ADDR']}", region_name=env["PIXPORT_REGION"],
            # The local admin identity: migrations are an operator's job, not the worker's.
            aws_access_key_id=env["PIXPORT_ADMIN_ACCESS_KEY_ID"],
            aws_secret_access_key=env["PIXPORT_ADMIN_SECRET_ACCESS_KEY"],
        )
        roles = [(env[f"PIXPORT_DB_{r}_USER"], env[f"PIXPORT_DB_{r}_PASSWORD"])
                 for r in LOCAL_ROLES if env.get(f"PIXPORT_DB_{r}_SECRET_ARN")]
    api = DataApi(client, args.cluster_arn, args.secret_arn, args.database)
    done = migrate(api, say=lambda m: print(m, file=sys.stderr))
    set_role_passwords(api, roles, say=lambda m: print(m, file=sys.stderr))
    print(f"migrate: {len(done)} applied, schema up to date", file=sys.stderr)


if __name__ == "__main__":
    main()
