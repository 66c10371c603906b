"""Fine-tune NoteLLM-2 on related pairs: contrastive mICL loss, petastorm, TorchDistributor.

    spark-submit jobs/train.py --pairs URI --notes URI --init-model DIR --output DIR \
        [--epochs 1] [--global-batch-pairs 128 | --batch-pairs B] [--sub-batch-pairs 16] \
        [--lr 3e-6] [--lr-schedule warmup_decay_log] [--warmup-ratio 0.1] \
        [--weight-decay 0.001] [--no-decay-on-vectors] [--text-weight 9 --vision-weight 1] \
        [--temperature-cap T] [--max-grad-norm 1.0] [--num-processes N] [--use-gpu] \
        [--holdout-days 1 | --held-out-from yyyy-MM-dd] [--validation-days N --eval-every 1750] \
        [--checkpoint-every N] [--resume] [--stop-at-step N] [--seed 0] [--on-executors] \
        [--cache-dir URL]

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

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from notellm2_udf.errors import JobInputError
from notellm2_udf.files.remote_files import absolute_location, is_remote, local_copy
from notellm2_udf.inputs.notes import split_duplicates
from notellm2_udf.job.runtime import JobSummary, job_main
from notellm2_udf.registry.pinning import check_model_dir
from notellm2_udf.settings.declared import nested, option
from notellm2_udf.settings.shared import table_setting
from notellm2_udf.settings.values import non_negative_int_arg, positive_int_arg
from notellm2_udf.spark.tables import read_table
from notellm2_udf.training.launch import epoch_converters, run_processes, validation_converters
from notellm2_udf.training.pairs import (
    HeldOutSplit,
    held_out_start,
    split_by_date,
    undirected_rows,
    validation_start,
)
from notellm2_udf.training.plan import TrainPlan
from notellm2_udf.training.settings import TrainSettings
from notellm2_udf.training.state import latest_checkpoint, read_step
from schemas import NOTES, RELATED_PAIRS

log = logging.getLogger("notellm2.train")


@dataclass(frozen=True)
class TrainJobSettings:
    """One run of the job: the tables, the split, the processes and the training recipe."""

    pairs: str = table_setting("related_pairs")
    notes: str = table_setting("notes")
    training: TrainSettings = nested(TrainSettings)
    global_batch_pairs: int = option(128, parse=positive_int_arg,
                                     help="pairs per optimizer step over all processes (the "
                                          "paper's: 8 GPUs x 16)")
    batch_pairs: int | None = option(None, parse=positive_int_arg,
                                     help="pairs per process and step (overrides "
                                          "--global-batch-pairs)")
    num_processes: int = option(1, parse=positive_int_arg, help="training processes")
    on_executors: bool = option(False, help="run the processes as Spark tasks (cluster) "
                                            "instead of locally")
    resume: bool = option(False, help="continue from the last checkpoint in --output")
    cache_dir: str | None = option(None, help="petastorm cache URL readable by every process "
                                              "(default file://OUTPUT/petastorm-cache)")
    split: HeldOutSplit = HeldOutSplit()
    validation_days: int = option(0, parse=non_negative_int_arg,
                                  help="validate on the pairs of the last N days before the "
                                       "held-out period, taken out of training (0: no "
                                       "validation, the last weights are the model)")

    def __post_init__(self) -> None:
        if self.batch_pairs is None and self.global_batch_pairs % self.num_processes:
            raise ValueError(f"--global-batch-pairs {self.global_batch_pairs} is not a "
                             f"multiple of --num-processes {self.num_processes}")
        output = self.training.output_dir
        if is_remote(output) and not output.startswith("file:"):
            raise ValueError(f"--output must be a path every training process can write "
                             f"(local disk or a shared mount), got {output}")

    def resolved_training(self) -> TrainSettings:
        """The recipe as every process runs it: absolute locations, the per-process batch."""
        training = self.training
        return replace(
            training, init_model_dir=absolute_location(training.init_model_dir),
            output_dir=str(Path(training.output_dir.removeprefix("file://")).resolve()),
            batch_pairs=self.batch_pairs or self.global_batch_pairs // self.num_processes)


def main(argv: Sequence[str] | None = None) -> int:
    return job_main("train", TrainJobSettings, run, argv, __doc__)


def run(spark: SparkSession, settings: TrainJobSettings, summary: JobSummary) -> None:
    """Train on the pairs before the held-out period; facts of the run go to `summary`."""
    training = settings.resolved_training()
    output = Path(training.output_dir)
    if is_remote(training.init_model_dir):
        # Copied once under OUTPUT, which every training process (executors too) can read.
        training = replace(training, init_model_dir=str(local_copy(
            training.init_model_dir, cache_dir=output / "init-model-cache")))
    check_model_dir(training.init_model_dir)
    pairs_df = read_table(spark, settings.pairs, RELATED_PAIRS)
    notes_df = read_table(spark, settings.notes, NOTES)
    held_out_from = held_out_start(pairs_df, settings.split)
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
