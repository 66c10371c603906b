"""Notes for the embedding job: sample notes plus one of every kind of bad input, each with
what the job must make of it."""

from __future__ import annotations

import io
import zlib
from datetime import date

import numpy as np
import pandas as pd
from PIL import Image

from notellm2_udf.sample.notes import SampleSpec, generate

DAY = "2026-11-25"


def _encoded(image: Image.Image, fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def _png_claiming(side: int) -> bytes:
    """A valid PNG header that claims side x side pixels (the data is tiny)."""
    data = bytearray(_encoded(Image.new("L", (1, 1)), "PNG"))
    data[16:24] = side.to_bytes(4, "big") + side.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # IHDR's CRC
    return bytes(data)


def _animated_gif() -> bytes:
    frames = [Image.new("P", (40, 30), colour) for colour in (10, 200)]
    return _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def _bad_note(note_id, image=None, title="crafted title", content="crafted body #crafted#"):
    return {"dt": DAY, "note_id": note_id, "title": title, "content": content,
            "topics": ["crafted"] if content else None, "image": image}


# note_id -> what the job must make of it: (embedded, image_ok, error stages). Every kind is
# listed, with what it becomes, in docs/EMBEDDING.md ("Bad input").
EXPECTED = {
    "bad-corrupt-jpeg": (True, False, ["image"]),
    "bad-bomb": (True, False, ["image"]),
    "bad-over-cap": (True, False, ["image"]),
    "bad-bmp": (True, False, ["image"]),
    "bad-empty-bytes": (True, False, ["image"]),
    "bad-nothing": (False, False, ["input"]),
    "bad-no-text-corrupt-image": (False, False, ["input"]),
    "ok-cmyk": (True, True, []),
    "ok-palette-alpha": (True, True, []),
    "ok-16bit": (True, True, []),
    "ok-animated-gif": (True, True, []),
    "ok-webp": (True, True, []),
    "ok-text-only": (True, False, []),
    "dup-two": (True, True, ["duplicate"]),
    "dup-three": (True, True, ["duplicate", "duplicate"]),
    "bad-random-bytes": (True, False, ["image"]),
    "bad-html-as-image": (True, False, ["image"]),
    "bad-tiff": (True, False, ["image"]),
    "bad-truncated-png": (True, False, ["image"]),
    "bad-bitflip-png": (True, False, ["image"]),
    "bad-truncated-gif": (True, False, ["image"]),
    "bad-truncated-webp": (True, False, ["image"]),
    "bad-jpeg-markers-only": (True, False, ["image"]),
    "bad-jpeg-claims-huge": (True, False, ["image"]),
    "ok-exif-rotated": (True, True, []),
    "ok-broken-exif": (True, True, []),
    "ok-progressive-jpeg": (True, True, []),
    "ok-grayscale-jpeg": (True, True, []),
    "ok-one-pixel": (True, True, []),
    "ok-wide-strip": (True, True, []),
    "ok-la-alpha": (True, True, []),
    "ok-apng": (True, True, []),
    "ok-control-characters": (True, True, []),
    "ok-emoji-and-rtl": (True, True, []),
    "ok-megabyte-content": (True, False, []),
    "ok-thousands-of-hashtags": (True, False, []),
    "ok-topics-with-nulls": (True, False, []),
    "ok-whitespace-text-with-image": (True, True, []),
    "bad-whitespace-text-only": (False, False, ["input"]),
    "ok-special-token-text": (True, True, []),
    "bad-utf8-title": (True, True, ["text"]),
    "bad-utf8-everything-no-image": (False, False, ["input", "text"]),
}


def _exif_jpeg(image: Image.Image, exif_bytes: bytes) -> bytes:
    return _encoded(image, "JPEG", exif=exif_bytes)


def _orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def _flip_bits(data: bytes, every: int = 7) -> bytes:
    flipped = bytearray(data)
    for i in range(len(flipped) // 3, len(flipped), every):
        flipped[i] ^= 0x5A
    return bytes(flipped)


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims width x height."""
    data = bytearray(_encoded(Image.new("RGB", (16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _apng() -> bytes:
    frames = [Image.new("RGB", (30, 20), colour) for colour in ((250, 0, 0), (0, 0, 250))]
    return _encoded(frames[0], "PNG", save_all=True, append_images=frames[1:])


def crafted_notes() -> pd.DataFrame:
    rgb = Image.new("RGB", (48, 40), (200, 30, 30))
    jpeg = _encoded(rgb, "JPEG")
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 56, 3), np.uint8))
    palette = Image.new("P", (32, 32), 3)
    palette.info["transparency"] = 3
    rows = [
        _bad_note("bad-corrupt-jpeg", jpeg[: len(jpeg) // 3]),
        _bad_note("bad-bomb", _png_claiming(100_000)),
        _bad_note("bad-over-cap", _png_claiming(8_000)),
        _bad_note("bad-bmp", _encoded(rgb, "BMP")),
        _bad_note("bad-empty-bytes", b""),
        _bad_note("bad-nothing", None, title=None, content=None),
        _bad_note("bad-no-text-corrupt-image", b"\xff\xd8\xff garbage", title="", content=""),
        _bad_note("ok-cmyk", _encoded(rgb.convert("CMYK"), "JPEG")),
        _bad_note("ok-palette-alpha", _encoded(palette, "PNG")),
        _bad_note("ok-16bit", _encoded(Image.fromarray(
            np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16), "PNG")),
        _bad_note("ok-animated-gif", _animated_gif()),
        _bad_note("ok-webp", _encoded(rgb, "WEBP")),
        _bad_note("ok-text-only", None),
        # Copies differ: the kept one (with an image) must not depend on the input order.
        _bad_note("dup-two", None, title="copy without image"),
        _bad_note("dup-two", jpeg, title="copy with image"),
        _bad_note("dup-three", jpeg, title="same"),
        _bad_note("dup-three", jpeg, title="same"),
        _bad_note("dup-three", None, title="no image"),
        _bad_note("bad-random-bytes", np.random.default_rng(0).bytes(5000)),
        _bad_note("bad-html-as-image", b"<html><body>not a picture</body></html>"),
        _bad_note("bad-tiff", _encoded(rgb, "TIFF")),
        _bad_note("bad-truncated-png", _encoded(rgb, "PNG")[:60]),
        _bad_note("bad-bitflip-png", _flip_bits(_encoded(noise, "PNG"))),
        _bad_note("bad-truncated-gif", _animated_gif()[:40]),
        _bad_note("bad-truncated-webp", _encoded(noise, "WEBP")[:50]),
        _bad_note("bad-jpeg-markers-only", b"\xff\xd8\xff\xd9"),
        _bad_note("bad-jpeg-claims-huge", _jpeg_claiming(60_000, 60_000)),
        _bad_note("ok-exif-rotated", _exif_jpeg(noise, _orientation(6))),
        _bad_note("ok-broken-exif", _exif_jpeg(noise, b"Exif\x00\x00MM\x00*" + b"\xff" * 40)),
        _bad_note("ok-progressive-jpeg", _encoded(noise, "JPEG", progressive=True)),
        _bad_note("ok-grayscale-jpeg", _encoded(noise.convert("L"), "JPEG")),
        _bad_note("ok-one-pixel", _encoded(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG")),
        _bad_note("ok-wide-strip", _encoded(Image.new("RGB", (20_000, 2), (0, 90, 0)), "PNG")),
        _bad_note("ok-la-alpha", _encoded(Image.new("LA", (20, 20), (128, 100)), "PNG")),
        _bad_note("ok-apng", _apng()),
        _bad_note("ok-control-characters", jpeg, title="tab\tnul\x00bell\x07esc\x1b[31m",
                  content="line\nbreak\rcarriage\u2028sep #tag\x00#"),
        _bad_note("ok-emoji-and-rtl", jpeg, title="😀🇨🇳 \u202eevil\u202c ﷽ e\u0301",
                  content="𝕏 " * 50),
        _bad_note("ok-megabyte-content", None, content="长" * 1_000_000),
        _bad_note("ok-thousands-of-hashtags", None,
                  content=" ".join(f"#t{i}#" for i in range(5000))),
        {**_bad_note("ok-topics-with-nulls", None), "topics": [None, "a", None, "", "b" * 500]},
        _bad_note("ok-whitespace-text-with-image", jpeg, title=" \n\t ", content="\u3000 "),
        _bad_note("ok-special-token-text", jpeg, title="hello <IMG> world <IMG_EMB>",
                  content="</s><s><pad><|endoftext|><|im_start|>user #<IMG>#"),
        # Spaces only: newlines would not do, the authors' rules turn them into "。".
        {**_bad_note("bad-whitespace-text-only", None, title=" \t", content=" \u3000 "),
         "topics": [" ", "\u3000"]},
    ]
    return pd.DataFrame(rows)


# Text that is not valid UTF-8 cannot be built as a Python string: these notes are written as
# bytes and cast to strings in Spark (as a producer writing another encoding would).
INVALID_UTF8_NOTES = [
    # note_id, title bytes, content bytes, topic bytes, with an image
    ("bad-utf8-title", b"caf\xe9 latin-1", b"valid body", b"tag", True),
    ("bad-utf8-everything-no-image", b"\xff\xfe", b"\xc3\x28", b"\xe2\x82", False),
]


def invalid_utf8_notes_df(spark, day: str):
    from pyspark.sql import functions as F

    jpeg = _encoded(Image.new("RGB", (48, 40), (200, 30, 30)), "JPEG")
    rows = [(day, note_id, title, content, topic, jpeg if image else None)
            for note_id, title, content, topic, image in INVALID_UTF8_NOTES]
    return spark.createDataFrame(
        rows, "dt string, note_id string, title binary, content binary, topic binary, "
              "image binary",
    ).select("dt", "note_id", F.col("title").cast("string").alias("title"),
             F.col("content").cast("string").alias("content"),
             F.array(F.col("topic").cast("string")).alias("topics"), "image")


def day_notes() -> pd.DataFrame:
    """40 sample notes of DAY followed by the crafted ones."""
    notes_pdf, _ = generate(SampleSpec(date(2026, 11, 25), days=1, notes_per_day=40, seed=3))
    return pd.concat([notes_pdf, crafted_notes()], ignore_index=True)
