"""The long schemathesis run (see bench/conformance/run): prints, per run
(with a token, without), the requests each operation got by status class
and the failures schemathesis found, then the totals."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from support import conformance  # noqa: E402
from tests.edge.workerctl import Worker  # noqa: E402

TOKEN = "local-dev-token"


def main() -> int:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20261130
    max_time = int(sys.argv[3]) if len(sys.argv) > 3 else None
    up = subprocess.run(["local/stack", "status"], cwd=ROOT, capture_output=True).returncode == 0
    if not up:
        subprocess.run(["local/stack", "start"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    failed = 0
    since = conformance.ulid_floor(int(time.time() * 1000) - 1000)
    try:
        w = Worker().start()
        try:
            cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                        if line.startswith("model name")), platform.processor())
            print(f"Machine: {cpu}, {os.cpu_count()} cores; wrangler dev (workerd) + local stack on loopback")
            print(f"schemathesis {conformance.version()}, seed {seed}, {examples} examples per operation, "
                  f"time budget {max_time or 'none'} s per run, "
                  "phases examples, coverage, fuzzing, stateful; every check\n")
            for label, token in (("with a token", TOKEN), ("without a token", None)):
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.monotonic()
                    r = conformance.run(w.url, Path(tmp), token=token, seed=seed, max_examples=examples,
                                        max_time=max_time, timeout=3 * 3600)
                    took = time.monotonic() - t0
                cases = r.report.get("test_cases", {})
                print(f"## {label}: {cases.get('generated', 0)} test cases, "
                      f"{sum(sum(c.values()) for c in r.statuses.values())} requests, {took:.0f} s, "
                      f"exit {r.exit_code}\n")
                print(r.table())
                for f in r.failures:
                    print(f"FAILURE {f['title']} ({f['count']}x) in {', '.join(f['operations'])}")
                for e in r.errors:
                    print(f"ERROR {e['title']} ({e['count']}x)")
                print()
                failed += len(r.failures) + len(r.errors) + (r.exit_code != 0)
            wrong = nothing_lost(since)
            print(f"Nothing lost (S3 listed against the table, images made by the runs): "
                  f"{'yes' if not wrong else 'NO'}")
            for line in wrong:
                print(f"  {line}")
            failed += len(wrong)
        finally:
            w.stop()
    finally:
        if not up:
            subprocess.run(["local/stack", "stop"], cwd=ROOT, stdout=subprocess.DEVNULL)
    return 1 if failed else 0


def nothing_lost(since: str) -> list[str]:
    import boto3
    from botocore.config import Config

    from conftest import Sql
    from support import ports_env

    env = ports_env()
    s3 = boto3.client("s3", endpoint_url=f"http://{env['PIXPORT_S3_ADDR']}", region_name=env["PIXPORT_REGION"],
                      aws_access_key_id=env["PIXPORT_ADMIN_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["PIXPORT_ADMIN_SECRET_ACCESS_KEY"],
                      config=Config(s3={"addressing_style": "path"}))
    return conformance.nothing_lost(s3, env["PIXPORT_BUCKET"], Sql(env), since)


if __name__ == "__main__":
    raise SystemExit(main())
