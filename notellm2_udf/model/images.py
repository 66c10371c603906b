"""Decoding untrusted note images into upright RGB PIL images, refusing bombs and broken data."""

import io
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
_WHITE = (255, 255, 255)
_HEADER_LOCK = threading.Lock()


class ImageDecodeError(ValueError):
    """An image that was present but refused; `reason` is a short human-readable cause."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: tuple[str, ...] = DEFAULT_FORMATS,
    draft_size: int | None = None,
) -> Image.Image:
    """Decodes encoded image bytes to an upright RGB image (the first frame of an animation).

    The width x height in the header is checked against `max_pixels` before any pixel is
    decoded, and Pillow's own DecompressionBombWarning is an error. With `draft_size`, JPEGs
    are decoded at the smallest DCT scale that keeps both sides >= draft_size (up to 8x fewer
    pixels to decode; the processor resizes to the ViT's size anyway). The EXIF orientation
    is applied, so a phone photo stored sideways is seen as it was taken.
    Raises ImageDecodeError for empty, unknown or disallowed formats, bombs and corrupt data.
    Thread-safe: the encoder calls it from a pool of decoding threads.
    """
    image = _checked_open(data, max_pixels, allowed_formats)
    try:
        if draft_size is not None and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.load()
    except Image.DecompressionBombError as err:
        raise ImageDecodeError(f"decompression bomb: {err}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageDecodeError(f"corrupt or truncated image: {err}") from None
    return to_rgb(upright(image))


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; unturned when the EXIF is unreadable
    (the pixels themselves are fine, so the note keeps its image)."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # any broken EXIF: struct.error, ValueError, KeyError, ...
        return image


def checked_header(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                   allowed_formats: tuple[str, ...] = DEFAULT_FORMATS) -> tuple[str, int, int]:
    """(format, width, height) from the header alone, under the same checks as
    decode_image; raises ImageDecodeError. Nothing is decoded."""
    image = _checked_open(data, max_pixels, allowed_formats)
    return image.format, *image.size


def _checked_open(data: bytes, max_pixels: int, allowed_formats: tuple[str, ...]) -> Image.Image:
    if not data:
        raise ImageDecodeError("empty image bytes")
    image = _open_header(data, allowed_formats)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageDecodeError(f"too many pixels: {width}x{height} > {max_pixels}")
    if width == 0 or height == 0:
        raise ImageDecodeError(f"empty image: {width}x{height}")
    return image


def _open_header(data: bytes, allowed_formats: tuple[str, ...]) -> Image.Image:
    """Image.open (reads the header only), with Pillow's bomb warning as an error."""
    # catch_warnings swaps the process-wide filter list, which is not thread-safe before
    # Python 3.14, and the encoder decodes images in threads: only this header parse, where
    # Pillow warns, runs under the lock; the decoding itself (load) runs in parallel.
    with _HEADER_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data), formats=list(allowed_formats))
        except UnidentifiedImageError:
            raise ImageDecodeError(
                f"unknown format or not one of {list(allowed_formats)}") from None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
            raise ImageDecodeError(f"decompression bomb: {err}") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageDecodeError(f"corrupt or truncated header: {err}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB; transparency is composited on white, 16/32-bit is rescaled."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _to_8bit_gray(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    # Pillow's convert("L") clips 16-bit values at 255 instead of scaling them. 32-bit "I"
    # and "F" have no fixed range: those above 255 are taken as 16-bit or scaled to their peak.
    values = np.asarray(image, dtype=np.float64)
    peak = values.max(initial=0.0)
    if image.mode.startswith("I;16") or 255 < peak <= 65535:
        values = values * (255.0 / 65535.0)
    elif peak > 65535:
        values = values * (255.0 / peak)
    return Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8), mode="L")
