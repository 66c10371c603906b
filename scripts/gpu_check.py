"""GPU checks of the Encoder and the embedding UDF's batch function, without Spark.

    PYTHONPATH=.:DIR python scripts/gpu_check.py

DIR holds pyspark's Python modules (the pure-Python `pyspark-client` sdist, unpacked): the
UDF reads its task's GPU and CPUs from pyspark's TaskContext, which this script stands in
for. A tiny random checkpoint is encoded on the CPU (fp32) and through the UDF's batch
function on cuda:0 (bf16, eager and torch.compile'd, JPEGs decoded by Pillow or by nvJPEG on
the GPU); the embeddings must agree, row by row, and so must every per-note flag. JPEG
pixels decoded and resized on the GPU are compared with the CPU image processor's at 224 px
(photo-like sizes, progressive, 4:4:4, greyscale, CMYK). Exit 1 when a check fails.
"""

import sys
import tempfile
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyspark
import torch

from notellm2_udf.embedding.udf import make_encode_partition
from notellm2_udf.files.worker_cache import MODELS
from notellm2_udf.inference.encoder import Encoder
from notellm2_udf.inference.settings import EncoderSettings
from notellm2_udf.model.checkpoint import save_checkpoint
from notellm2_udf.model.compose import compose_tiny_random
from notellm2_udf.model.images import DEFAULT_MAX_PIXELS
from notellm2_udf.model.version import model_version
from notellm2_udf.registry.versions import PinnedModel
from tests.support.notes import image_bytes, mixed_notes, notes_frame

# bf16 on the GPU against fp32 on the CPU, 64-d unit vectors of a random tiny model.
MIN_COSINE = 0.99


class GpuTaskContext:
    """What the UDF asks of pyspark's TaskContext inside a GPU task with 4 CPUs."""

    def resources(self):
        return {"gpu": SimpleNamespace(addresses=["0"])}

    def cpus(self):
        return 4


def notes() -> pd.DataFrame:
    bad = notes_frame([
        {"title": "broken image", "image": image_bytes(9, size=(64, 64))[:200]},
        {"title": "", "content": None, "topics": None, "image": None},
    ])
    frame = pd.concat([mixed_notes()] * 6 + [bad], ignore_index=True)
    return frame.assign(note_id=[f"n{i}" for i in range(len(frame))])


def as_matrix(vectors: pd.Series) -> np.ndarray:
    """The UDF's array column (None where a note has no vector) as [rows, 64]."""
    return np.stack([v if v is not None else np.zeros(64, np.float32) for v in vectors])


def min_row_cosine(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> float:
    return float(np.min(np.sum(a[rows] * b[rows], axis=1)))


def check(name: str, ok: bool, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    return ok


def udf_on_gpu(checkpoint: str, frames: list[pd.DataFrame], compile: bool,
               image_decode: str) -> pd.DataFrame:
    model = PinnedModel(version=model_version(checkpoint), dir=checkpoint)
    settings = EncoderSettings(compile=compile, image_decode=image_decode)
    return pd.concat(make_encode_partition(model, settings)(iter(frames)), ignore_index=True)


def check_gpu_pixels() -> bool:
    """nvJPEG + GPU resize against the CPU image processor, uint8 levels (the GPU resize runs
    in float: a few levels apart is expected, not 2 as on the CPU kernels)."""
    from transformers import CLIPImageProcessorPil

    from notellm2_udf.inference.device_images import DeviceJpegDecoder
    from tests.inference.test_device_images import SIZES, jpeg, photo, pixels_of, reference

    pixels = pixels_of(CLIPImageProcessorPil(), 224)
    decoder = DeviceJpegDecoder(pixels, torch.device("cuda:0"), DEFAULT_MAX_PIXELS)
    datas = [jpeg(photo(w, h, seed), **options) for seed, (w, h) in enumerate(SIZES)
             for options in ({}, {"progressive": True}, {"subsampling": 0})]
    base = photo(640, 480, 99)
    datas += [jpeg(base.convert("L")), jpeg(base.convert("CMYK"))]
    on_gpu = decoder.pixels(datas)
    decoded = sum(p is not None for p in on_gpu)
    diffs = [(p.cpu().int() - reference(pixels, d).int()).abs() for p, d in zip(on_gpu, datas)
             if p is not None]
    worst = max(int(d.max()) for d in diffs)
    mean = float(np.mean([float(d.float().mean()) for d in diffs]))
    return check("gpu pixels", worst <= 8 and mean <= 0.5,
                 f"{decoded}/{len(datas)} JPEGs on the GPU (the rest fall back to Pillow), "
                 f"max |diff| {worst}, mean {mean:.3f} uint8 levels vs the CPU processor")


def main() -> int:
    pyspark.TaskContext.get = staticmethod(GpuTaskContext)
    frame = notes()
    frames = [frame.iloc[i:i + 16] for i in range(0, len(frame), 16)]
    results = []
    with tempfile.TemporaryDirectory() as checkpoint:
        save_checkpoint(*compose_tiny_random(), checkpoint)
        expected = Encoder(checkpoint, device="cpu").encode_detailed(frame)
        content = np.flatnonzero(expected.has_content)
        for compile, image_decode in ((False, "cpu"), (False, "gpu"), (True, "gpu")):
            label = f"{'compiled' if compile else 'eager'} {image_decode}-decoded"
            out = udf_on_gpu(checkpoint, frames, compile, image_decode)
            devices = sorted({key[1] for key in MODELS.keys()})
            results.append(check(f"{label} device", "cuda:0" in devices, f"encoders on {devices}"))
            embeddings = as_matrix(out["embedding"])
            cosine = min_row_cosine(embeddings, expected.embeddings, content)
            results.append(check(f"{label} embeddings", cosine >= MIN_COSINE,
                                 f"min cosine vs CPU fp32 {cosine:.5f} over {len(content)} rows"))
            image_rows = np.flatnonzero(expected.image_ok)
            visual = as_matrix(out["visual_embedding"])
            cosine = min_row_cosine(visual, expected.visual_embeddings, image_rows)
            results.append(check(f"{label} visual embeddings", cosine >= MIN_COSINE,
                                 f"min cosine {cosine:.5f} over {len(image_rows)} rows"))
            same_flags = (out["note_id"].tolist() == frame["note_id"].tolist()
                          and out["image_ok"].tolist() == expected.image_ok.tolist()
                          and out["has_content"].tolist() == expected.has_content.tolist()
                          and [None if pd.isna(e) else e for e in out["image_error"]]
                          == expected.image_error)
            results.append(check(f"{label} rows and flags", same_flags,
                                 f"{len(out)} rows, {int((~out['image_ok']).sum())} without image"))
    results.append(check_gpu_pixels())
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
