"""JPEGs decoded and resized by torchvision (nvJPEG on a GPU; here the same code on the CPU):
the pixels of the CPU image processor within 2 uint8 levels, fallbacks note by note."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessorPil, SiglipImageProcessorPil

from notellm2_udf import Encoder
from notellm2_udf.inference.device_images import DeviceJpegDecoder
from notellm2_udf.inference.encoder import resolve_image_decode
from notellm2_udf.inference.settings import EncoderSettings
from notellm2_udf.model.pixels import ImagePixels
from tests.support.notes import image_bytes, mixed_notes, notes_frame

SIZES = [(1080, 1440), (1440, 1080), (640, 480), (300, 1200), (1200, 300), (224, 224),
         (100, 80), (224, 299), (1001, 1000), (226, 350), (3000, 200)]


def photo(width: int, height: int, seed: int) -> Image.Image:
    """Smooth gradients, hard-edged discs and sensor noise: what resampling finds hard."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.zeros((height, width, 3), np.float32)
    for channel in range(3):
        a, b, phase = rng.uniform(-1, 1, 3)
        pixels[..., channel] = 128 + 80 * np.sin(6 * (a * x / width + b * y / height + phase))
    for _ in range(6):
        cy, cx, radius = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(5, 200)
        pixels[(y - cy) ** 2 + (x - cx) ** 2 < radius ** 2] = rng.uniform(0, 255, 3)
    pixels += rng.normal(0, 12, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, **options)
    return buffer.getvalue()


def pixels_of(image_processor, size: int) -> ImagePixels:
    config = SimpleNamespace(vision_config=SimpleNamespace(image_size=size))
    return ImagePixels(image_processor, config)


def reference(pixels: ImagePixels, data: bytes) -> torch.Tensor:
    """The CPU path on a full decode (no JPEG draft): what the device path must match."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return pixels.resize(image)


@pytest.mark.parametrize("processor", [CLIPImageProcessorPil(), SiglipImageProcessorPil()],
                         ids=["clip", "siglip"])
@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"subsampling": 0}],
                         ids=["baseline-420", "progressive", "444"])
def test_device_pixels_match_the_cpu_image_processor(processor, options):
    pixels = pixels_of(processor, 224)
    decoder = DeviceJpegDecoder(pixels, torch.device("cpu"), max_image_pixels=40_000_000)
    datas = [jpeg(photo(w, h, seed), **options) for seed, (w, h) in enumerate(SIZES)]
    on_device = decoder.pixels(datas)
    assert all(p is not None and p.shape == (3, 224, 224) and p.dtype == torch.uint8
               for p in on_device)
    worst = max(int((p.int() - reference(pixels, d).int()).abs().max())
                for p, d in zip(on_device, datas))
    assert worst <= 2


def test_grey_cmyk_and_exif_turned_jpegs_match_too():
    pixels = pixels_of(CLIPImageProcessorPil(), 224)
    decoder = DeviceJpegDecoder(pixels, torch.device("cpu"), max_image_pixels=40_000_000)
    base = photo(640, 480, 7)
    exif = Image.Exif()
    exif[0x0112] = 6
    datas = [jpeg(base.convert("L")), jpeg(base.convert("CMYK")), jpeg(base, exif=exif.tobytes())]
    on_device = decoder.pixels(datas)
    turned = pixels.resize(base.transpose(Image.Transpose.ROTATE_270))
    for p, expected in zip(on_device, [reference(pixels, datas[0]), reference(pixels, datas[1]),
                                        None]):
        assert p is not None
        if expected is not None:
            assert int((p.int() - expected.int()).abs().max()) <= 2
    # Orientation 6 applied: close to the picture turned by hand (JPEG loss aside).
    assert float((on_device[2].float() - turned.float()).abs().mean()) < 3


def test_what_the_device_cannot_take_falls_back_to_the_cpu_note_by_note(tiny_processor):
    decoder = DeviceJpegDecoder(tiny_processor.pixels, torch.device("cpu"),
                                max_image_pixels=100_000)
    good = image_bytes(1, fmt="JPEG")
    truncated = good[: len(good) // 2]
    huge = jpeg(photo(400, 300, 1))  # 120000 pixels, over this decoder's cap
    datas = [good, truncated, image_bytes(2, fmt="PNG"), None, huge, good]
    on_device = decoder.pixels(datas)
    assert [p is not None for p in on_device] == [True, False, False, False, False, True]
    notes = tiny_processor.prepare_notes(
        notes_frame([{"title": "t", "image": data} for data in datas]),
        max_image_pixels=100_000, device_decoder=decoder)
    assert notes.image_ok.tolist() == [True, False, True, False, False, True]
    assert notes.image_error[1].startswith("corrupt or truncated image")
    assert notes.image_error[4] == "too many pixels: 400x300 > 100000"


def test_the_encoder_decoding_on_the_device_gives_the_same_embeddings(tiny_checkpoint):
    notes_pdf = mixed_notes()
    on_device = Encoder(tiny_checkpoint, "cpu",
                        EncoderSettings(image_decode="gpu")).encode_detailed(notes_pdf)
    on_cpu = Encoder(tiny_checkpoint, "cpu",
                     EncoderSettings(image_decode="cpu")).encode_detailed(notes_pdf)
    assert on_device.image_ok.tolist() == on_cpu.image_ok.tolist()
    rows = np.flatnonzero(on_cpu.embedded)
    cosine = (on_device.embeddings[rows] * on_cpu.embeddings[rows]).sum(axis=1)
    assert cosine.min() >= 0.999
    assert on_device.encode_s > 0 and on_device.input_wait_s >= 0


def test_the_decoding_path_is_chosen_by_the_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    def chosen(image_decode: str, device, processes: int) -> str:
        settings = EncoderSettings(image_decode=image_decode, prepare_processes=processes)
        return resolve_image_decode(settings, device)

    assert chosen("auto", cpu, 0) == "cpu"
    assert chosen("auto", cuda, 0) == "gpu"
    assert chosen("auto", cuda, 4) == "cpu"  # processes decode with Pillow
    assert chosen("gpu", cpu, 0) == "gpu"
    # Refused where the settings are made: on the driver, before any executor starts.
    with pytest.raises(ValueError, match="does not combine with --prepare-processes"):
        EncoderSettings(image_decode="gpu", prepare_processes=2)
    with pytest.raises(ValueError, match="image_decode must be one of"):
        EncoderSettings(image_decode="nvjpeg")
