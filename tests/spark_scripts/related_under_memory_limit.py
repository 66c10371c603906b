"""spark-submit this: related notes of a corpus whose index is larger than what a Python
worker may hold (spark.executor.pyspark.memory), searched with a task index budget.

argv: mode, work dir.
  calibrate  (no memory limit) print the peak address space of a Python worker that has
             imported and run what the search imports and runs, in MiB
  run        (with the limit) write a 1024-d corpus of CORPUS notes (a 410 MB flat index in
             16 shards) + QUERIES new notes, build the index, run related_notes for the new
             notes with --task-index-mib 32 (one shard per group), then with the whole
             index per task; print both exit codes, the written lists and the brute-force
             lists computed here on the driver (which the limit does not cover)
Prints "RESULT {json}".
"""

import json
import re
import sys
from pathlib import Path

import numpy as np

DAY, BULK_DAY = "2026-11-24", "2026-11-23"
CORPUS, QUERIES, DIM, TOP_K = 100_000, 40, 1024, 10


def worker_peak_mib(batches):
    """Peak address space of this Python worker after a search through the real code and a
    Parquet read (pyarrow's thread pools and allocator arenas map ~430 MB at the first)."""
    import tempfile

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from notellm2_udf.index.params import choose_params
    from notellm2_udf.index.search import search_shards
    from notellm2_udf.index.shards import empty_index, fill_shard
    from notellm2_udf.spark.executor_resources import use_task_cpus_for_faiss

    use_task_cpus_for_faiss()
    xb = np.random.default_rng(0).standard_normal((1000, DIM), dtype="float32")
    index = fill_shard(empty_index(choose_params(n=1000, d=DIM, index_type="flat")), xb)
    search_shards([(index, 0)], xb[:QUERIES], TOP_K, exclude=np.arange(QUERIES))
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(pa.table({"note_id": [f"n{i}" for i in range(1000)]}), f"{tmp}/ids")
        pq.read_table(f"{tmp}/ids")
    for batch in batches:
        del batch
    status = Path("/proc/self/status").read_text()
    yield pd.DataFrame({"mib": [int(re.search(r"VmPeak:\s+(\d+)", status).group(1)) // 1024]})


def unit_rows(rng, n):
    x = rng.standard_normal((n, DIM), dtype="float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_corpus(spark, table: Path):
    """note_embeddings as Parquet written by pyarrow (no 410 MB through the JVM), converted
    to Delta; returns note_ids and vectors of the whole window."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    ids, vectors = [], []
    for day, prefix, n in [(BULK_DAY, "b", CORPUS), (DAY, "q", QUERIES)]:
        x = unit_rows(rng, n)
        note_ids = [f"{prefix}{i:06d}" for i in range(n)]
        part = table / f"dt={day}"
        part.mkdir(parents=True)
        pq.write_table(pa.table({
            "note_id": note_ids,
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), DIM).cast(
                pa.list_(pa.float32())),
            "visual_embedding": pa.nulls(n, pa.list_(pa.float32())),
            "model_version": ["m1"] * n, "image_ok": np.zeros(n, dtype=bool),
            "run_id": ["r1"] * n,
        }), part / "part-0.parquet", row_group_size=8192)
        ids += note_ids
        vectors.append(x)
    spark.sql(f"CONVERT TO DELTA parquet.`{table}` PARTITIONED BY (dt STRING)")
    return np.array(ids), np.vstack(vectors)


def brute_force(ids, xb):
    """note_id -> related note_ids of the new notes, itself excluded (scores of random
    1024-d vectors have no ties)."""
    queries = np.flatnonzero(np.char.startswith(ids.astype(str), "q"))
    scores = xb[queries] @ xb.T
    scores[np.arange(len(queries)), queries] = -np.inf
    order = np.argsort(-scores, axis=1)[:, :TOP_K]
    return {ids[q]: ids[row].tolist() for q, row in zip(queries, order)}


def written(spark, related: str) -> dict:
    pdf = spark.read.format("delta").load(related).where(f"dt = '{DAY}'").toPandas()
    pdf = pdf.sort_values(["note_id", "rank"])
    return {note_id: group["related_note_id"].tolist() for note_id, group in pdf.groupby("note_id")}


def main(mode: str, work: Path) -> dict:
    from jobs import build_index, related_notes
    from notellm2_udf.index.layout import read_manifest
    from notellm2_udf.spark.session import build_spark_session

    spark = build_spark_session()
    if mode == "calibrate":
        return {"worker_peak_mib": spark.range(1).mapInPandas(worker_peak_mib, "mib long")
                .first()["mib"]}
    ids, xb = write_corpus(spark, work / "emb")
    common = ["--date", DAY, "--embeddings", str(work / "emb"), "--index-dir", str(work / "index")]
    built = build_index.main([*common, "--window-days", "2", "--index-type", "flat",
                              "--num-shards", "16"])
    related = [*common, "--related", str(work / "related"), "--queries", "new",
               "--top-k", str(TOP_K), "--recall-sample", "0"]
    grouped = related_notes.main([*related, "--task-index-mib", "32"])
    grouped_lists = written(spark, str(work / "related"))
    try:
        whole = related_notes.main([*related, "--task-index-mib", "100000"])
    except Exception as err:  # the point: it fails, and is reported as such
        whole = type(err).__name__
    manifest = read_manifest(work / "index", DAY)
    return {"build": built, "grouped": grouped, "whole": whole,
            "index_mib": sum(s.bytes for s in manifest.shards) >> 20,
            "shards": len(manifest.shards),
            "lists_equal_brute_force": grouped_lists == brute_force(ids, xb),
            "lists": len(grouped_lists),
            "lists_after_failed_run_unchanged": written(spark, str(work / "related"))
            == grouped_lists}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1], Path(sys.argv[2]))), flush=True)
