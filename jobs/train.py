"""Fine-tune NoteLLM-2 on related pairs: contrastive mICL loss, petastorm, TorchDistributor.

    spark-submit jobs/train.py --pairs URI --notes URI --init-model DIR --output DIR \
        [--epochs 1] [--batch-pairs 16] [--lr 3e-6] [--num-processes N] [--use-gpu] \
        [--holdout-days 1 | --held-out-from yyyy-MM-dd] [--checkpoint-every N] [--resume] \
        [--stop-at-step N] [--seed 0] [--on-executors]

Pairs before the held-out period (by default the last day of `related_pairs`) are joined with
both notes and fed to PyTorch through petastorm. One process trains in the driver; more run
through TorchDistributor (local mode: processes on the driver host; --on-executors: Spark
tasks on a cluster, one GPU each with --use-gpu). --batch-pairs is per process. OUTPUT gets
model/ (the final checkpoint), checkpoints/step-N/ (resumable), train_log.jsonl,
training_curve.png and train_run.json. Exit 0 on success, 2 with a one-line reason on bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.embed_notes import check_model_dir, split_duplicates
from notellm2_udf.job_runtime import (
    JobInputError,
    JobSummary,
    day_arg,
    positive_int_arg,
    require_columns,
    run_job,
)
from notellm2_udf.spark_session import SparkSettings, build_spark_session
from notellm2_udf.training.data import make_rank_converters
from notellm2_udf.training.loop import TrainPlan, TrainSettings, train_process
from notellm2_udf.training.pairs import (
    first_held_out_day,
    number_epoch,
    split_by_date,
    undirected_pairs,
    with_notes,
)
from notellm2_udf.training.state import latest_checkpoint, read_step
from schemas import NOTES, RELATED_PAIRS, TableSpec

log = logging.getLogger("notellm2.train")


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The train / held-out split, shared with jobs/evaluate.py so both agree by default."""
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--holdout-days", type=positive_int_arg, default=1,
                       help="hold out the last N days of pairs (default 1)")
    split.add_argument("--held-out-from", type=day_arg, metavar="yyyy-MM-dd",
                       help="hold out pairs from this day on")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", required=True, help="related_pairs Delta table location")
    parser.add_argument("--notes", required=True, help="notes Delta table location")
    parser.add_argument("--init-model", required=True, help="NoteLLM-2 checkpoint to start from")
    parser.add_argument("--output", required=True, help="directory for the model, checkpoints, log")
    parser.add_argument("--epochs", type=positive_int_arg, default=1)
    parser.add_argument("--batch-pairs", type=positive_int_arg, default=16,
                        help="pairs per process and step (default 16, the paper's per-GPU batch)")
    parser.add_argument("--lr", type=float, default=3e-6, help="peak learning rate (default 3e-6)")
    parser.add_argument("--weight-decay", type=float, default=0.001)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--num-processes", type=positive_int_arg, default=1)
    parser.add_argument("--use-gpu", action="store_true", help="one GPU per process, bf16 autocast")
    parser.add_argument("--on-executors", action="store_true",
                        help="run the processes as Spark tasks (cluster) instead of locally")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="save a resumable checkpoint every N steps (default: at the end only)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in --output")
    parser.add_argument("--stop-at-step", type=positive_int_arg, default=None,
                        help="stop after this global step (checkpointed); continue with --resume")
    parser.add_argument("--seed", type=int, default=0, help="data order, image flips, dropout")
    parser.add_argument("--cache-dir", default=None,
                        help="petastorm cache URL readable by every process "
                             "(default file://OUTPUT/petastorm-cache)")
    add_split_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_job("train", lambda summary: train(args, summary))


def train(args: argparse.Namespace, summary: JobSummary) -> None:
    check_model_dir(args.init_model)
    output = Path(args.output).resolve()
    spark = build_spark_session(SparkSettings(app_name="train notellm2"))
    pairs_df = read_table(spark, args.pairs, RELATED_PAIRS, "related_pairs")
    notes_df = read_table(spark, args.notes, NOTES, "notes")
    held_out_from = held_out_start(pairs_df, args)
    train_pairs_df, _ = split_by_date(pairs_df, held_out_from)
    pair_rows_df = with_notes(undirected_pairs(train_pairs_df),
                              split_duplicates(notes_df)[0]).cache()

    settings = TrainSettings(
        init_model_dir=str(Path(args.init_model).resolve()), output_dir=str(output),
        epochs=args.epochs, batch_pairs=args.batch_pairs, lr=args.lr,
        weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, seed=args.seed,
        checkpoint_every=args.checkpoint_every, stop_at_step=args.stop_at_step,
        use_gpu=args.use_gpu)
    global_batch = args.batch_pairs * args.num_processes
    steps_per_epoch = pair_rows_df.count() // global_batch
    if steps_per_epoch == 0:
        raise JobInputError(f"fewer training pairs before {held_out_from} than one global batch "
                            f"({global_batch} = --batch-pairs x --num-processes)")
    resume_from = latest_checkpoint(output) if args.resume else None
    plan = TrainPlan(settings, steps_per_epoch=steps_per_epoch,
                     start_step=read_step(resume_from) if resume_from else 0,
                     resume_from=str(resume_from) if resume_from else None)
    if plan.start_step >= plan.total_steps:
        raise JobInputError(f"{resume_from} is already at the last step ({plan.total_steps})")
    plan.converters = epoch_converters(pair_rows_df, plan, args.num_processes,
                                       args.cache_dir or (output / "petastorm-cache").as_uri())
    output.mkdir(parents=True, exist_ok=True)
    (output / "train_run.json").write_text(json.dumps(
        {**asdict(settings), "held_out_from": held_out_from, "num_processes": args.num_processes,
         "steps_per_epoch": steps_per_epoch, "resumed_at_step": plan.start_step}, indent=1))
    result = run_processes(plan, args.num_processes, args.use_gpu, args.on_executors)
    summary.add("held_out_from", held_out_from)
    summary.add("steps_per_epoch", steps_per_epoch)
    for key, value in result.items():
        summary.add(key, value)


def read_table(spark: SparkSession, location: str, spec: TableSpec, what: str) -> DataFrame:
    try:
        table_df = spark.read.format("delta").load(location)
    except Exception as err:  # AnalysisException: not a Delta table, path missing
        raise JobInputError(f"cannot read {what} table {location}: "
                            f"{str(err).strip().splitlines()[0]}") from None
    require_columns(table_df, spec, f"{what} table {location}")
    return table_df


def held_out_start(pairs_df: DataFrame, args: argparse.Namespace) -> str:
    if args.held_out_from:
        return args.held_out_from
    try:
        return first_held_out_day(pairs_df, args.holdout_days)
    except ValueError as err:
        raise JobInputError(str(err)) from None


def epoch_converters(pair_rows_df: DataFrame, plan: TrainPlan, processes: int,
                     cache_dir_url: str) -> list[list]:
    """Per epoch from the start epoch, one petastorm dataset per process; a resumed epoch
    starts at the first pair not yet trained on."""
    settings = plan.settings
    converters = []
    for epoch in range(plan.start_epoch, settings.epochs):
        numbered_df = number_epoch(pair_rows_df, seed=settings.seed, epoch=epoch,
                                   batch_pairs=settings.batch_pairs, processes=processes)
        if epoch == plan.start_epoch:
            numbered_df = numbered_df.where(
                F.col("step") >= plan.start_step - epoch * plan.steps_per_epoch)
        converters.append(make_rank_converters(numbered_df, processes, cache_dir_url))
    return converters


def run_processes(plan: TrainPlan, processes: int, use_gpu: bool, on_executors: bool) -> dict:
    """One process runs in the driver; several go through TorchDistributor."""
    if processes == 1 and not on_executors:
        return train_process(plan)
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(num_processes=processes, local_mode=not on_executors,
                                   use_gpu=use_gpu)
    return distributor.run(train_process, plan)


if __name__ == "__main__":
    raise SystemExit(main())
