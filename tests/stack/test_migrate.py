"""`./run migrate`: migrations through the Data API, once each, as in AWS."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest

from support import ROOT, ports_env


def _module():
    spec = importlib.util.spec_from_file_location("pixport_migrate", ROOT / "scripts" / "migrate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


migrate = _module()


def test_statements_split_outside_quotes_and_comments():
    sql = """-- a comment; not a statement
    CREATE TABLE a (x VARCHAR(9) DEFAULT 'a;b', `c;d` INT); /* x; y */
    INSERT INTO a VALUES ('it''s; fine', "q;\\"x");
    # hash comment;
    """
    assert migrate.statements(sql) == [
        "CREATE TABLE a (x VARCHAR(9) DEFAULT 'a;b', `c;d` INT)",
        "INSERT INTO a VALUES ('it''s; fine', \"q;\\\"x\")",
    ]


@pytest.fixture
def api(stack):
    import boto3

    stack = ports_env()
    client = boto3.client(
        "rds-data", endpoint_url=f"http://{stack['PIXPORT_DATAAPI_ADDR']}", region_name=stack["PIXPORT_REGION"],
        aws_access_key_id=stack["PIXPORT_ADMIN_ACCESS_KEY_ID"],
        aws_secret_access_key=stack["PIXPORT_ADMIN_SECRET_ACCESS_KEY"],
    )
    return migrate.DataApi(client, stack["PIXPORT_DB_CLUSTER_ARN"], stack["PIXPORT_DB_SECRET_ARN"],
                           stack["PIXPORT_DB_NAME"])


def test_stack_is_migrated_and_rerun_applies_nothing(api):
    files = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    recorded = {name: digest for name, digest in api.run("SELECT name, sha256 FROM schema_migrations")}
    for name in files:
        assert name in recorded
    r = subprocess.run([str(ROOT / "run"), "migrate"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "0 applied" in r.stderr


def test_new_file_applied_once_and_changed_file_refused(api, tmp_path):
    name = "9999_migrate_test.sql"
    (tmp_path / name).write_text("CREATE TABLE migrate_probe (id INT PRIMARY KEY);\nINSERT INTO migrate_probe VALUES (7);\n")
    try:
        assert migrate.migrate(api, say=lambda m: None, directory=tmp_path) == [name]
        assert api.run("SELECT id FROM migrate_probe") == [[7]]
        assert migrate.migrate(api, say=lambda m: None, directory=tmp_path) == []
        (tmp_path / name).write_text("DROP TABLE images;\n")
        with pytest.raises(SystemExit, match="changed after it was applied"):
            migrate.migrate(api, say=lambda m: None, directory=tmp_path)
        assert api.run("SELECT COUNT(*) FROM images") is not None
    finally:
        api.run("DROP TABLE IF EXISTS migrate_probe")
        api.run("DELETE FROM schema_migrations WHERE name = :name", name=name)
