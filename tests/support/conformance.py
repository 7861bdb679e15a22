"""Schemathesis against the OpenAPI document the worker serves: one run of
its CLI (`st run`), summarised per operation from the run's HAR and JSON
reports. The pytest test (tests/edge/test_conformance.py, bounded) and the
long run (bench/conformance/run) share it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from support.local import ROOT

DOC = json.loads((ROOT / "edge" / "openapi.json").read_text())
# The config file (checks, expected statuses) the runs use.
CONFIG = ROOT / "tests" / "edge" / "schemathesis.toml"


def operations() -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, path template, regex for concrete paths) of every documented operation."""
    ops = []
    for path, item in DOC["paths"].items():
        rx = re.compile("^" + re.sub(r"\\\{[^/]+\\\}", "[^/]+", re.escape(path)) + "$")
        for method in item:
            if method != "parameters":
                ops.append((method.upper(), path, rx))
    return ops


@dataclass
class Result:
    exit_code: int
    output: str
    report: dict
    # "METHOD /path" -> Counter of response statuses (requests schemathesis sent).
    statuses: dict[str, Counter] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict]:
        return self.report.get("failures", [])

    @property
    def errors(self) -> list[dict]:
        return self.report.get("errors", [])

    def server_errors(self) -> dict[str, int]:
        return {op: sum(n for s, n in c.items() if s >= 500) for op, c in self.statuses.items()
                if any(s >= 500 for s in c)}

    def table(self) -> str:
        rows = [f"{'operation':28} {'requests':>9} {'2xx':>6} {'4xx':>6} {'5xx':>5}  failures"]
        failed = Counter()
        for f in self.failures:
            for op in f.get("operations", []):
                failed[op] += f.get("count", 1)
        for label, c in sorted(self.statuses.items(), key=lambda kv: kv[0].split(" ", 1)[::-1]):
            total = sum(c.values())
            by = lambda lo: sum(n for s, n in c.items() if lo <= s < lo + 100)  # noqa: E731
            rows.append(f"{label:28} {total:9d} {by(200):6d} {by(400):6d} {by(500):5d}  {failed[label]}")
        return "\n".join(rows)


def run(url: str, report_dir: Path, *, token: str | None, seed: int, max_examples: int,
        phases: str = "examples,coverage,fuzzing,stateful", max_time: int | None = None,
        timeout: float = 600) -> Result:
    """Runs `st run` against the worker at `url` and reads back what it did."""
    report_dir.mkdir(parents=True, exist_ok=True)
    har, js = report_dir / "run.har", report_dir / "run.json"
    cmd = [str(Path(sys.executable).parent / "st"), "--config-file", str(CONFIG), "run",
           f"{url}/openapi.json", "--url", url, "--seed", str(seed), "--max-examples", str(max_examples),
           "--phases", phases, "--workers", "1", "--request-timeout", "30",
           "--report", "har,json", "--report-har-path", str(har), "--report-json-path", str(js),
           "--output-truncate", "false",
           # Under the worker's burst limit (100 writes per 10 s per token),
           # so the operations behind it are tested rather than refused 429.
           "--rate-limit", "480/m"]
    if max_time:
        cmd += ["--max-time", str(max_time)]
    if token:
        cmd += ["--header", f"Authorization: Bearer {token}"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    report = json.loads(js.read_text()) if js.exists() else {}
    return Result(p.returncode, p.stdout + p.stderr, report, per_operation(har))


def per_operation(har: Path) -> dict[str, Counter]:
    """Response statuses per documented operation, from the HAR of a run."""
    out: dict[str, Counter] = {}
    if not har.exists():
        return out
    # A literal segment wins over a template (`/images/{id}/original` over
    # `/images/{id}/{width}`), as in the worker's router.
    ops = sorted(operations(), key=lambda op: op[1].count("{"))
    for entry in json.loads(har.read_text())["log"]["entries"]:
        method = entry["request"]["method"].upper()
        path = urlsplit(entry["request"]["url"]).path
        label = next((f"{m} {p}" for m, p, rx in ops if m == method and rx.match(path)), f"{method} (undocumented)")
        out.setdefault(label, Counter())[int(entry["response"]["status"])] += 1
    return out


def version() -> str:
    from importlib.metadata import version as v

    return v("schemathesis")


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_floor(ms: int) -> str:
    """The smallest image id (a ULID) made at or after `ms`: ids sort by time."""
    return "".join(CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(10))) + "0" * 16


def nothing_lost(s3, bucket: str, sql, since: str, settle_s: float = 180) -> list[str]:
    """S3 listed against the table for the images made since the id `since`:
    every `ready` row has its original and exactly the variants it lists, a
    `failed` one its original, an `uploading` one (declared, never sent) no
    variants; no object belongs to an image without a row. Waits for
    `pending` rows to settle first. Returns what is wrong (empty: nothing)."""
    import json as _json
    import time

    from support.waiting import WaitTimeout, budget, wait_until

    # Ids are ULIDs made from now on; other tests plant odd ids far outside.
    until = ulid_floor(int(time.time() * 1000) + 60_000)
    try:
        wait_until(lambda: not sql.rows("SELECT id FROM images WHERE id >= :lo AND id < :hi AND status = 'pending'",
                                        lo=since, hi=until), settle_s, "the run's pending rows to settle", interval=0.5)
    except WaitTimeout:
        pass  # reported below, row by row
    settle_s = budget(settle_s)
    rows = {r["id"]: r for r in sql.rows(
        "SELECT id, status, original_key, variants FROM images WHERE id >= :lo AND id < :hi",
        lo=since, hi=until)}
    objects: dict[str, set[str]] = {}
    for prefix in ("originals/", "variants/"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                id_ = o["Key"].split("/")[1]
                if since <= id_ < until:
                    objects.setdefault(id_, set()).add(o["Key"])
    wrong = [f"{id_}: objects without a row: {sorted(keys)}" for id_, keys in objects.items() if id_ not in rows]
    for id_, r in rows.items():
        held = objects.get(id_, set())
        variants = {k for k in held if k.startswith("variants/")}
        listed = {v["key"] for v in _json.loads(r["variants"] or "[]")}
        if r["status"] == "pending":
            wrong.append(f"{id_}: still pending after {settle_s} s")
        elif r["status"] == "ready" and (r["original_key"] not in held or variants != listed):
            wrong.append(f"{id_}: ready, but S3 holds {sorted(held)} for {sorted(listed)}")
        elif r["status"] == "failed" and r["original_key"] not in held:
            wrong.append(f"{id_}: failed without its original")
        elif r["status"] == "uploading" and variants:
            wrong.append(f"{id_}: uploading with variants {sorted(variants)}")
    return wrong
