"""Fine-tune NoteLLM-2 on related pairs: contrastive mICL loss, petastorm, TorchDistributor.

    spark-submit jobs/train.py --pairs URI --notes URI --init-model DIR --output DIR \
        [--epochs 1] [--global-batch-pairs 128 | --batch-pairs B] [--sub-batch-pairs 16] \
        [--lr 3e-6] [--lr-schedule warmup_decay_log] [--text-weight 9 --vision-weight 1] \
        [--max-grad-norm 1.0] [--num-processes N] [--use-gpu] \
        [--holdout-days 1 | --held-out-from yyyy-MM-dd] [--validation-days N --eval-every 1750] \
        [--checkpoint-every N] [--resume] [--stop-at-step N] [--seed 0] [--on-executors]

Pairs before the held-out period (by default the last day of `related_pairs`) are joined with
both notes and fed to PyTorch through petastorm. One process trains in the driver; more run
through TorchDistributor (local mode: processes on the driver host; --on-executors: Spark
tasks on a cluster, one GPU each with --use-gpu). A step trains --global-batch-pairs pairs
(128, the paper's), split evenly over the processes (--batch-pairs sets the per-process count
instead); each process embeds its share --sub-batch-pairs at a time (GradCache).
--validation-days N takes the last N days before the held-out period out of training as
validation pairs: their loss is measured every --eval-every steps, the lowest is kept in
OUTPUT/best/ and becomes the final model (the authors' load_best_model_at_end). OUTPUT gets
model/ (the final checkpoint: the best one with validation, else the last weights), best/,
checkpoints/step-N/ (resumable), train_log.jsonl, training_curve.png and train_run.json.
Exit 0 on success, 2 with a one-line reason on bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from notellm2_udf.errors import JobInputError
from notellm2_udf.files.remote_files import absolute_location, is_remote, local_copy
from notellm2_udf.inputs.notes import split_duplicates
from notellm2_udf.job.runtime import JobSummary, run_job
from notellm2_udf.registry.pinning import check_model_dir
from notellm2_udf.settings.values import (
    add_held_out_arguments,
    non_negative_int_arg,
    positive_int_arg,
)
from notellm2_udf.spark.session import SparkSettings, build_spark_session
from notellm2_udf.spark.tables import read_table
from notellm2_udf.training.launch import epoch_converters, run_processes, validation_converters
from notellm2_udf.training.loop import LR_SCHEDULES, TrainPlan, TrainSettings
from notellm2_udf.training.pairs import (
    held_out_start,
    split_by_date,
    undirected_rows,
    validation_start,
)
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
    validation_days: int = 0  # 0: no validation, the last weights are the model


def parse_args(argv: Sequence[str] | None) -> TrainJobSettings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", required=True, help="related_pairs Delta table location")
    parser.add_argument("--notes", required=True, help="notes Delta table location")
    parser.add_argument("--init-model", required=True, help="NoteLLM-2 checkpoint to start from")
    parser.add_argument("--output", required=True, help="directory for the model, checkpoints, log")
    parser.add_argument("--epochs", type=positive_int_arg, default=1)
    parser.add_argument("--global-batch-pairs", type=positive_int_arg, default=128,
                        help="pairs per optimizer step over all processes (default 128, the "
                             "paper's: 8 GPUs x 16)")
    parser.add_argument("--batch-pairs", type=positive_int_arg, default=None,
                        help="pairs per process and step (overrides --global-batch-pairs)")
    parser.add_argument("--sub-batch-pairs", type=int, default=16,
                        help="GradCache: pairs per forward pass within a process's batch "
                             "(default 16; 0 = the whole batch in one pass)")
    parser.add_argument("--lr", type=float, default=3e-6, help="peak learning rate (default 3e-6)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="warmup_decay_log",
                        help="warmup_decay_log = DeepSpeed WarmupDecayLR, log warm-up (the "
                             "authors'); linear = Hugging Face linear warm-up and decay")
    parser.add_argument("--weight-decay", type=float, default=0.001)
    parser.add_argument("--no-decay-on-vectors", action="store_true",
                        help="no weight decay on biases, norms, vectors and the temperature "
                             "(default: every parameter, as the authors)")
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--max-grad-norm", type=float, default=1.0,
                        help="clip the gradient's global norm (default 1.0; 0 = off)")
    parser.add_argument("--text-weight", type=float, default=9.0,
                        help="mICL weight of the multimodal loss L_m (default 9)")
    parser.add_argument("--vision-weight", type=float, default=1.0,
                        help="mICL weight of the visual loss L_v (default 1)")
    parser.add_argument("--temperature-cap", type=float, default=None,
                        help="clamp the temperature t at this value (default: none, as the "
                             "authors; our v1 used ln 100 = 4.605)")
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
    parser.add_argument("--validation-days", type=non_negative_int_arg, default=0,
                        help="validate on the pairs of the last N days before the held-out "
                             "period, taken out of training (default 0: no validation)")
    parser.add_argument("--eval-every", type=positive_int_arg, default=1750,
                        help="steps between validations (default 1750, the authors'); the "
                             "lowest validation loss is the final model")
    args = parser.parse_args(argv)
    batch_pairs = args.batch_pairs
    if batch_pairs is None:
        if args.global_batch_pairs % args.num_processes:
            parser.error(f"--global-batch-pairs {args.global_batch_pairs} is not a multiple of "
                         f"--num-processes {args.num_processes}")
        batch_pairs = args.global_batch_pairs // args.num_processes
    if is_remote(args.output) and not args.output.startswith("file:"):
        parser.error(f"--output must be a path every training process can write (local disk "
                     f"or a shared mount), got {args.output}")
    training = TrainSettings(
        init_model_dir=absolute_location(args.init_model),
        output_dir=str(Path(args.output.removeprefix("file://")).resolve()), epochs=args.epochs,
        batch_pairs=batch_pairs, sub_batch_pairs=args.sub_batch_pairs, lr=args.lr,
        lr_schedule=args.lr_schedule, weight_decay=args.weight_decay,
        decay_all_parameters=not args.no_decay_on_vectors, max_grad_norm=args.max_grad_norm,
        text_weight=args.text_weight, vision_weight=args.vision_weight,
        temperature_cap=args.temperature_cap, eval_every=args.eval_every,
        warmup_ratio=args.warmup_ratio, seed=args.seed, checkpoint_every=args.checkpoint_every,
        stop_at_step=args.stop_at_step, use_gpu=args.use_gpu)
    return TrainJobSettings(
        pairs=args.pairs, notes=args.notes, training=training, num_processes=args.num_processes,
        on_executors=args.on_executors, resume=args.resume, cache_dir=args.cache_dir,
        holdout_days=args.holdout_days, held_out_from=args.held_out_from,
        validation_days=args.validation_days)


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
    unique_notes_df = split_duplicates(notes_df)[0]
    validation_from, validation_rows_df = None, None
    if settings.validation_days:
        validation_from = validation_start(train_pairs_df, settings.validation_days)
        train_pairs_df, validation_pairs_df = split_by_date(train_pairs_df, validation_from)
        validation_rows_df = pair_rows(validation_pairs_df, unique_notes_df, "validation",
                                       summary)
    pair_rows_df = pair_rows(train_pairs_df, unique_notes_df, "train", summary)

    global_batch = training.batch_pairs * settings.num_processes
    first_unused = validation_from or held_out_from
    steps_per_epoch = pair_rows_df.count() // global_batch
    if steps_per_epoch == 0:
        raise JobInputError(f"fewer training pairs before {first_unused} than one global "
                            f"batch ({global_batch} = --batch-pairs x --num-processes)")
    validation_batches = validation_rows_df.count() // global_batch if validation_from else 0
    if validation_from and validation_batches == 0:
        raise JobInputError(f"fewer validation pairs from {validation_from} to before "
                            f"{held_out_from} than one global batch ({global_batch}): give "
                            f"more --validation-days")
    resume_from = latest_checkpoint(output) if settings.resume else None
    plan = TrainPlan(training, steps_per_epoch=steps_per_epoch,
                     start_step=read_step(resume_from) if resume_from else 0,
                     resume_from=str(resume_from) if resume_from else None,
                     validation_batches=validation_batches)
    if plan.start_step >= plan.total_steps:
        raise JobInputError(f"{resume_from} is already at the last step ({plan.total_steps})")
    cache_url = settings.cache_dir or (output / "petastorm-cache").as_uri()
    plan.converters = epoch_converters(pair_rows_df, plan, settings.num_processes, cache_url)
    if validation_from:
        plan.validation_converters = validation_converters(
            validation_rows_df, plan, settings.num_processes, cache_url)
    output.mkdir(parents=True, exist_ok=True)
    (output / "train_run.json").write_text(json.dumps(
        {**asdict(training), "held_out_from": held_out_from,
         "validation_from": validation_from, "validation_batches": validation_batches,
         "num_processes": settings.num_processes, "steps_per_epoch": steps_per_epoch,
         "resumed_at_step": plan.start_step}, indent=1))
    result = run_processes(plan, settings.num_processes, training.use_gpu, settings.on_executors)
    summary.add("held_out_from", held_out_from)
    if validation_from:
        summary.add("validation_from", validation_from)
    summary.add("steps_per_epoch", steps_per_epoch)
    for key, value in result.items():
        summary.add(key, value)


def pair_rows(pairs_df: DataFrame, notes_df: DataFrame, purpose: str,
              summary: JobSummary) -> DataFrame:
    """The pairs as training rows (persisted on disk); the pairs dropped for a missing note
    are logged and counted in the summary as <purpose>_pairs_without_notes."""
    rows_df, dropped = undirected_rows(pairs_df, notes_df)
    log.info("%s: %d pair(s) dropped, a note missing from the notes table", purpose, dropped)
    summary.add(f"{purpose}_pairs_without_notes", dropped)
    return rows_df


if __name__ == "__main__":
    raise SystemExit(main())
