"""Applies migrations/*.sql through the RDS Data API, once each, in name order.

The same command serves the local stack and Aurora in AWS, so the schema in
production is made exactly as the tests make it:

    ./run migrate                      # the local Data API (local/ports.env)
    ./run migrate --aws --cluster-arn ARN --secret-arn ARN [--database pixport] [--region R]

`--aws` uses boto3's usual credential chain (environment, profile, SSO).
Applied files are recorded with their SHA-256 in `schema_migrations`; a file
changed after it was applied stops the run, because MySQL DDL cannot be
rolled back and the fix is a new migration, not an edit.
"""

from __future__ import annotations

import argparse
import hashlib
import os
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


def main() -> None:
    import boto3

    ap = argparse.ArgumentParser(description="Apply migrations/*.sql through the RDS Data API.")
    ap.add_argument("--aws", action="store_true", help="the real Data API (boto3 credentials) instead of the local one")
    ap.add_argument("--cluster-arn", default=os.environ.get("PIXPORT_DB_CLUSTER_ARN"))
    ap.add_argument("--secret-arn", default=os.environ.get("PIXPORT_DB_SECRET_ARN"))
    ap.add_argument("--database", default=os.environ.get("PIXPORT_DB_NAME", "pixport"))
    ap.add_argument("--region", default=None)
    args = ap.parse_args()
    if args.aws:
        if not (args.cluster_arn and args.secret_arn):
            ap.error("--aws needs --cluster-arn and --secret-arn")
        client = boto3.client("rds-data", region_name=args.region)
    else:
        env = os.environ
        client = boto3.client(
            "rds-data", endpoint_url=f"http://{env['PIXPORT_DATAAPI_ADDR']}", region_name=env["PIXPORT_REGION"],
            # The local admin identity: migrations are an operator's job, not the worker's.
            aws_access_key_id=env["PIXPORT_ADMIN_ACCESS_KEY_ID"],
            aws_secret_access_key=env["PIXPORT_ADMIN_SECRET_ACCESS_KEY"],
        )
    done = migrate(DataApi(client, args.cluster_arn, args.secret_arn, args.database), say=lambda m: print(m, file=sys.stderr))
    print(f"migrate: {len(done)} applied, schema up to date", file=sys.stderr)


if __name__ == "__main__":
    main()
