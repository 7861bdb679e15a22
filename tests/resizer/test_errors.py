"""Every failure class, each under a tight memory cap and time cap.

Bombs must be refused from the header, so the module's linear memory stays
small (checked via the memory size at exit: wasm memory never shrinks, so
that is the peak) and the run ends well inside the epoch deadline.
"""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import gradient, image_bytes
from support import budget

CAP_MEMORY = 64 << 20     # refusals must fit in 64 MiB of linear memory...
# ...and finish inside a 2 s epoch deadline (wall-clock time: scaled for a
# machine slower than a cold, loaded 2-core one). A refusal takes
# milliseconds; decoding what the header claims would take far longer.
CAP_TIME_S = budget(2.0)
# A crafted header and a run cut by a 50 ms deadline end within this.
PROMPT_S = budget(1.0)
REFUSAL_MEMORY = 16 << 20  # actual peak allowed for a refusal


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_bomb(w: int = 50_000, h: int = 50_000) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def png_decompression_bomb(side: int = 12_000) -> bytes:
    """A real, valid 12000x12000 grey PNG (144 MP) that compresses to ~150 KB."""
    row = b"\0" + b"\0" * side
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def jpeg_header_bomb() -> bytes:
    """A real small JPEG whose SOF0 claims 50000x50000."""
    data = bytearray(image_bytes(gradient(64, 64), "JPEG"))
    i = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, i + 5, 50_000, 50_000)
    return bytes(data)


def gif_header_bomb() -> bytes:
    data = bytearray(image_bytes(gradient(64, 64), "GIF"))
    struct.pack_into("<HH", data, 6, 50_000, 50_000)
    return bytes(data)


def jpeg_bytes() -> bytes:
    return image_bytes(gradient(1200, 800), "JPEG", quality=90)


def corrupt_jpeg() -> bytes:
    """Valid markers up to the Huffman tables, then the tables are garbage."""
    data = bytearray(jpeg_bytes())
    i = data.index(b"\xff\xc4")
    for k in range(i + 5, i + 40):
        data[k] = 0xFF if k % 2 else 0x00
    return bytes(data)


def corrupt_png() -> bytes:
    data = bytearray(image_bytes(gradient(800, 600), "PNG"))
    i = data.index(b"IDAT")
    data[i + 40: i + 60] = b"\x13" * 20  # breaks the CRC and the deflate stream
    return bytes(data)


def noise(w: int, h: int) -> Image.Image:
    """Incompressible pixels, so a cut lands inside the image data."""
    return Image.frombytes("RGB", (w, h), np.random.default_rng(7).integers(0, 256, w * h * 3, dtype=np.uint8).tobytes())


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


CASES = {
    # name: (input bytes factory, extra args, class, exit code)
    "text_named_jpg": (lambda: b"this is a text file, not a jpeg\n" * 10, [], "unsupported_format", 3),
    "empty": (lambda: b"", [], "unsupported_format", 3),
    "bmp": (lambda: image_bytes(gradient(64, 64), "BMP"), [], "unsupported_format", 3),
    "tiff": (lambda: image_bytes(gradient(64, 64), "TIFF"), [], "unsupported_format", 3),
    "corrupt_jpeg": (corrupt_jpeg, [], "corrupt", 4),
    "corrupt_png": (corrupt_png, [], "corrupt", 4),
    "truncated_jpeg_half": (lambda: jpeg_bytes()[: len(jpeg_bytes()) // 2], [], "corrupt", 4),
    "truncated_jpeg_header": (lambda: jpeg_bytes()[:300], [], "corrupt", 4),
    "truncated_png": (lambda: half(image_bytes(noise(800, 600), "PNG")), [], "corrupt", 4),
    "truncated_gif": (lambda: half(image_bytes(noise(800, 600), "GIF")), [], "corrupt", 4),
    "truncated_webp": (lambda: half(image_bytes(noise(800, 600), "WEBP", lossless=True)), [], "corrupt", 4),
    "png_header_50000": (png_header_bomb, [], "over_limits", 5),
    "jpeg_header_50000": (jpeg_header_bomb, [], "over_limits", 5),
    "gif_header_50000": (gif_header_bomb, [], "over_limits", 5),
    "png_decompression_bomb_144mp": (png_decompression_bomb, [], "over_limits", 5),
    "max_bytes": (jpeg_bytes, ["--max-bytes", "1000"], "over_limits", 5),
    "max_pixels": (jpeg_bytes, ["--max-pixels", "900000"], "over_limits", 5),
    "max_dimension": (jpeg_bytes, ["--max-dimension", "1000"], "over_limits", 5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_error_class(host, name):
    make, args, cls, code = CASES[name]
    data = make()
    t = time.monotonic()
    r = host.run(args, data, memory_limit=CAP_MEMORY, timeout_s=CAP_TIME_S)
    elapsed = time.monotonic() - t
    assert r.trap is None, f"trapped instead of refusing: {r.trap}"
    assert r.code == code, (r.code, r.stderr)
    assert r.error is not None and r.error["class"] == cls, r.stderr
    assert r.error["message"]
    assert r.stdout == b""
    assert elapsed < CAP_TIME_S
    if cls != "corrupt":
        # Refusals happen before any pixel buffer exists.
        assert r.memory_bytes <= REFUSAL_MEMORY, r.memory_bytes


def test_bomb_is_small_but_refused(host):
    data = png_decompression_bomb()
    assert len(data) < 300_000
    r = host.run([], data, memory_limit=CAP_MEMORY, timeout_s=CAP_TIME_S)
    assert r.error["class"] == "over_limits" and "pixels" in r.error["message"]


@pytest.mark.parametrize("cap_mib", [8, 24])
def test_host_memory_cap_contains_a_real_decode(host, photos, cap_mib):
    """The host's cap is the backstop: a 48 MP photo cannot be handled in a
    tiny memory, and the module never gets more. Failing allocations the
    module can see (reading input) become `over_limits`; those deep inside a
    decoder abort, which the host sees as a trap."""
    cap = cap_mib << 20
    r = host.run([], photos / "p48mp.jpg", memory_limit=cap, timeout_s=budget(60))
    assert r.code != 0
    assert r.trap is not None or r.error["class"] == "over_limits", (r.trap, r.stderr)
    assert r.memory_bytes <= cap


def test_host_time_cap_interrupts(host, photos):
    t = time.monotonic()
    r = host.run([], photos / "p48mp.jpg", memory_limit=1 << 30, timeout_s=0.05)
    assert r.code is None and r.trap is not None and "interrupt" in r.trap.lower(), r.trap
    assert time.monotonic() - t < PROMPT_S


def test_stdin_over_max_bytes_not_buffered(host):
    # 8 MB of junk with a 1 KB limit: refused after reading 1 KB + 1, memory stays small.
    r = host.run(["--max-bytes", "1024"], b"\xff\xd8" + b"\0" * (8 << 20), memory_limit=CAP_MEMORY, timeout_s=CAP_TIME_S)
    assert r.error["class"] == "over_limits"
    assert r.memory_bytes <= 4 << 20


# Crafted JPEG headers (issue 12): the size check and the decoder must read
# the same frame header. Each is a small real JPEG with one crafted segment;
# each ends `corrupt` or `over_limits` in milliseconds, before any pixel buffer.

def sof(code: int, w: int, h: int) -> bytes:
    return struct.pack(">BBHBHHB", 0xFF, code, 17, 8, h, w, 3) + bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])


def small_jpeg() -> bytes:
    return image_bytes(gradient(96, 64), "JPEG", quality=85)


def at_sof(data: bytes) -> int:
    return data.index(b"\xff\xc0")


def stuffed_zero_hides_frame(second_frame: bool) -> bytes:
    """`FF 00` read as a marker with a "length" used to skip the huge SOF
    behind it to the real one; the decoder reads on and decodes the huge one."""
    data = small_jpeg()
    hidden = sof(0xC0, 65500, 65500)
    stuffed = b"\xff\x00\x00" + bytes([len(hidden) + 2]) + hidden
    i = at_sof(data)
    rest = data[i:] if second_frame else data[i + 19:]
    return data[:i] + stuffed + rest


def sof_after_scan() -> bytes:
    data = small_jpeg()
    return data[:-2] + sof(0xC2, 65500, 65500) + b"\xff\xd9"


def two_frames() -> bytes:
    data = small_jpeg()
    return data[: at_sof(data)] + sof(0xC0, 60000, 60000) + data[at_sof(data):]


def dnl_height() -> bytes:
    data = bytearray(small_jpeg())
    struct.pack_into(">H", data, at_sof(data) + 5, 0)
    return bytes(data)[:-2] + b"\xff\xdc\x00\x04\xff\xff\xff\xd9"


def rst_before_scan() -> bytes:
    data = small_jpeg()
    return data[: at_sof(data)] + b"\xff\xd5" + data[at_sof(data):]


def short_app_length() -> bytes:
    data = small_jpeg()
    return data[:2] + b"\xff\xe5\x00\x01" + data[2:]


def app_past_end() -> bytes:
    data = small_jpeg()
    return data[: at_sof(data)] + b"\xff\xe1\xff\xf0Exif\0\0"


CRAFTED = {
    "stuffed_ff00_hides_second_sof": (lambda: stuffed_zero_hides_frame(True), "corrupt"),
    "stuffed_ff00_hides_only_sof": (lambda: stuffed_zero_hides_frame(False), "over_limits"),
    "sof_after_sos": (sof_after_scan, "corrupt"),
    "two_sofs": (two_frames, "corrupt"),
    "dnl_height_0": (dnl_height, "corrupt"),
    "rst_outside_scan": (rst_before_scan, "corrupt"),
    "app_length_under_2": (short_app_length, "corrupt"),
    "app_length_past_end": (app_past_end, "corrupt"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_jpeg_header(host, name):
    make, cls = CRAFTED[name]
    data = make()
    assert len(data) < 4096
    t = time.monotonic()
    r = host.run([], data, memory_limit=CAP_MEMORY, timeout_s=CAP_TIME_S)
    elapsed = time.monotonic() - t
    assert r.trap is None, r.trap
    assert r.error is not None and r.error["class"] == cls, r.stderr
    assert r.stdout == b""
    assert elapsed < PROMPT_S, elapsed
    assert r.memory_bytes <= REFUSAL_MEMORY, r.memory_bytes


# As tolerant as libjpeg where the picture is intact (resizer-wasi/README.md).

def truncated_app14(mode: str) -> bytes:
    """Like Pillow's truncated_app14.jpg: the Adobe APP14 says its length is
    11, so the rest of its fields sit between segments, where libjpeg skips them."""
    data = image_bytes(gradient(300, 200, mode), "JPEG", quality=90)
    app14 = b"\xff\xee\x00\x0bAdobe\x00\x64\x80\x00\x00\x00\x01"
    return data[:2] + app14 + data[2:]


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_truncated_app14_decodes(run, mode):
    data = truncated_app14(mode)
    r = run(data)
    assert r.code == 0, r.stderr
    m, payloads = r.framed()
    assert (m["source"]["width"], m["source"]["height"]) == (300, 200)
    # The picture libjpeg (Pillow) decodes from the same bytes.
    want = Image.open(io.BytesIO(data)).convert("RGB")
    got = Image.open(io.BytesIO(payloads[0])).convert("RGB")
    want = np.asarray(want.resize(got.size, Image.Resampling.LANCZOS), dtype=np.float64)
    mse = float(np.mean((np.asarray(got, dtype=np.float64) - want) ** 2))
    assert 10 * np.log10(255.0**2 / max(mse, 1e-9)) > 30, mse


@pytest.mark.parametrize("progressive", [False, True])
def test_missing_eoi_after_complete_scans(run, progressive):
    full = image_bytes(gradient(700, 500), "JPEG", quality=90, progressive=progressive)
    assert full.endswith(b"\xff\xd9")
    a, b = run(full), run(full[:-2])
    assert a.code == 0 and b.code == 0, b.stderr
    assert a.framed()[1] == b.framed()[1]
    # Scan data cut short stays corrupt: the picture is not intact.
    assert run(full[:-200]).error["class"] == "corrupt"
