"""The paper's ablation on the sample data: basic, micl, late_only, basic_late, micl_late from
the same seed.

    python benchmarks/ablation.py --work /tmp/notellm2-ablation \
        [--days 3 --notes-per-day 300 --epochs 3 --batch-pairs 16 --lr 1e-3 --seed 0]

Writes sample tables (all days but the last train, the last is held out), composes a tiny
random model per variant (same seed), trains each with jobs/train.py and evaluates it with
jobs/evaluate.py (full, image-only and text-only inputs), all in one local Spark session,
then prints one Markdown table like the paper's: R@10 / R@100 for each input, and for the
image-defined and text-defined pairs (full inputs). The untrained micl_late model is the
first row, as the floor. Results and their reading: docs/TRAINING.md, docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

VARIANTS = ("basic", "micl", "late_only", "basic_late", "micl_late")
COLUMNS = (("full", None), ("image", None), ("text", None), ("text_no_image", None),
           ("full", "image_pairs"), ("full", "text_pairs"))
COLUMN_TITLES = ("image+text", "image only", "text only (zero image)",
                 "text only (no image segment)", "image-defined pairs", "text-defined pairs")
KS = (10, 100)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", required=True, type=Path, help="scratch directory")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--notes-per-day", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-pairs", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="1e-3: the tiny models start from random weights (the paper's "
                             "3e-6 fine-tunes a pre-trained 7B LLM)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from jobs import evaluate, train
    from notellm2_udf.model.checkpoint import save_checkpoint
    from notellm2_udf.model.compose import compose_tiny_random
    from notellm2_udf.sample.notes import SampleSpec
    from notellm2_udf.sample.tables import write_sample_tables
    from notellm2_udf.spark.session import SparkSettings, build_spark_session, metastore_conf

    work = args.work.resolve()
    spark = build_spark_session(SparkSettings(
        app_name="notellm2 ablation", master="local[2]",
        overrides={**metastore_conf(work / "lakehouse"), "spark.ui.enabled": "false",
                   "spark.sql.shuffle.partitions": "4"}))
    spark.sparkContext.setLogLevel("ERROR")
    spec = SampleSpec(date(2026, 11, 20), args.days, args.notes_per_day, args.seed)
    if not (work / "data" / "notes").exists():
        print(write_sample_tables(spark, spec, work / "data", register=False))
    data = ["--pairs", str(work / "data" / "related_pairs"),
            "--notes", str(work / "data" / "notes")]

    rows = {}
    for variant in VARIANTS:
        started = time.monotonic()
        init_dir = work / f"init-{variant}"
        save_checkpoint(*compose_tiny_random(variant, seed=args.seed), init_dir)
        if variant == "micl_late":
            rows["micl_late, untrained"] = run_evaluation(evaluate, data, init_dir,
                                                          work / "report-untrained")
        code = train.main([*data, "--init-model", str(init_dir), "--output",
                           str(work / f"train-{variant}"), "--epochs", str(args.epochs),
                           "--batch-pairs", str(args.batch_pairs), "--lr", str(args.lr),
                           "--seed", str(args.seed)])
        if code != 0:
            raise SystemExit(f"training {variant} failed ({code})")
        rows[variant] = run_evaluation(evaluate, data, work / f"train-{variant}" / "model",
                                       work / f"report-{variant}")
        print(f"{variant}: trained and evaluated in {time.monotonic() - started:.0f}s")
    table = ablation_table(rows)
    (work / "ablation.md").write_text(table)
    print(table)


def run_evaluation(evaluate, data: list[str], model_dir: Path, report_dir: Path) -> dict:
    code = evaluate.main([*data, "--model", str(model_dir), "--report", str(report_dir),
                          "--ks", ",".join(map(str, KS))])
    if code != 0:
        raise SystemExit(f"evaluating {model_dir} failed ({code})")
    return json.loads((report_dir / "metrics.json").read_text())


def ablation_table(rows: dict[str, dict]) -> str:
    """Rows: variant; columns: R@10 / R@100 (%) per input and per pair kind."""
    header = "| variant | " + " | ".join(f"{title} R@{k}" for title in COLUMN_TITLES for k in KS)
    lines = [header + " |", "|---|" + "---|" * len(COLUMN_TITLES) * len(KS)]
    for variant, metrics in rows.items():
        cells = []
        for inputs, subset in COLUMNS:
            recalls = metrics["subsets"][inputs][subset] if subset else metrics[inputs]
            cells += [f"{100 * recalls[f'recall@{k}']:.1f}" for k in KS]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    counts = next(iter(rows.values()))["counts"]
    return "\n".join(lines) + "\n\n" + json.dumps(counts) + "\n"


if __name__ == "__main__":
    main()
