"""`EncoderSettings`: how an Encoder batches and prepares notes. Torch-free and picklable:
the job's flags make it, and it reaches every executor unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from notellm2_udf.model.images import DEFAULT_MAX_PIXELS
from notellm2_udf.settings.declared import option
from notellm2_udf.settings.values import non_negative_int_arg, positive_int_arg

# Where an Encoder decodes and resizes JPEGs.
IMAGE_DECODES = ("auto", "cpu", "gpu")
# Prepared pixels (uint8, resized) per chunk; two chunks are in flight (one encoded, one
# being prepared). 128 MiB is 891 notes at 224 px (3 x 224 x 224 bytes each), 222 at 448 px:
# the bound holds in bytes whatever the vision tower's size, and a chunk still sorts
# hundreds of notes by length.
DEFAULT_CHUNK_BYTES = 128 << 20


@dataclass(frozen=True)
class EncoderSettings:
    """Everything an Encoder needs besides its checkpoint and device.

    batch_tokens: rows x longest row per forward pass (None: the encoder's, by device).
    prepare_processes: 0 prepares in `threads` threads (None: torch's intra-op threads,
    which the caller sets to the CPUs it owns); N > 0 in N worker processes.
    missing_image: overrides the checkpoint's rule for notes without a usable image
    (evaluation protocols; the checkpoint's configuration checks the value).
    A chunk holds at most `chunk_bytes` of prepared pixels, or `chunk_rows` notes when given.
    """

    max_image_pixels: int = option(DEFAULT_MAX_PIXELS, parse=positive_int_arg,
                                   help="images with more pixels are refused before decoding")
    batch_tokens: int | None = option(
        None, parse=positive_int_arg,
        help="token budget of one forward pass (default: the encoder's, by device)")
    compile: bool = option(
        False, help="torch.compile the model on each worker: about a minute more per worker "
                    "at start, faster encoding after (see docs/BENCHMARKS.md)")
    prepare_processes: int = option(
        0, parse=non_negative_int_arg,
        help="decode images and tokenise in N worker processes per encoding task instead "
             "of threads (0: threads, one per task CPU)")
    image_decode: str = option(
        "auto", choices=IMAGE_DECODES,
        help="where JPEGs are decoded and resized: gpu (nvJPEG on the task's GPU; other "
             "formats and rejected JPEGs fall back to the CPU note by note), cpu (Pillow), "
             "auto (gpu when the task has one)")
    missing_image: str | None = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    chunk_rows: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.image_decode not in IMAGE_DECODES:
            raise ValueError(f"image_decode must be one of {IMAGE_DECODES}, "
                             f"got {self.image_decode!r}")
        if self.image_decode == "gpu" and self.prepare_processes:
            raise ValueError("--image-decode gpu decodes in the encoding process: it does not "
                             "combine with --prepare-processes")
        for name in ("max_image_pixels", "chunk_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("batch_tokens", "chunk_rows", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {getattr(self, name)}")
        if self.prepare_processes < 0:
            raise ValueError(f"prepare_processes must be >= 0, got {self.prepare_processes}")


DEFAULT_ENCODER_SETTINGS = EncoderSettings()
