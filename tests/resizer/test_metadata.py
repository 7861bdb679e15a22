"""No EXIF, GPS or XMP survives; the ICC profile does (colours stay right)."""

from __future__ import annotations

import pytest
from PIL import Image

from conftest import decode, gradient, image_bytes, ok
from support.wide_gamut import srgb_profile

XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       b'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" photoshop:City="SecretTown"/>'
       b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def rich_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCamMaker"         # Make
    exif[0x0131] = "SecretSoftware"         # Software
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 31.0, 12.0)
    gps[3] = "E"
    gps[4] = (13.0, 24.0, 36.0)
    return exif.tobytes()


def srgb_icc() -> bytes:
    """One sRGB profile, byte for byte the same on every call: the outputs
    must carry exactly the bytes the source did."""
    return srgb_profile()


def assert_clean(data: bytes) -> Image.Image:
    img = decode(data)
    assert not img.getexif(), dict(img.getexif())
    assert "exif" not in img.info and "xmp" not in img.info and "XML:com.adobe.xmp" not in img.info
    for needle in (b"Exif\0", b"SecretCam", b"SecretSoftware", b"SecretTown", b"xmpmeta", b"http://ns.adobe.com/xap"):
        assert needle not in data, needle
    return img


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_gps_xmp_stripped_icc_kept(run, fmt):
    icc = srgb_icc()
    src = gradient(900, 700)
    save = {"exif": rich_exif(), "icc_profile": icc, "xmp": XMP}
    if fmt == "WEBP":
        save["lossless"] = True
    if fmt == "PNG":
        from PIL import PngImagePlugin
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        save = {"exif": save["exif"], "icc_profile": icc, "pnginfo": info}
    data = image_bytes(src, fmt, **save)
    assert b"SecretCam" in data and b"SecretTown" in data  # the source really carries it
    m, payloads = ok(run(data))
    assert m["source"]["icc"] is True
    for p in payloads:
        img = assert_clean(p)
        assert img.info.get("icc_profile") == icc


def test_png_and_webp_outputs_clean(run):
    img = gradient(900, 700, "RGBA")
    img.putalpha(128)
    data = image_bytes(img, "PNG", exif=rich_exif(), icc_profile=srgb_icc())
    for fmt in ("auto", "webp"):
        m, payloads = ok(run(data, "--format", fmt))
        for p in payloads:
            out = assert_clean(p)
            assert out.info.get("icc_profile") == srgb_icc()


def test_photo_gps_stripped(run, photos):
    # The generated photos carry camera EXIF with GPS (tests/photos); none of it reaches the outputs.
    with Image.open(photos / "p12mp.jpg") as src:
        assert src.getexif().get_ifd(0x8825), "the test photo should carry GPS"
    _, payloads = ok(run(photos / "p12mp.jpg"))
    for p in payloads:
        assert_clean(p)
