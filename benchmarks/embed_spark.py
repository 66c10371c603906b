"""Spark embedding job vs the Encoder called directly, same notes, same process, same run.

    python benchmarks/embed_spark.py --notes 20000 [--config small] [--repeats 1]

Writes N sample notes (one day) to a Delta table, saves a random-weight checkpoint of the
chosen size (from benchmarks/encode_gpu.py's CONFIGS; "small" is big enough that encoding,
not Spark, dominates on a CPU), then alternates: the Encoder on all notes in this process
(torch threads = cores), and the embedding job through `jobs/embed_notes.main` on local[cores]
(one torch thread per task). Prints notes/s of each and the ratio Spark/direct (median of
the repeats) as a Markdown table, and writes it as JSON beside the work directory.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DAY = "2026-11-25"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=20000)
    parser.add_argument("--config", default="small")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="embed-spark-bench-"))
    (workdir / "lakehouse").mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1

    import torch
    from encode_gpu import build
    from pyspark.sql import DataFrame

    from jobs import embed_notes
    from notellm2_udf.inference.encoder import Encoder
    from notellm2_udf.model.checkpoint import save_checkpoint
    from notellm2_udf.sample.notes import SampleSpec, generate
    from notellm2_udf.spark.delta_io import replace_days
    from notellm2_udf.spark.session import SparkSettings, build_spark_session, metastore_conf
    from schemas import NOTES

    spark = build_spark_session(SparkSettings(
        app_name="bench-embed-spark", master=f"local[{cores}]",
        overrides={**metastore_conf(workdir / "lakehouse"), "spark.ui.enabled": "false",
                   "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "6g"}))
    spark.sparkContext.setLogLevel("ERROR")
    notes_pdf, _ = generate(SampleSpec(date.fromisoformat(DAY), 1, args.notes, seed=11))
    notes_location = str(workdir / "notes")
    # In slices: the images of 20k notes are about 500 MB, too much for one createDataFrame.
    slices = [spark.createDataFrame(notes_pdf.iloc[start:start + 2000], NOTES.schema)
              for start in range(0, len(notes_pdf), 2000)]
    replace_days(functools.reduce(DataFrame.unionByName, slices).repartition(2 * cores),
                 NOTES, notes_location, DAY)
    model_dir = workdir / "model"
    save_checkpoint(*build(args.config, torch.device("cpu"), torch.float32), model_dir)

    direct_rates, spark_rates = [], []
    for repeat in range(args.repeats):
        torch.set_num_threads(cores)
        encoder = Encoder(model_dir, device="cpu")
        started = time.perf_counter()
        encoder.encode_detailed(notes_pdf)
        direct_rates.append(len(notes_pdf) / (time.perf_counter() - started))

        started = time.perf_counter()
        code = embed_notes.main([
            "--date", DAY, "--notes", notes_location, "--model", str(model_dir),
            "--embeddings", str(workdir / f"emb{repeat}"), "--errors", str(workdir / "err")])
        assert code == 0
        spark_rates.append(len(notes_pdf) / (time.perf_counter() - started))
        print(f"repeat {repeat}: direct {direct_rates[-1]:.1f} notes/s, "
              f"spark {spark_rates[-1]:.1f} notes/s", flush=True)

    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} {cores} cores",
        "notes": args.notes, "config": args.config, "repeats": args.repeats,
        "direct_notes_per_s": round(statistics.median(direct_rates), 1),
        "spark_notes_per_s": round(statistics.median(spark_rates), 1),
        "ratios": [round(s / d, 3) for s, d in zip(spark_rates, direct_rates)],
    }
    result["ratio_median"] = round(statistics.median(result["ratios"]), 3)
    print("| notes | config | direct notes/s | spark job notes/s | spark/direct |")
    print("|---|---|---|---|---|")
    print(f"| {args.notes} | {args.config} | {result['direct_notes_per_s']} | "
          f"{result['spark_notes_per_s']} | {result['ratio_median']} |")
    (workdir / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
