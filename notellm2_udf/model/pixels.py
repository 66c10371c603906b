"""Images -> pixels for the vision tower: resized and cropped by the checkpoint's image
processor on the host (uint8), rescaled and normalised on the model's device."""

from concurrent.futures import Executor

import torch
from PIL import Image

from notellm2_udf.model.configuration import NoteLLM2Config

# Images resized per executor task: large enough to amortise the image processor's
# per-call overhead, small enough to spread a chunk over many threads.
IMAGES_PER_TASK = 32


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

    def resize(
        self, images: list[Image.Image], executor: Executor | None = None
    ) -> torch.Tensor:
        """RGB images -> [n, 3, image_size, image_size] uint8, resized and cropped by the image
        processor but not yet rescaled or normalised (`normalize` does that).

        Why uint8: a quarter of the memory per prepared chunk and of the bytes copied to the
        GPU, and no float work on the host, whose CPUs are busy decoding. With an executor,
        groups of images are processed in its threads.
        """
        if not images:
            return torch.zeros(0, 3, self.image_size, self.image_size, dtype=torch.uint8)
        groups = [images[i:i + IMAGES_PER_TASK] for i in range(0, len(images), IMAGES_PER_TASK)]
        pixels = (executor.map if executor is not None else map)(self._resized_pixels, groups)
        return torch.cat(list(pixels))

    def _resized_pixels(self, images: list[Image.Image]) -> torch.Tensor:
        return self.image_processor(images=images, return_tensors="pt", do_rescale=False,
                                    do_normalize=False)["pixel_values"]

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
