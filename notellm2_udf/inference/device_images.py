"""JPEG decoding and resizing on the model's device (nvJPEG through torchvision on a GPU).

Why: on a GPU host the CPUs, not the model, set the pace when Pillow decodes and resizes
every photo (docs/BENCHMARKS.md). JPEGs within the pixel cap are decoded as one batch by
`torchvision.io.decode_jpeg` on the device, EXIF orientation applied, then resized and
cropped there on uint8 like the CPU image processor: a shortest-edge bicubic resize with
antialias and a centre crop at floor offsets (CLIP), or a resize to the square (SigLIP).
Anything else (PNG, GIF, WebP, a JPEG the decoder rejects) is left to the CPU path, note by
note, so no image can fail the batch. The same code runs on a CPU device (the tests).

torchvision's image decoders are deprecated from 0.29 in favour of TorchCodec: only
`_decode_batch` touches them.
"""

from __future__ import annotations

import torch

from notellm2_udf.model.images import ImageDecodeError, checked_header
from notellm2_udf.model.pixels import MAX_ASPECT_RATIO, ImagePixels

JPEG_MAGIC = b"\xff\xd8\xff"


def device_decoding_available() -> bool:
    try:
        import torchvision.io  # noqa: F401
    except ImportError:
        return False
    return True


class DeviceJpegDecoder:
    """`pixels(datas)`: per note, resized uint8 pixels [3, S, S] on the device, or None where
    the CPU path must take the note (not a JPEG, over the cap, rejected by the decoder)."""

    def __init__(self, pixels: ImagePixels, device: torch.device, max_image_pixels: int):
        self.size = pixels.image_size
        self.crops_to_square = pixels.crops_to_square
        self.device = device
        self.max_image_pixels = max_image_pixels

    def pixels(self, datas: list) -> list[torch.Tensor | None]:
        rows = [row for row, data in enumerate(datas) if self._is_decodable_jpeg(data)]
        decoded = self._decode_batch([datas[row] for row in rows])
        result: list[torch.Tensor | None] = [None] * len(datas)
        for row, image in zip(rows, decoded):
            if image is not None:
                result[row] = self.resize(image)
        return result

    def _is_decodable_jpeg(self, data) -> bool:
        if data is None or isinstance(data, float) or bytes(data[:3]) != JPEG_MAGIC:
            return False
        try:
            checked_header(bytes(data), max_pixels=self.max_image_pixels)
        except ImageDecodeError:
            return False  # the CPU path gives the note its reason
        return True

    def _decode_batch(self, datas: list[bytes]) -> list[torch.Tensor | None]:
        """[3, H, W] uint8 on the device per JPEG; None for one the decoder rejects."""
        if not datas:
            return []
        from torchvision.io import ImageReadMode, decode_jpeg

        tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
        options = {"mode": ImageReadMode.RGB, "device": self.device,
                   "apply_exif_orientation": True}
        try:
            return list(decode_jpeg(tensors, **options))
        except RuntimeError:
            pass  # one bad JPEG fails the whole call: decode them one by one
        decoded = []
        for tensor in tensors:
            try:
                decoded.append(decode_jpeg(tensor, **options))
            except RuntimeError:
                decoded.append(None)
        return decoded

    def resize(self, image: torch.Tensor) -> torch.Tensor:
        """[3, H, W] uint8 -> [3, S, S] uint8, as the CPU image processor does it."""
        from torchvision.transforms.v2 import functional as F

        size = self.size
        if not self.crops_to_square:
            return F.resize(image, [size, size], interpolation=F.InterpolationMode.BICUBIC,
                            antialias=True)
        image = central_part(image, MAX_ASPECT_RATIO)
        resized = F.resize(image, [size], interpolation=F.InterpolationMode.BICUBIC,
                           antialias=True)
        # torchvision's center_crop rounds half offsets to even; the image processor floors.
        height, width = resized.shape[-2:]
        top, left = (height - size) // 2, (width - size) // 2
        return resized[:, top:top + size, left:left + size]


def central_part(image: torch.Tensor, max_ratio: float) -> torch.Tensor:
    """pixels.central_part for a [C, H, W] tensor: the same box, so both paths agree."""
    height, width = image.shape[-2:]
    short, long = min(width, height), max(width, height)
    if long <= max_ratio * short:
        return image
    keep = int(max_ratio * short)
    start = (long - keep) // 2
    if width > height:
        return image[:, :, start:start + keep]
    return image[:, start:start + keep, :]
