"""Embed the days of a window that a model version lacks, in one Spark application: the
rollout of a promoted model, and the gaps of the serving one.

    spark-submit jobs/embed_window.py --date 2026-11-25 --window-days 30 --notes URI \
        (--model DIR | --models-root DIR) --embeddings URI --errors URI [--max-days N] \
        [--run-id ID] [--batch-size N] [--batch-bytes N] [--max-image-pixels N] \
        [--batch-tokens N] [--partitions N] [--compile] [--prepare-processes N] \
        [--image-decode auto|cpu|gpu]

Window: the `--window-days` days ending at `--date`. With `--model DIR`, that checkpoint
(pinned once, on the driver) embeds every day of the window that has notes and none of its
rows. With `--models-root DIR`, the registry's serving version does the same, then the
pending version (the promoted checkpoint, adopted on first sight into
`<models_root>/versions/<model_version>/`) embeds every day that has notes it has not
accounted for: this is the rollout, and once it covers the window, build_index indexes the
pending version and publish makes it serve (docs/OPERATIONS.md).

Days are embedded oldest first, each in its own commits (embed_day: version-keyed
replaceWhere), so a killed run resumes where it stopped: the next run redoes only the days
still incomplete. The model stays loaded in the Python workers from day to day. Progress is
logged per day and kept in the registry (`notellm2 models status`). `--max-days N` bounds the
days one run embeds per version (a long window then rolls out over several runs).
Days that were embedded but gained notes later (late notes) are redone for the pending
version only: a published day is rerun as a whole (docs/OPERATIONS.md, "Rerun a day").
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from pyspark.sql import SparkSession

from notellm2_udf.days import window_bounds
from notellm2_udf.embedding.day import EmbedTarget, embed_day
from notellm2_udf.embedding.options import EncodeOptions
from notellm2_udf.embedding.window_days import DayAccount, account_days
from notellm2_udf.errors import JobInputError
from notellm2_udf.inputs.notes import notes_in_window, read_notes_day
from notellm2_udf.job.runtime import JobSummary, job_main
from notellm2_udf.registry.pinning import check_model_dir, pin_model
from notellm2_udf.registry.versions import (
    PinnedModel,
    RegistryError,
    record_progress,
    resolve_pending,
)
from notellm2_udf.settings.declared import option
from notellm2_udf.settings.shared import (
    day_setting,
    model_dir_setting,
    models_root_setting,
    run_id_setting,
    table_setting,
    window_days_setting,
)
from notellm2_udf.settings.values import positive_int_arg
from notellm2_udf.spark.delta_io import ensure_table, register_table
from notellm2_udf.spark.persist import persist_on_disk
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS

log = logging.getLogger("notellm2.embed_window")


@dataclass(frozen=True)
class EmbedWindowSettings:
    """One run of the job: the window, the tables, the model(s), how to batch."""

    REQUIRED_GROUPS: ClassVar[tuple[str, ...]] = ("model",)

    date: str = day_setting("last day of the window")
    notes: str = table_setting("notes")
    embeddings: str = table_setting("note_embeddings")
    errors: str = table_setting("embedding_errors")
    window_days: int = window_days_setting()
    model: str | None = model_dir_setting()
    models_root: str | None = models_root_setting()
    max_days: int | None = option(None, parse=positive_int_arg,
                                  help="days embedded per version in this run at most "
                                       "(default: all)")
    run_id: str = run_id_setting()
    encode: EncodeOptions = EncodeOptions()


def main(argv: Sequence[str] | None = None) -> int:
    return job_main("embed_window", EmbedWindowSettings, run, argv, __doc__)


def plan(settings: EmbedWindowSettings, first_day: str) -> list[tuple[PinnedModel, bool]]:
    """(model, is_rollout) to bring up to date, serving before pending."""
    if settings.model:
        return [(pin_model(model_dir=settings.model, models_root=None, day=first_day), False)]
    serving = pin_model(model_dir=None, models_root=settings.models_root, day=settings.date)
    try:
        pending = resolve_pending(settings.models_root)
    except RegistryError as err:
        raise JobInputError(f"models registry {settings.models_root}: {err}") from None
    if pending is None:
        return [(serving, False)]
    check_model_dir(pending.dir)
    return [(serving, False), (pending, True)]


def to_do(accounts: dict[str, DayAccount], rollout: bool) -> list[str]:
    """Days to embed, oldest first: missing ones; for a rollout also those with late notes."""
    return [day for day, account in accounts.items()
            if account.missing or (rollout and account.unaccounted)]


def run(spark: SparkSession, settings: EmbedWindowSettings, summary: JobSummary) -> None:
    """Embed what each planned version lacks of the window; progress to the log and registry."""
    first, last = window_bounds(day=settings.date, window_days=settings.window_days)
    partitions = settings.encode.configure(spark)
    for spec, location in ((NOTE_EMBEDDINGS, settings.embeddings),
                           (EMBEDDING_ERRORS, settings.errors)):
        ensure_table(spark, spec, location)
    notes_df = persist_on_disk(notes_in_window(spark, settings.notes, first, last))
    target = EmbedTarget(settings.embeddings, settings.errors, settings.run_id)
    summary.add("window", f"[{first}, {last}]")
    try:
        for model, rollout in plan(settings, first):
            accounts = account_days(
                notes_df, spark.read.format("delta").load(settings.embeddings),
                spark.read.format("delta").load(settings.errors), model.version, first, last)
            days = to_do(accounts, rollout)
            chosen = days[:settings.max_days] if settings.max_days else days
            done = [day for day in accounts if day not in days]
            log.info("model %s%s: %d of %d days with notes to embed, %d in this run",
                     model.version, " (rollout)" if rollout else "", len(days), len(accounts),
                     len(chosen))
            for number, day in enumerate(chosen, start=1):
                if rollout:
                    record_progress(settings.models_root, model.version, list(accounts), done)
                embed_day(read_notes_day(spark, settings.notes, day), day,
                          model, settings.encode.encoder, target, partitions)
                done.append(day)
                log.info("model %s: embedded %s (%d/%d of this run)", model.version, day,
                         number, len(chosen))
            if rollout:
                record_progress(settings.models_root, model.version, list(accounts), done)
            role = "pending" if rollout else "serving" if settings.models_root else "model"
            summary.add(f"{role}_version", model.version)
            summary.add(f"{role}_embedded_days", chosen)
            summary.add(f"{role}_days_left", len(days) - len(chosen))
    finally:
        notes_df.unpersist()
    register_table(spark, NOTE_EMBEDDINGS, settings.embeddings)
    register_table(spark, EMBEDDING_ERRORS, settings.errors)


if __name__ == "__main__":
    sys.exit(main())
