"""One benchmark child: runs resizer.wasm under embedded wasmtime (the PyPI
package, the same engine the Rust Lambda host embeds).

usage: wasm_child.py WASM IMAGE [REPEAT]
Without REPEAT: one run, as one Lambda invocation (the parent times the whole
process: interpreter + engine start + module deserialize + run). With REPEAT:
one warm-up, then REPEAT timed runs, each in a fresh Store and instance (as
the Lambda host does per invocation); prints {"wall_ms": [...], "cpu_ms": [...]}.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packages" / "resizer-py" / "src"))
from pixport_resizer.wasi import Host  # noqa: E402


def main() -> None:
    wasm, image = Path(sys.argv[1]), Path(sys.argv[2])
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    host = Host(wasm, cache=True)
    # "--version" instead of an image: host start + one trivial run, to show
    # what the per-process column spends before any image work.
    args, stdin = (["--version"], None) if str(image) == "--version" else ([], image)

    def once() -> None:
        r = host.run(args, stdin)
        if r.code != 0:
            sys.stderr.write(f"resizer failed: {r.code} {r.trap} {r.stderr!r}\n")
            sys.exit(1)

    if repeat == 0:
        once()
        return
    once()
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        once()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    print(json.dumps({"wall_ms": wall, "cpu_ms": cpu}))


if __name__ == "__main__":
    main()
