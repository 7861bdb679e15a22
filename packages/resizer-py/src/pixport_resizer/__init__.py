"""pixport's image resizer on wasmtime: the bundled `resizer.wasm` (the
module the pixport Lambda runs) behind one call, with the command line's
limits and error classes (resizer-wasi/README.md in the repository).

    from pixport_resizer import resize
    result = resize(open("photo.jpg", "rb").read(), widths=[640, 320])
    result.manifest["variants"][0]["width"], len(result.variants[0])
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Union

from .wasi import Host, Run

__all__ = ["resize", "Result", "ResizerError", "EXIT_CODES", "DEFAULT_MEMORY_LIMIT", "Host", "Run"]
__version__ = "0.1.0"

#: The module's exit code per error class.
EXIT_CODES = {"usage": 2, "unsupported_format": 3, "corrupt": 4, "over_limits": 5, "io": 6, "internal": 7}
_CLASS_BY_EXIT = {v: k for k, v in EXIT_CODES.items()}
#: The memory cap when `memory_limit` is not given (the Lambda host's).
DEFAULT_MEMORY_LIMIT = 1 << 30
_PAGE = 65536


class ResizerError(Exception):
    """A refused or failed resize. `code` is stable: the module's class
    (`usage`, `unsupported_format`, `corrupt`, `over_limits`, `io`,
    `internal`) or `timeout`; `exit_code` is the module's exit code, None
    when a host cap stopped it (memory cap trap, time cap)."""

    def __init__(self, code: str, message: str, exit_code: int | None = None, stderr: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.exit_code = exit_code
        self.stderr = stderr


@dataclass(frozen=True)
class Result:
    """The manifest (resizer-wasi/README.md) and each variant's bytes:
    `variants[i]` is the file `manifest["variants"][i]` describes."""

    manifest: dict
    variants: list[bytes]


_hosts: dict[Path, Host] = {}
_hosts_lock = threading.Lock()


def _bundled() -> Path:
    path = Path(str(resources.files(__name__).joinpath("resizer.wasm")))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: resizer.wasm is not bundled (build the package with packages/build)")
    return path


def _host(wasm: Path | None) -> Host:
    path = Path(wasm) if wasm is not None else _bundled()
    with _hosts_lock:
        host = _hosts.get(path)
        if host is None:
            host = _hosts[path] = Host(path)
        return host


def _csv(v: Union[str, Iterable]) -> str:
    return v if isinstance(v, str) else ",".join(str(x) for x in v)


def resize(data: bytes, *, widths: Iterable[int] | str | None = None, formats: Iterable[str] | str | None = None,
           quality: int | None = None, max_bytes: int | None = None, max_pixels: int | None = None,
           max_dimension: int | None = None, placeholders: bool | None = None, icc: str | None = None,
           memory_limit: int = DEFAULT_MEMORY_LIMIT, timeout: float | None = None,
           wasm: str | Path | None = None) -> Result:
    """Resizes one image (JPEG, PNG, WebP or GIF, sniffed from the bytes).

    The keyword arguments are the command line's flags (`widths` default
    1920,640,320; `formats` e.g. ["auto", "webp", "avif:640"]; `quality`
    82; the three limits; `placeholders`; `icc` "srgb" or "keep"), checked
    by the module (a bad value is `usage`). `memory_limit` caps linear
    memory in bytes (hitting it is `over_limits`); `timeout` caps the run in
    seconds (`timeout`). `wasm` runs another build of the module.
    Raises `ResizerError`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ResizerError("usage", "data must be bytes", EXIT_CODES["usage"])
    args: list[str] = []
    for flag, value in (("--widths", widths), ("--formats", formats)):
        if value is not None:
            args += [flag, _csv(value)]
    for flag, value in (("--quality", quality), ("--max-bytes", max_bytes), ("--max-pixels", max_pixels),
                        ("--max-dimension", max_dimension), ("--icc", icc)):
        if value is not None:
            args += [flag, str(value)]
    if placeholders is not None:
        args += ["--placeholders", "on" if placeholders else "off"]
    if not (isinstance(memory_limit, int) and memory_limit >= 32 * _PAGE):
        raise ResizerError("usage", "memory_limit must be a whole number of bytes, at least 2 MiB", EXIT_CODES["usage"])
    if timeout is not None and not timeout > 0:
        raise ResizerError("usage", "timeout must be a positive number of seconds", EXIT_CODES["usage"])
    run = _host(Path(wasm) if wasm is not None else None).run(args, bytes(data), memory_limit=memory_limit,
                                                               timeout_s=timeout)
    stderr = run.stderr.decode(errors="replace")
    if run.code == 0:
        return _framed(run.stdout)
    if run.code is None:
        trap = run.trap or ""
        if "interrupt" in trap.lower():
            raise ResizerError("timeout", f"time cap of {timeout} s reached", None, stderr)
        # An allocation the cap refused aborts the module (Rust prints
        # "memory allocation of N bytes failed" first), or memory is at the cap.
        if "memory allocation of" in stderr or run.memory_bytes + _PAGE > memory_limit:
            raise ResizerError("over_limits", f"memory cap of {memory_limit >> 20} MiB reached: {trap}", None, stderr)
        raise ResizerError("internal", f"module trapped: {trap}", None, stderr)
    err = run.error or {}
    code = err.get("class") or _CLASS_BY_EXIT.get(run.code, "internal")
    raise ResizerError(code, err.get("message") or f"exit code {run.code}", run.code, stderr)


def _framed(stdout: bytes) -> Result:
    """Splits stdout into the manifest and the variants; the sandbox's numbers are checked, not trusted."""
    def bad(why: str) -> ResizerError:
        return ResizerError("internal", f"module output malformed: {why}", EXIT_CODES["internal"])
    nl = stdout.find(b"\n")
    if nl < 0:
        raise bad("no manifest line")
    try:
        manifest = json.loads(stdout[:nl])
    except ValueError:
        raise bad("manifest is not JSON") from None
    payload = memoryview(stdout)[nl + 1:]
    if len(payload) != manifest.get("payload_bytes"):
        raise bad("payload length")
    variants = []
    for v in manifest.get("variants", []):
        off, n = v.get("offset"), v.get("bytes")
        if not (isinstance(off, int) and isinstance(n, int) and 0 <= off and 0 <= n and off + n <= len(payload)):
            raise bad("variant outside the payload")
        variants.append(bytes(payload[off:off + n]))
    return Result(manifest, variants)
