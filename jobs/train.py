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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pyspark.sql import SparkSession

from notellm2_udf.errors import JobInputError
from notellm2_udf.pipeline.model_dir import check_model_dir
from notellm2_udf.pipeline.notes import split_duplicates
from notellm2_udf.spark.job_args import add_held_out_arguments, positive_int_arg
from notellm2_udf.spark.job_runtime import JobSummary, run_job
from notellm2_udf.spark.remote_files import absolute_location, is_remote, local_copy
from notellm2_udf.spark.session import SparkSettings, build_spark_session
from notellm2_udf.spark.tables import read_table
from notellm2_udf.training.launch import epoch_converters, run_processes
from notellm2_udf.training.loop import TrainPlan, TrainSettings
from notellm2_udf.training.pairs import held_out_start, split_by_date, undirected_pairs, with_notes
from notellm2_udf.training.state import latest_checkpoint, read_step
from schemas import NOTES, RELATED_PAIRS

log = logging.getLogger("notellm2.train")


@dataclass(frozen=True)
class TrainJobSettings:
    """One run of the job: the tables, the split, the processes and the training recipe."""

    pairs: str
    notes: str
    training: TrainSettings
    num_processes: int = 1
    on_executors: bool = False
    resume: bool = False
    cache_dir: str | None = None
    holdout_days: int = 1
    held_out_from: str | None = None


def parse_args(argv: Sequence[str] | None) -> TrainJobSettings:
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
    add_held_out_arguments(parser)
    args = parser.parse_args(argv)
    if is_remote(args.output) and not args.output.startswith("file:"):
        parser.error(f"--output must be a path every training process can write (local disk "
                     f"or a shared mount), got {args.output}")
    training = TrainSettings(
        init_model_dir=absolute_location(args.init_model),
        output_dir=str(Path(args.output.removeprefix("file://")).resolve()), epochs=args.epochs,
        batch_pairs=args.batch_pairs, lr=args.lr, weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio, seed=args.seed, checkpoint_every=args.checkpoint_every,
        stop_at_step=args.stop_at_step, use_gpu=args.use_gpu)
    return TrainJobSettings(
        pairs=args.pairs, notes=args.notes, training=training, num_processes=args.num_processes,
        on_executors=args.on_executors, resume=args.resume, cache_dir=args.cache_dir,
        holdout_days=args.holdout_days, held_out_from=args.held_out_from)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)

    def body(summary: JobSummary) -> None:
        spark = build_spark_session(SparkSettings(app_name="train notellm2"))
        run(spark, settings, summary)

    return run_job("train", body)


def run(spark: SparkSession, settings: TrainJobSettings, summary: JobSummary) -> None:
    """Train on the pairs before the held-out period; facts of the run go to `summary`."""
    training = settings.training
    output = Path(training.output_dir)
    if is_remote(training.init_model_dir):
        # Copied once under OUTPUT, which every training process (executors too) can read.
        training = replace(training, init_model_dir=str(local_copy(
            training.init_model_dir, cache_dir=output / "init-model-cache")))
    check_model_dir(training.init_model_dir)
    pairs_df = read_table(spark, settings.pairs, RELATED_PAIRS)
    notes_df = read_table(spark, settings.notes, NOTES)
    held_out_from = held_out_start(pairs_df, held_out_from=settings.held_out_from,
                                   holdout_days=settings.holdout_days)
    train_pairs_df, _ = split_by_date(pairs_df, held_out_from)
    pair_rows_df = with_notes(undirected_pairs(train_pairs_df),
                              split_duplicates(notes_df)[0]).cache()

    global_batch = training.batch_pairs * settings.num_processes
    steps_per_epoch = pair_rows_df.count() // global_batch
    if steps_per_epoch == 0:
        raise JobInputError(f"fewer training pairs before {held_out_from} than one global batch "
                            f"({global_batch} = --batch-pairs x --num-processes)")
    resume_from = latest_checkpoint(output) if settings.resume else None
    plan = TrainPlan(training, steps_per_epoch=steps_per_epoch,
                     start_step=read_step(resume_from) if resume_from else 0,
                     resume_from=str(resume_from) if resume_from else None)
    if plan.start_step >= plan.total_steps:
        raise JobInputError(f"{resume_from} is already at the last step ({plan.total_steps})")
    plan.converters = epoch_converters(
        pair_rows_df, plan, settings.num_processes,
        settings.cache_dir or (output / "petastorm-cache").as_uri())
    output.mkdir(parents=True, exist_ok=True)
    (output / "train_run.json").write_text(json.dumps(
        {**asdict(training), "held_out_from": held_out_from,
         "num_processes": settings.num_processes, "steps_per_epoch": steps_per_epoch,
         "resumed_at_step": plan.start_step}, indent=1))
    result = run_processes(plan, settings.num_processes, training.use_gpu, settings.on_executors)
    summary.add("held_out_from", held_out_from)
    summary.add("steps_per_epoch", steps_per_epoch)
    for key, value in result.items():
        summary.add(key, value)


if __name__ == "__main__":
    raise SystemExit(main())
