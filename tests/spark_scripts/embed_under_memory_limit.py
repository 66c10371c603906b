"""spark-submit this (master local[1], spark.executor.pyspark.memory set): embed a day of
large PNG screenshots, then check that the Python worker's memory limit is really in force.

argv: notes location, day, model dir, output dir, screenshots. Prints "RESULT {json}".
"""

import io
import json
import sys

import numpy as np
from PIL import Image

from jobs import embed_notes
from notellm2_udf.spark.delta_io import replace_days
from notellm2_udf.spark.session import build_spark_session
from schemas import NOTES

notes_location, day, model_dir, out_dir, count = sys.argv[1:6]


def screenshot(seed: int, width: int = 2400, height: int = 3200) -> bytes:
    """A 7.7-megapixel PNG (23 MB decoded) that compresses like a UI screenshot."""
    rng = np.random.default_rng(seed)
    pixels = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None].repeat(height, 0)
    pixels = pixels.repeat(3, 2)
    pixels[::37] = rng.integers(0, 255, (len(pixels[::37]), width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


spark = build_spark_session()
rows = [(day, f"shot-{i:03d}", f"screenshot {i}", None, None, screenshot(i))
        for i in range(int(count))]
replace_days(spark.createDataFrame(rows, NOTES.schema), NOTES, notes_location, day)
# One Arrow batch, one task: every screenshot of the day reaches the same worker at once.
code = embed_notes.main(["--date", day, "--notes", notes_location, "--model", model_dir,
                         "--embeddings", f"{out_dir}/emb", "--errors", f"{out_dir}/err",
                         "--partitions", "1", "--batch-size", count])
embedded = spark.read.format("delta").load(f"{out_dir}/emb")


def allocate_past_the_limit(batches):
    """Proof that the limit binds: a worker asking for 8 GiB more is refused."""
    for batch in batches:
        try:
            hog = bytearray(8 << 30)
            refused = False
            del hog
        except MemoryError:
            refused = True
        yield batch.assign(refused=refused)


probe = spark.range(1).mapInPandas(allocate_past_the_limit, "id long, refused boolean").first()
print("RESULT " + json.dumps({
    "exit_code": code,
    "embedded": embedded.count(),
    "with_image": embedded.where("image_ok").count(),
    "limit_refused_8gib": probe["refused"],
}), flush=True)
