"""Valid JPEGs of any size, for memory tests and upload benchmarks."""

from __future__ import annotations

import io
import os

from PIL import Image


def padded_jpeg(total: int, size: tuple[int, int] = (320, 240), quality: int = 80) -> bytes:
    """A valid progressive JPEG padded to `total` bytes with comment segments
    (<= 64 KiB each) between its first and second scan, so the frame and the
    first scan header stay within the head the edge reads before deciding
    (padding before the first scan made every large upload `corrupt_image`).
    The padding is random, so no two are duplicates of each other."""
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 140, 200)).save(buf, "JPEG", quality=quality, progressive=True)
    base = buf.getvalue()
    pad = bytearray()
    need = total - len(base)
    while need > 4:
        n = min(need - 4, 65533)
        pad += b"\xff\xfe" + (n + 2).to_bytes(2, "big") + os.urandom(n)
        need -= n + 4
    first = base.index(b"\xff\xda")
    second = base.index(b"\xff\xda", first + 2)
    return base[:second] + bytes(pad) + base[second:]
