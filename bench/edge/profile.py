"""Where the release worker's CPU goes on POST /images: a sampling CPU
profile (DevTools protocol, `bench/edge/cdp_profile.mjs`) over N uploads
of one size, summed by function (self time) and by inclusive time for the
worker's own wasm functions. Prints two Markdown tables and writes the
profile (open it in Chrome's DevTools) to .state/edge-upload.cpuprofile.

Usage: bench/edge/run profile [bytes per upload, default 20000] [uploads, default 200] [js]
(`js`: the idiomatic JS worker of bench/edge/js-worker instead, for comparison)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT), str(ROOT / "bench" / "edge")]
from support.padded import padded_jpeg  # noqa: E402
from tests.edge.workerctl import Worker  # noqa: E402
from upload_bench import JS_CONFIG, js_vars, machine_line, upload  # noqa: E402

OUT = ROOT / ".state" / "edge-upload.cpuprofile"


def summarise(profile: dict, top: int = 25) -> None:
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    # Time per sample: the gaps between samples (µs).
    deltas = profile["timeDeltas"]
    self_us: dict[int, float] = defaultdict(float)
    for node_id, dt in zip(profile["samples"], deltas[1:] + [0]):
        self_us[node_id] += dt
    total = sum(self_us.values()) or 1.0

    def name(n: dict) -> str:
        f = n["callFrame"]
        fn = f["functionName"] or "(anonymous)"
        url = f.get("url", "").rsplit("/", 1)[-1]
        return f"{fn} [{url}]" if url and not fn.startswith("(") else fn

    by_self: dict[str, float] = defaultdict(float)
    by_total: dict[str, float] = defaultdict(float)
    for node_id, us in self_us.items():
        by_self[name(nodes[node_id])] += us
        seen = set()
        n = node_id
        while n is not None:
            key = name(nodes[n])
            if key not in seen:
                by_total[key] += us
                seen.add(key)
            n = parent.get(n)
    print(f"\nSamples: {total / 1000:.0f} ms of JS-thread time in the profile\n")
    print("| self % | self ms | function |\n|---:|---:|---|")
    for k, us in sorted(by_self.items(), key=lambda kv: -kv[1])[:top]:
        print(f"| {100 * us / total:.1f} | {us / 1000:.1f} | `{k}` |")
    print("\n| inclusive % | function |\n|---:|---|")
    for k, us in sorted(by_total.items(), key=lambda kv: -kv[1])[:top * 2]:
        print(f"| {100 * us / total:.1f} | `{k}` |")


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    js = len(sys.argv) > 3 and sys.argv[3] == "js"
    up = subprocess.run(["local/stack", "status"], cwd=ROOT, capture_output=True).returncode == 0
    if not up:
        subprocess.run(["local/stack", "start"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    body = padded_jpeg(size, size=(1600, 1200), quality=90)
    # The write limiter (100 per 10 s) would refuse a run this long.
    if js:
        w = Worker(extra_vars=js_vars(), extra_args=["--config", JS_CONFIG], release=False).start()
    else:
        w = Worker(release=True, ratelimits={"WRITE_LIMITER": 100_000}).start()
    try:
        # Warm: the isolate's hot code optimised first (see upload_bench).
        for _ in range(30):
            upload(w.url, body)
        OUT.parent.mkdir(exist_ok=True)
        prof = subprocess.Popen(["node", str(ROOT / "bench/edge/cdp_profile.mjs"), str(w.inspector_port), str(OUT)],
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert prof.stdout.readline().strip() == "profiling"
        for _ in range(n):
            upload(w.url, body)
        prof.stdin.close()
        prof.wait(timeout=120)
    finally:
        w.stop()
        if not up:
            subprocess.run(["local/stack", "stop"], cwd=ROOT, stdout=subprocess.DEVNULL)
    who = "the JS worker" if js else "release worker"
    print(machine_line() + f"; {who} under wrangler dev; {n} x POST /images of {size} bytes")
    summarise(json.loads(OUT.read_text()))


if __name__ == "__main__":
    main()
