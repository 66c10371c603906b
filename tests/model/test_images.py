import io
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from notellm2_udf.model.images import ImageDecodeError, decode_image
from tests.support.notes import image_bytes


def encode(image: Image.Image, fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_allowed_formats_decode_to_rgb(fmt):
    image = decode_image(image_bytes(0, size=(30, 20), fmt=fmt), max_pixels=10_000)
    assert (image.mode, image.size) == ("RGB", (30, 20))


def test_size_is_checked_from_the_header_before_decoding():
    # 3000 x 3000 of one colour: a few kB of PNG, 9 Mpx once decoded.
    data = encode(Image.new("RGB", (3000, 3000), "red"), "PNG")
    assert len(data) < 100_000
    with pytest.raises(ImageDecodeError, match="too many pixels: 3000x3000"):
        decode_image(data, max_pixels=1_000_000)


def test_pillows_own_bomb_warning_is_an_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encode(Image.new("RGB", (40, 40), "red"), "PNG")  # 1600 px: above Pillow's limit
    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        decode_image(data, max_pixels=10_000_000)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty image bytes"),
        (b"definitely not an image", "unknown format"),
        (encode(Image.new("RGB", (8, 8)), "BMP"), "unknown format"),
        (image_bytes(0, size=(64, 64), fmt="JPEG")[:300], "corrupt or truncated header"),
        (image_bytes(0, size=(64, 64), fmt="JPEG")[:3000], "corrupt or truncated image"),
        (image_bytes(0, size=(64, 64), fmt="PNG")[:200], "corrupt or truncated"),
    ],
)
def test_refused_images_raise_one_exception_class(data, reason):
    with pytest.raises(ImageDecodeError, match=reason) as caught:
        decode_image(data, max_pixels=1_000_000)
    assert reason in caught.value.reason


def test_disallowed_format_is_refused_even_if_pillow_reads_it():
    with pytest.raises(ImageDecodeError, match="unknown format"):
        decode_image(image_bytes(0, fmt="GIF"), max_pixels=10_000, allowed_formats=("JPEG", "PNG"))


def test_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    pixels = np.asarray(decode_image(encode(rgba, "PNG"), max_pixels=100))
    assert pixels[0, 0].tolist() == [255, 0, 0]
    assert pixels[1, 1].tolist() == [255, 255, 255]
    la = Image.new("LA", (2, 2), (0, 128))  # black at half alpha
    assert np.asarray(decode_image(encode(la, "PNG"), max_pixels=100))[0, 0].tolist() == [
        127, 127, 127]


def test_palette_transparency_is_composited_on_white():
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    palette.putpixel((1, 1), 1)
    data = encode(palette, "PNG", transparency=0)
    pixels = np.asarray(decode_image(data, max_pixels=100))
    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert pixels[1, 1].tolist() == [0, 255, 0]


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    pixels = np.asarray(decode_image(encode(cmyk, "JPEG", quality=95), max_pixels=100))
    assert pixels[4, 4, 0] > 200 and pixels[4, 4, 1] < 60 and pixels[4, 4, 2] < 60


def test_16_bit_grayscale_is_scaled_not_clipped():
    values = np.array([[0, 32768], [65535, 1000]], dtype=np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    pixels = np.asarray(decode_image(data, max_pixels=100))[..., 0]
    assert pixels.tolist() == [[0, 128], [255, 4]]


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    pixels = np.asarray(decode_image(buffer.getvalue(), max_pixels=100))
    assert pixels[0, 0].tolist() == [255, 0, 0]


def test_jpeg_draft_decodes_at_a_reduced_scale_that_keeps_the_target_size():
    data = image_bytes(0, size=(800, 600), fmt="JPEG")
    image = decode_image(data, max_pixels=10_000_000, draft_size=224)
    assert image.size == (400, 300)


def test_decoding_from_many_threads_keeps_every_reason_and_the_warning_filters(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    fine = encode(Image.new("RGB", (20, 20), "red"), "PNG")  # 400 px
    bomb = encode(Image.new("RGB", (40, 40), "red"), "PNG")  # 1600 px: Pillow's warning
    filters_before = list(warnings.filters)

    def outcome(data):
        try:
            return decode_image(data).size
        except ImageDecodeError as err:
            return err.reason.split(":")[0]

    inputs = [fine, bomb] * 200
    with ThreadPoolExecutor(8) as executor:
        outcomes = list(executor.map(outcome, inputs))
    assert outcomes == [(20, 20), "decompression bomb"] * 200
    assert warnings.filters == filters_before
