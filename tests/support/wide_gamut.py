"""Wide-gamut test sources: Display P3 and Adobe RGB (1998) ICC profiles
written from their published primaries, and seeded pictures tagged with
them, plus littleCMS's (Pillow ImageCms) conversion to sRGB as the reference.

No profile file is checked in or downloaded: each is an ICC v2 matrix/TRC
profile built here (primaries and white adapted to D50 with Bradford, as
the ICC asks), and littleCMS reads it back before anything uses it.
"""

from __future__ import annotations

import io
import struct
from functools import cache

import numpy as np
from PIL import Image, ImageCms

D50 = (0.9642, 1.0, 0.8249)
D65_XY = (0.3127, 0.3290)

# name: (red xy, green xy, blue xy, transfer)
SPACES = {
    "display-p3": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), "srgb"),
    "adobe-rgb": ((0.640, 0.330), (0.210, 0.710), (0.150, 0.060), 563 / 256),
}

BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def _xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _rgb_to_xyz_d50(primaries) -> np.ndarray:
    m = np.column_stack([_xyz(p) for p in primaries])
    scale = np.linalg.solve(m, _xyz(D65_XY))
    to_xyz = m * scale
    src, dst = BRADFORD @ _xyz(D65_XY), BRADFORD @ np.array(D50)
    adapt = np.linalg.inv(BRADFORD) @ np.diag(dst / src) @ BRADFORD
    return adapt @ to_xyz


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _curve(transfer) -> bytes:
    if transfer == "srgb":
        x = np.linspace(0, 1, 1024)
        y = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
        return b"curv\0\0\0\0" + struct.pack(">I", len(y)) + b"".join(struct.pack(">H", round(v * 65535)) for v in y)
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(transfer * 256))


def _desc(text: str) -> bytes:
    ascii_ = text.encode() + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + b"\0" * 4 + b"\0" * 4 + b"\0" * 3 + b"\0" * 67


@cache
def srgb_profile() -> bytes:
    """littleCMS's built-in sRGB profile (Pillow's `ImageCms.createProfile`),
    the same bytes on every call and every run: littleCMS stamps the header
    with the moment it writes the profile (bytes 24-35, the creation date), so
    two profiles made a second apart differ; the date is set to a fixed one
    here, as the profiles built below have."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[24:36] = struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
    ImageCms.ImageCmsProfile(io.BytesIO(bytes(icc)))  # littleCMS must still accept it
    return bytes(icc)


def icc_profile(name: str) -> bytes:
    """An ICC v2 display profile for `name` (a key of SPACES)."""
    r, g, b, transfer = SPACES[name]
    m = _rgb_to_xyz_d50((r, g, b))
    trc = _curve(transfer)
    tags = [
        (b"desc", _desc(f"pixport test {name}")),
        (b"cprt", b"text\0\0\0\0public domain\0"),
        (b"wtpt", _xyz_tag(D50)),
        (b"rXYZ", _xyz_tag(m[:, 0])),
        (b"gXYZ", _xyz_tag(m[:, 1])),
        (b"bXYZ", _xyz_tag(m[:, 2])),
        (b"rTRC", trc),
        (b"gTRC", trc),
        (b"bTRC", trc),
    ]
    return _assemble(b"mntrRGB XYZ ", tags)


def _assemble(class_space_pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2 profile of `class_space_pcs` (device class, colour space,
    PCS: 12 bytes) holding `tags`, which littleCMS must read back."""
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + class_space_pcs
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24
              + struct.pack(">I", 1)  # relative colorimetric
              + b"".join(_s15(v) for v in D50) + b"\0" * 48)
    assert len(header) == 128
    profile = header + struct.pack(">I", len(tags)) + table + data
    ImageCms.ImageCmsProfile(io.BytesIO(profile))  # littleCMS must accept it
    return profile


def picture(w: int, h: int, seed: int) -> Image.Image:
    """Saturated hue sweeps over a luminance ramp plus seeded soft noise:
    most of it lies where P3 / Adobe RGB and sRGB differ."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(float)
    hue = x / w * 6.0
    sat = 0.35 + 0.65 * (y / h)
    out = np.empty((h, w, 3))
    for i, shift in enumerate((0.0, 2.0, 4.0)):
        d = np.abs(((hue - shift) % 6.0) - 3.0) - 1.0  # triangle wave in -1..2
        out[..., i] = 1 - sat * (1 - np.clip(d, 0, 1))
    out *= 0.25 + 0.75 * (1 - np.abs(y / h - 0.5))[..., None]
    noise = rng.normal(0, 0.03, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w]
    return Image.fromarray((np.clip(out + noise, 0, 1) * 255).round().astype("uint8"), "RGB")


def to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """littleCMS's conversion, relative colorimetric (the resizer's intent)."""
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    dst = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return ImageCms.profileToProfile(img, src, dst, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                     outputMode="RGB")


# sRGB's primaries adapted to D50 (ICC v4 spec, Annex F): the PCS side of
# the synthetic press below.
SRGB_TO_XYZ_D50 = np.array([[0.4360747, 0.3850649, 0.1430804],
                            [0.2225045, 0.7168786, 0.0606169],
                            [0.0139322, 0.0971045, 0.7141733]])


def _press(cmyk: np.ndarray) -> np.ndarray:
    """A made-up offset press: dot gain on every ink and impure inks that
    also absorb some of their neighbours' light, so its colours are far from
    what the naive (1 - c)(1 - k) formula gives. Returns sRGB-encoded 0..1."""
    c, m, y, k = (cmyk[..., i] ** 0.8 for i in range(4))
    r = (1 - c) * (1 - 0.12 * m) * (1 - 0.04 * y) * (1 - 0.9 * k)
    g = (1 - m) * (1 - 0.22 * c) * (1 - 0.10 * y) * (1 - 0.9 * k)
    b = (1 - y) * (1 - 0.08 * c) * (1 - 0.35 * m) * (1 - 0.9 * k)
    return np.stack([r, g, b], axis=-1)


def cmyk_profile(grid: int = 9) -> bytes:
    """An ICC v2 output (`prtr`) CMYK profile: an A2B0 lut16 from the
    `_press` model to PCS XYZ on a `grid`^4 CLUT."""
    axis = np.linspace(0.0, 1.0, grid)
    cmyk = np.stack(np.meshgrid(axis, axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 4)
    rgb = _press(cmyk)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ SRGB_TO_XYZ_D50.T
    clut = np.clip(np.round(xyz * 32768), 0, 65535).astype(">u2")  # u1Fixed15, as lut16 encodes XYZ
    identity = struct.pack(">2H", 0, 65535)
    a2b0 = (b"mft2\0\0\0\0" + bytes([4, 3, grid, 0])
            + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
            + struct.pack(">2H", 2, 2) + identity * 4 + clut.tobytes() + identity * 3)
    tags = [
        (b"desc", _desc("pixport test press CMYK")),
        (b"cprt", b"text\0\0\0\0public domain\0"),
        (b"wtpt", _xyz_tag(D50)),
        (b"A2B0", a2b0),
    ]
    return _assemble(b"prtrCMYKXYZ ", tags)


def cmyk_picture(w: int, h: int, seed: int) -> Image.Image:
    """Ink sweeps: cyan across, magenta down, yellow in bands, black in a
    corner ramp, plus seeded soft noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(float)
    c, m = x / w, y / h
    yel = (np.sin(x / w * 7) + 1) / 2
    k = np.clip((x / w + y / h - 1.2), 0, 1)
    inks = np.stack([c, m, yel, k], axis=-1)
    noise = rng.normal(0, 0.03, (h // 8 + 1, w // 8 + 1, 4)).repeat(8, 0).repeat(8, 1)[:h, :w]
    return Image.fromarray((np.clip(inks + noise, 0, 1) * 255).round().astype("uint8"), "CMYK")
