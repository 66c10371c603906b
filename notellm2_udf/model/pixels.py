"""Images -> pixels for the vision tower: resized and cropped by the checkpoint's image
processor on the host (uint8), rescaled and normalised on the model's device."""

import torch
from PIL import Image

from notellm2_udf.model.configuration import NoteLLM2Config

# A shortest-edge resize of a 100000 x 10 image would materialise 224 x 2240000 pixels
# before the centre crop; the crop keeps only the middle square, so the original is first
# cut to at most this ratio around its centre (the square and the resampling margin
# around it stay whole).
MAX_ASPECT_RATIO = 2.0


class ImagePixels:
    """The image processor of a checkpoint, split into host-side resizing and device-side
    normalisation."""

    def __init__(self, image_processor, config: NoteLLM2Config):
        self.image_processor = image_processor
        self.config = config

    @property
    def image_size(self) -> int:
        size = self.config.vision_config.image_size
        return size if isinstance(size, int) else max(size)

    @property
    def crops_to_square(self) -> bool:
        """True for resize-shortest-edge-then-centre-crop processors (CLIP); False for those
        that squash the whole image to a fixed size (SigLIP)."""
        return "shortest_edge" in (self.image_processor.size or {})

    def resize(self, image: Image.Image) -> torch.Tensor:
        """An RGB image -> [3, image_size, image_size] uint8, resized and cropped by the image
        processor but not yet rescaled or normalised (`normalize` does that).

        Why uint8: a quarter of the memory per prepared chunk and of the bytes copied to the
        GPU, and no float work on the host, whose CPUs are busy decoding. One image per call:
        the caller resizes each image right after decoding it, so a chunk never holds its
        decoded originals (measured: no slower per image than batches of 32).
        """
        if self.crops_to_square:
            image = central_part(image, MAX_ASPECT_RATIO)
        return self.image_processor(images=[image], return_tensors="pt", do_rescale=False,
                                    do_normalize=False)["pixel_values"][0]

    def empty(self) -> torch.Tensor:
        """[0, 3, image_size, image_size] uint8: the pixels of a chunk without images."""
        return torch.zeros(0, 3, self.image_size, self.image_size, dtype=torch.uint8)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Resized pixels -> float32 pixel_values for the vision tower, on the tensor's device.

        The same arithmetic as the image processor's own rescale and normalise (rescale in
        float64, then float32 (x - mean) / std), so the values are identical to its output.
        """
        image_processor = self.image_processor
        values = pixels.to(torch.float64)
        if image_processor.do_rescale:
            values = values * image_processor.rescale_factor
        values = values.to(torch.float32)
        if image_processor.do_normalize:
            def channels(stats) -> torch.Tensor:
                return torch.tensor(stats, dtype=torch.float32, device=values.device).view(-1, 1, 1)

            values = (values - channels(image_processor.image_mean)) / channels(
                image_processor.image_std)
        return values


def central_part(image: Image.Image, max_ratio: float) -> Image.Image:
    """The middle of `image`, its long side cut to at most max_ratio x its short side."""
    width, height = image.size
    short, long = min(width, height), max(width, height)
    if long <= max_ratio * short:
        return image
    keep = int(max_ratio * short)
    start = (long - keep) // 2
    box = (start, 0, start + keep, height) if width > height else (0, start, width, start + keep)
    return image.crop(box)
