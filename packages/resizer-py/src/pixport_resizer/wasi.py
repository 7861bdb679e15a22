"""The wasmtime host for resizer.wasm, shaped like the Lambda host.

The Lambda runtime (Rust wasmtime) runs the module with in-memory stdio, a
linear-memory cap and an epoch deadline; `Host` does the same through the
`wasmtime` PyPI package. `pixport_resizer.resize` is built on it, and the
repository's tests and benchmarks use it directly (`Host.run` gives the raw
exit code, stdout, stderr and trap).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

EPOCH_TICK_S = 0.01


@dataclass
class Run:
    code: int | None          # exit code; None when the module trapped
    stdout: bytes
    stderr: bytes
    trap: str | None = None   # trap message (memory cap abort, epoch deadline)
    memory_bytes: int = 0     # linear memory size at the end = peak (it never shrinks)

    @property
    def error(self) -> dict | None:
        try:
            return json.loads(self.stderr.decode().strip().splitlines()[-1])["error"]
        except (ValueError, IndexError, KeyError):
            return None

    def framed(self) -> tuple[dict, list[bytes]]:
        """Splits stdout into (manifest, [variant bytes]) per the framing contract."""
        nl = self.stdout.index(b"\n")
        manifest = json.loads(self.stdout[:nl])
        payload = self.stdout[nl + 1:]
        assert len(payload) == manifest["payload_bytes"], (len(payload), manifest["payload_bytes"])
        return manifest, [payload[v["offset"]:v["offset"] + v["bytes"]] for v in manifest["variants"]]


@dataclass
class Host:
    wasm: Path
    # Keep the compiled module in the temp directory, keyed by the .wasm's
    # size and mtime (for tests and benchmarks that start many processes).
    # Off by default: a precompiled artifact is trusted code, and a shared
    # temp directory is writable by others.
    cache: bool = False
    engine: wasmtime.Engine = field(init=False)
    module: wasmtime.Module = field(init=False)

    def __post_init__(self) -> None:
        cfg = wasmtime.Config()
        cfg.epoch_interruption = True
        if not self.cache:
            # wasmtime's own compilation cache (per user, keyed by the
            # module and the engine): a new process loads the machine code
            # instead of compiling 4 MB of Wasm again.
            cfg.cache = True
        self.engine = wasmtime.Engine(cfg)
        self.module = load_module(self.engine, Path(self.wasm)) if self.cache else \
            wasmtime.Module.from_file(self.engine, str(self.wasm))
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        self._ticker_started = False
        self._ticker_lock = threading.Lock()

    def _start_ticker(self) -> None:
        with self._ticker_lock:
            if self._ticker_started:
                return
            self._ticker_started = True

            def tick() -> None:
                while True:
                    threading.Event().wait(EPOCH_TICK_S)
                    self.engine.increment_epoch()

            threading.Thread(target=tick, daemon=True).start()

    def run(self, args: list[str], stdin: bytes | Path | None = None, *, preopens: dict[str, str] | None = None,
            memory_limit: int | None = None, timeout_s: float | None = None) -> Run:
        """Runs `resizer ARGS` once in a fresh store (as a Lambda invocation does)."""
        store = wasmtime.Store(self.engine)
        if memory_limit is not None:
            store.set_limits(memory_size=memory_limit)
        if timeout_s is not None:
            self._start_ticker()
            store.set_epoch_deadline(max(1, int(timeout_s / EPOCH_TICK_S)))
        else:
            store.set_epoch_deadline(2**62)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["resizer", *args]
        tmp = None
        if isinstance(stdin, (bytes, bytearray)):
            # wasmtime-py has no in-memory stdin; a temp file is the closest.
            fd, tmp = tempfile.mkstemp(prefix="resizer-stdin-")
            with os.fdopen(fd, "wb") as f:
                f.write(stdin)
            wasi.stdin_file = tmp
        elif stdin is not None:
            wasi.stdin_file = str(stdin)
        out: list[bytes] = []
        err: list[bytes] = []
        wasi.stdout_custom = out.append
        wasi.stderr_custom = err.append
        for host_dir, guest_dir in (preopens or {}).items():
            wasi.preopen_dir(host_dir, guest_dir)
        store.set_wasi(wasi)
        code: int | None = 0
        trap = None
        try:
            instance = self.linker.instantiate(store, self.module)
            try:
                instance.exports(store)["_start"](store)
            except wasmtime.ExitTrap as e:
                code = e.code
            except wasmtime.Trap as e:
                code, trap = None, str(e)
            except wasmtime.WasmtimeError as e:
                code, trap = None, str(e)
            mem = instance.exports(store)["memory"]
            memory_bytes = mem.data_len(store)
        finally:
            if tmp:
                os.unlink(tmp)
        return Run(code, b"".join(out), b"".join(err), trap, memory_bytes)


def load_module(engine: wasmtime.Engine, wasm: Path) -> wasmtime.Module:
    """Compiles once, then reuses the precompiled artifact (as the Lambda host
    ships a `.cwasm`), so a run measures instantiation, not Cranelift."""
    stat = wasm.stat()
    cache = Path(tempfile.gettempdir()) / f"resizer-{stat.st_size}-{int(stat.st_mtime_ns)}.cwasm"
    if cache.exists():
        try:
            return wasmtime.Module.deserialize_file(engine, str(cache))
        except wasmtime.WasmtimeError:
            pass
    module = wasmtime.Module.from_file(engine, str(wasm))
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(module.serialize())
    os.replace(tmp, cache)
    return module
