"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/), seeded.

The images are the test photos (tests/photos, $PIXPORT_PHOTOS) shrunk to a
few dozen pixels and written in every format and variant the resizer
decodes (baseline and progressive JPEG with EXIF orientation, PNG grey,
RGB, RGBA, palette and 16-bit, WebP lossy and lossless, GIF), plus the first
KiB of each full-size photo (real EXIF-laden headers). The edge's seeds
wrap them in multipart bodies with fields; the AWS seeds are response
bodies as S3 and the Data API send them. Every file stays under 16 KiB.

    python fuzz/seeds.py [--photos DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
OUT = HERE / "seeds"
SEED = 20261130
MAX_SEED_BYTES = 16 * 1024


def photos_dir() -> Path:
    if os.environ.get("PIXPORT_PHOTOS"):
        return Path(os.environ["PIXPORT_PHOTOS"])
    cache = os.environ.get("PIXPORT_CACHE") or str(Path.home() / ".cache" / "pixport")
    return Path(cache) / "photos"


def exif_orientation(o: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = o
    return ex.tobytes()


def images(photos: Path, rng: random.Random) -> dict[str, bytes]:
    src = Image.open(photos / "retina.jpg").convert("RGB")
    png_src = Image.open(photos / "astronaut.png").convert("RGB")
    out: dict[str, bytes] = {}

    def save(name: str, im: Image.Image, fmt: str, **kw) -> None:
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        out[name] = b.getvalue()

    small = src.resize((rng.randint(20, 48), rng.randint(16, 40)))
    save("baseline.jpg", small, "JPEG", quality=70)
    save("progressive.jpg", small, "JPEG", quality=70, progressive=True)
    save("grey.jpg", small.convert("L"), "JPEG", quality=70)
    save("sub444.jpg", small, "JPEG", quality=70, subsampling=0)
    for o in (3, 6, 8):
        save(f"orient{o}.jpg", small, "JPEG", quality=60, exif=exif_orientation(o))
    tiny = png_src.resize((rng.randint(12, 32), rng.randint(12, 32)))
    save("rgb.png", tiny, "PNG")
    save("grey.png", tiny.convert("L"), "PNG")
    rgba = tiny.convert("RGBA")
    rgba.putalpha(128)
    save("rgba.png", rgba, "PNG")
    save("palette.png", tiny.convert("P"), "PNG")
    save("deep.png", tiny.convert("I;16"), "PNG")
    save("interlaced.png", tiny, "PNG", interlace=1)
    save("orient6.png", tiny, "PNG", exif=exif_orientation(6))
    save("lossy.webp", tiny, "WEBP", quality=50)
    save("lossless.webp", tiny, "WEBP", lossless=True)
    save("alpha.webp", rgba, "WEBP", quality=50)
    save("orient8.webp", tiny, "WEBP", quality=50, exif=exif_orientation(8))
    save("still.gif", tiny.convert("P"), "GIF")
    frames = [tiny.convert("P"), tiny.rotate(90).convert("P")]
    b = io.BytesIO()
    frames[0].save(b, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out["anim.gif"] = b.getvalue()
    # A file big enough for the edge's multipart S3 path (threshold 8 KiB).
    save("large.jpg", src.resize((120, 90)), "JPEG", quality=90)
    return out


def heads(photos: Path) -> dict[str, bytes]:
    return {f"head-{p.stem}.bin": p.read_bytes()[:1024] for p in sorted(photos.glob("*.jpg"))}


def part(name: str, value: bytes, file_name: str | None = None, ctype: str = "image/jpeg") -> bytes:
    disp = f'form-data; name="{name}"'
    head = f"Content-Disposition: {disp}\r\n\r\n"
    if file_name is not None:
        head = (
            f'Content-Disposition: {disp}; filename="{file_name}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        )
    return b"--XyZ\r\n" + head.encode() + value + b"\r\n"


def forms(imgs: dict[str, bytes], rng: random.Random) -> dict[str, bytes]:
    """Multipart bodies with the two bytes `pixport_edge::fuzz::upload_body`
    reads first: chunk size, then the failing fake (255 = none)."""
    end = b"--XyZ--\r\n"
    fields = (
        part("title", "Sunset über Québec".encode())
        + part("description", b"line one\nline two")
        + part("tags", b"sea, sky,,sea")
        + part("camera", b"X100V")
    )
    out = {}
    for i, (name, data) in enumerate(sorted(imgs.items())):
        body = fields + part("file", data, f"dir/{name}") + end
        out[f"form-{name}"] = bytes([rng.randrange(256), 255]) + body
    out["form-html-named-jpg"] = bytes([3, 255]) + part("file", b"<html>hi</html>", "x.jpg") + end
    out["form-fields-only"] = bytes([7, 255]) + fields + end
    out["form-two-files"] = (
        bytes([9, 255])
        + part("file", imgs["baseline.jpg"], "a.jpg")
        + part("file", imgs["rgb.png"], "b.png", "image/png")
        + end
    )
    out["form-bad-field-name"] = (
        bytes([1, 255]) + part("bad name!", b"x") + part("file", imgs["rgb.png"], "b.png") + end
    )
    for fault in range(7):
        out[f"form-fault-{fault}"] = bytes([20, fault]) + part("file", imgs["large.jpg"], "big.jpg") + end
    return out


def dataapi() -> dict[str, bytes]:
    meta = [
        {"name": n, "label": n, "typeName": t}
        for n, t in (("id", "VARCHAR"), ("n", "BIGINT"), ("x", "DOUBLE"), ("b", "BIT"), ("blob", "BLOB"))
    ]
    records = {
        "columnMetadata": meta,
        "records": [
            [
                {"stringValue": "01J"},
                {"longValue": 42},
                {"doubleValue": 1.5},
                {"booleanValue": True},
                {"blobValue": "AAEC"},
            ],
            [{"stringValue": "02K"}, {"isNull": True}, {"isNull": True}, {"isNull": True}, {"isNull": True}],
        ],
        "numberOfRecordsUpdated": 0,
    }
    image_cols = (
        "id owner status title description tags extra file_name content_type format bytes "
        "width height checksum_sha256 original_key variants failure_reason created_at updated_at"
    ).split()
    image_row = {
        "id": "01J",
        "owner": "alice",
        "status": "ready",
        "title": "t",
        "description": None,
        "tags": '["sea"]',
        "extra": '{"camera":"X"}',
        "file_name": "a.jpg",
        "content_type": "image/jpeg",
        "format": "jpeg",
        "bytes": 1234,
        "width": 40,
        "height": 30,
        "checksum_sha256": "abc=",
        "original_key": "originals/01J",
        "variants": '[{"width":320,"height":240,"key":"variants/01J/320.jpg","bytes":100}]',
        "failure_reason": None,
        "created_at": "2026-11-30 12:00:00",
        "updated_at": "2026-11-30 12:00:00",
    }

    def field(v):
        if v is None:
            return {"isNull": True}
        if isinstance(v, int):
            return {"longValue": v}
        return {"stringValue": v}

    images = {
        "columnMetadata": [{"name": c, "label": c} for c in image_cols],
        "records": [[field(image_row[c]) for c in image_cols]],
    }
    bodies = {
        "records.json": (0, records),
        "images.json": (0, images),
        "formatted.json": (0, {"formattedRecords": json.dumps([{"id": "01J", "n": 1, "rest": {"a": [1]}}])}),
        "update.json": (0, {"numberOfRecordsUpdated": 1, "generatedFields": [{"longValue": 7}]}),
        "batch.json": (0, {"updateResults": [{"generatedFields": [{"longValue": 1}]}, {}]}),
        "begin.json": (0, {"transactionId": "tx-1"}),
        "commit.json": (0, {"transactionStatus": "Transaction Committed"}),
        "arrays.json": (0, {"records": [[{"arrayValue": {"longValues": [1, 2], "arrayValues": [{"stringValues": ["a"]}]}}]]}),
        "error-400.json": (1, {"message": "Database error code: 1062. Duplicate entry", "code": "BadRequestException"}),
        "error-503.json": (4, {"__type": "DatabaseResumingException", "message": "resuming"}),
        "error-403.json": (2, {"Message": "forbidden", "Code": "AccessDeniedException"}),
    }
    return {n: bytes([s]) + json.dumps(b).encode() for n, (s, b) in bodies.items()}


def s3() -> dict[str, bytes]:
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    docs = {
        "list-url.xml": (
            0,
            f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult {ns}><Name>b</Name>'
            "<Prefix>dir%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
            "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
            "<NextContinuationToken>tok==</NextContinuationToken>"
            "<Contents><Key>dir/%C3%BCn%C3%AF+c%C3%B6d%C3%A9%2Bplus+%2525.jpg</Key>"
            "<LastModified>2026-11-30T12:00:00.000Z</LastModified><ETag>&quot;abc&quot;</ETag>"
            "<Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>"
            "<Contents><Key>originals/01J</Key><Size>0</Size></Contents>"
            "<CommonPrefixes><Prefix>dir/sub%2F</Prefix></CommonPrefixes></ListBucketResult>",
        ),
        "list-plain.xml": (
            0,
            f"<ListBucketResult {ns}><Name>b</Name><IsTruncated>false</IsTruncated>"
            "<Contents><Key>a &amp; b.jpg</Key><Size>3</Size></Contents></ListBucketResult>",
        ),
        "create-mpu.xml": (
            0,
            f"<InitiateMultipartUploadResult {ns}><Bucket>b</Bucket><Key>originals/01J</Key>"
            "<UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>",
        ),
        "complete-mpu.xml": (
            0,
            f"<CompleteMultipartUploadResult {ns}><Location>http://b/k</Location><Bucket>b</Bucket>"
            "<Key>originals/01J</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
            "<ChecksumSHA256>abc=</ChecksumSHA256></CompleteMultipartUploadResult>",
        ),
        "complete-error-200.xml": (
            0,
            "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>"
            "<RequestId>R</RequestId><HostId>H</HostId></Error>",
        ),
        "error-404.xml": (5, "<Error><Code>NoSuchKey</Code><Message>none</Message><Key>k</Key></Error>"),
        "error-403.xml": (4, "<Error><Code>SignatureDoesNotMatch</Code><Message>sig</Message></Error>"),
        "error-503.xml": (7, "<Error><Code>SlowDown</Code><Message>slow</Message></Error>"),
        "proxy-502.html": (6, "<html><body>Bad gateway</body></html>"),
        "empty-204": (1, ""),
        "etag-200": (0, '"d41d8cd98f00b204e9800998ecf8427e"\n'),
    }
    out = {}
    for name, (status, body) in docs.items():
        etag = 1 if name.startswith("etag") else 0
        out[name] = bytes([status, etag]) + body.encode()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=photos_dir())
    args = ap.parse_args()
    rng = random.Random(SEED)
    imgs = images(args.photos, rng)
    decodable = dict(imgs)
    corpora = {
        "head_probe": {**imgs, **heads(args.photos)},
        "resizer_decode": decodable,
        "edge_upload": forms(imgs, rng),
        "dataapi_response": dataapi(),
        "s3_xml": s3(),
    }
    shutil.rmtree(OUT, ignore_errors=True)
    total = 0
    for target, files in corpora.items():
        d = OUT / target
        d.mkdir(parents=True)
        for name, data in sorted(files.items()):
            assert len(data) <= MAX_SEED_BYTES, f"{target}/{name} is {len(data)} bytes"
            (d / name).write_bytes(data)
            total += len(data)
        digest = hashlib.sha256(b"".join(files[n] for n in sorted(files))).hexdigest()[:12]
        print(f"{target}: {len(files)} seeds, sha256 {digest}")
    print(f"{total} bytes in {OUT}")


if __name__ == "__main__":
    main()
