"""Spark side of training and evaluation data: split pairs by date, attach both notes, and
lay out each epoch as numbered global batches. Pure DataFrame transforms."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from notellm2_udf.errors import JobInputError
from notellm2_udf.settings.declared import option
from notellm2_udf.settings.values import day_arg, positive_int_arg
from notellm2_udf.spark.persist import persist_on_disk

NOTE_FIELDS = ("note_id", "title", "content", "topics", "image")
SIDES = ("a", "b")  # a = the pair's first note (the query), b = its partner


@dataclass(frozen=True)
class HeldOutSplit:
    """The train / held-out split of related_pairs, shared by train and evaluate so that
    both agree by default."""

    holdout_days: int = option(1, parse=positive_int_arg, exclusive="held_out",
                               help="hold out the last N days of pairs")
    held_out_from: str | None = option(None, parse=day_arg, exclusive="held_out",
                                       metavar="yyyy-MM-dd",
                                       help="hold out pairs from this day on")


def first_held_out_day(pairs_df: DataFrame, holdout_days: int) -> str:
    """The earliest of the last `holdout_days` distinct `dt` values of the pairs."""
    if holdout_days < 1:
        raise ValueError(f"holdout_days must be >= 1, got {holdout_days}")
    days = [row["dt"] for row in pairs_df.select("dt").distinct().orderBy(F.desc("dt"))
            .limit(holdout_days + 1).collect()]
    if len(days) <= holdout_days:
        raise ValueError(
            f"pairs span {len(days)} day(s): holding out {holdout_days} leaves none to train on")
    return days[holdout_days - 1]


def held_out_start(pairs_df: DataFrame, split: HeldOutSplit) -> str:
    """The first held-out day: `held_out_from` if given, else the start of the last
    `holdout_days` days of pairs; JobInputError when that leaves nothing to train on."""
    if split.held_out_from:
        return split.held_out_from
    try:
        return first_held_out_day(pairs_df, split.holdout_days)
    except ValueError as err:
        raise JobInputError(str(err)) from None


def validation_start(train_pairs_df: DataFrame, validation_days: int) -> str:
    """The first validation day: the start of the last `validation_days` days of the
    training pairs; JobInputError when that leaves nothing to train on."""
    try:
        return first_held_out_day(train_pairs_df, validation_days)
    except ValueError:
        raise JobInputError(f"taking {validation_days} day(s) of training pairs for "
                            f"validation leaves none to train on") from None


def split_by_date(pairs_df: DataFrame, held_out_from: str) -> tuple[DataFrame, DataFrame]:
    """(train pairs: dt < held_out_from, held-out pairs: dt >= held_out_from)."""
    return (pairs_df.where(F.col("dt") < held_out_from),
            pairs_df.where(F.col("dt") >= held_out_from))


def undirected_pairs(pairs_df: DataFrame) -> DataFrame:
    """One row per unordered pair (the higher-scored direction), no self-pairs: A->B and B->A
    in one batch would make each note a false negative of itself."""
    low, high = F.least("note_id", "related_note_id"), F.greatest("note_id", "related_note_id")
    best = Window.partitionBy(low, high).orderBy(F.desc("score"), "note_id")
    return (pairs_df.where(F.col("note_id") != F.col("related_note_id"))
            .withColumn("_rank", F.row_number().over(best))
            .where("_rank = 1").drop("_rank"))


def with_notes(pairs_df: DataFrame, notes_df: DataFrame) -> DataFrame:
    """Pairs with both notes' fields as a_* and b_* columns (topics as a JSON string, since the
    torch loader takes no nested columns). Pairs whose notes are missing are dropped.
    `notes_df` must have one row per note_id. `pair_kind` (sample data only) is kept when
    the pairs have it."""
    extra = ["pair_kind"] if "pair_kind" in pairs_df.columns else []
    result_df = pairs_df.select("note_id", "related_note_id", "dt", *extra)
    for side, key in zip(SIDES, ("note_id", "related_note_id")):
        side_df = notes_df.select(
            *[F.col(name).alias(f"{side}_{name}") for name in NOTE_FIELDS if name != "topics"],
            F.to_json("topics").alias(f"{side}_topics"))
        result_df = result_df.join(side_df, F.col(key) == F.col(f"{side}_note_id"))
    return result_df.drop("note_id", "related_note_id")


def undirected_rows(pairs_df: DataFrame, notes_df: DataFrame) -> tuple[DataFrame, int]:
    """(with_notes of the undirected pairs, persisted on disk; how many of those pairs it
    dropped for a note missing from `notes_df`)."""
    undirected_df = undirected_pairs(pairs_df)
    rows_df = persist_on_disk(with_notes(undirected_df, notes_df))
    return rows_df, undirected_df.count() - rows_df.count()


def number_epoch(pair_rows_df: DataFrame, *, seed: int, epoch: int, batch_pairs: int,
                 processes: int) -> DataFrame:
    """Adds `position` (the pair's place in this epoch's seeded order), `step` and `rank` (the
    process that trains it); drops the last incomplete global batch.

    Global batch s holds positions [s * batch_pairs * processes, (s + 1) * ...); process r gets
    its r-th slice of batch_pairs. One process with processes x batch_pairs pairs per step
    therefore sees exactly the same global batches.
    """
    global_batch = batch_pairs * processes
    order_df = seeded_positions(pair_rows_df, seed=seed, epoch=epoch)
    total = order_df.count()
    usable = total - total % global_batch
    return (pair_rows_df.join(order_df.where(F.col("position") < usable),
                              ["a_note_id", "b_note_id"])
            .withColumn("step", (F.col("position") / global_batch).cast("long"))
            .withColumn("rank", ((F.col("position") % global_batch) / batch_pairs).cast("int")))


def seeded_positions(pair_rows_df: DataFrame, *, seed: int, epoch: int) -> DataFrame:
    """a_note_id, b_note_id, position: the pair's place in the order of a seeded hash (ties
    by ids), numbered like zipWithIndex: a range-partitioned sort in parallel, then each
    partition's offset from the sizes of the partitions before it.

    Only the ids are numbered, not the rows with images. The sorted ids are checkpointed so
    that the sizes and the rows numbered come from one and the same partitioning."""
    key = F.xxhash64(F.lit(seed), F.lit(epoch), "a_note_id", "b_note_id")
    sorted_df = (pair_rows_df.select("a_note_id", "b_note_id").withColumn("_key", key)
                 .orderBy("_key", "a_note_id", "b_note_id")
                 .select("a_note_id", "b_note_id", F.spark_partition_id().alias("_part"),
                         F.monotonically_increasing_id().alias("_id"))
                 .localCheckpoint())
    # Bounded: one row per partition of the sort (spark.sql.shuffle.partitions at most).
    sizes = dict(sorted_df.groupBy("_part").count().collect())
    offsets, start = [], 0
    for part in sorted(sizes):
        offsets += [F.lit(part), F.lit(start)]
        start += sizes[part]
    # monotonically_increasing_id: the partition index in the upper 31 bits, the row's
    # index within the partition in the lower 33.
    in_partition = F.col("_id") - F.shiftleft(F.col("_part").cast("long"), 33)
    offset = F.element_at(F.create_map(*offsets), F.col("_part")) if offsets else F.lit(0)
    return sorted_df.select("a_note_id", "b_note_id",
                            (offset + in_partition).alias("position"))
