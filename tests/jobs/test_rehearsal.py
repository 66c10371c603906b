"""Operations rehearsal: nine consecutive days with a 3-day window through the commands the
daily DAG runs (each job's main(), in this process), two promotions through the train DAG's
promote step, a run killed mid-write and retried, a rollout killed and resumed, a rerun of a
published day, an empty day and a rollback.

Day by day (v0 = base, v1 promoted after day 3, v2 after day 6):
    d1-d3  v0 serves                      d4  v1 rolls out over [d2, d4] and serves
    d5     no notes: an empty day         d6  embed_notes killed between its commits, retried
    d7     v2 rolls out, killed after one day, resumed; serves    d8  published, then rerun
    rollback to v1; d9 published with v1 (the day v1 lacked is embedded first)

Wall time: 6:01 on the idle 2-core build machine (2026-11-30, nothing else running).
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import build_index, embed_notes, embed_window, publish, related_notes, validate_related
from notellm2_udf.cli.main import main as notellm2
from notellm2_udf.days import window_bounds
from notellm2_udf.embedding import day as embedding
from notellm2_udf.index.layout import read_manifest
from notellm2_udf.registry import versions as registry
from notellm2_udf.sample.notes import SampleSpec, generate_day
from notellm2_udf.spark.delta_io import replace_days, set_properties
from schemas import CLOSED_THROUGH, NOTES
from tests.support.airflow_env import DAG_FOLDER

START = date(2026, 11, 1)
DAYS = [(START + timedelta(days=i)).isoformat() for i in range(9)]
EMPTY_DAY = DAYS[4]
WINDOW = 3
TOP_K = 5
NOTES_PER_DAY = 8

sys.path.insert(0, str(DAG_FOLDER))
promote = importlib.import_module("notellm2_promote")
sys.path.remove(str(DAG_FOLDER))


class Killed(RuntimeError):
    """Stands for the process dying at this point (no cleanup runs after it)."""


def write_notes(spark, location: str) -> None:
    """Every day's notes but EMPTY_DAY's, each day closed by the producer's signal."""
    spec = SampleSpec(START, days=len(DAYS), notes_per_day=NOTES_PER_DAY, seed=5)
    for index, day in enumerate(DAYS):
        if day != EMPTY_DAY:
            notes_pdf, _ = generate_day(spec, index)
            replace_days(spark.createDataFrame(notes_pdf, NOTES.schema), NOTES, location, day)
        set_properties(spark, location, {CLOSED_THROUGH: day})


def save_model(seed: int, directory: Path) -> str:
    from notellm2_udf.model.checkpoint import save_checkpoint
    from notellm2_udf.model.compose import compose_tiny_random

    return save_checkpoint(*compose_tiny_random("micl_late", seed=seed), directory)


def train_and_promote(root: Path, day: str, seed: int, tmp: Path) -> str:
    """The train DAG's outcome: a candidate (a new tiny model stands in for training) and its
    promote step, with reports in which the candidate wins."""
    candidate = root / "candidates" / day / "model"
    version = save_model(seed, candidate)
    reports = {}
    for which, score in (("candidate", 0.5), ("current", 0.4)):
        reports[which] = tmp / f"{day}-{which}.json"
        reports[which].write_text(json.dumps({"full": {"recall@100": score}}))
    decision = promote.decide_and_promote(str(root), day, str(candidate),
                                          str(reports["candidate"]), str(reports["current"]))
    assert decision["promoted"]
    return version


class Pipeline:
    """The daily DAG's commands for one day, with the DAG's arguments."""

    def __init__(self, root: Path, tmp: Path, notes: str):
        self.root, self.notes = root, notes
        self.lake = {name: str(tmp / "lake" / name)
                     for name in ("note_embeddings", "embedding_errors", "related_notes")}
        self.index = str(tmp / "index")

    def tables(self):
        return ["--embeddings", self.lake["note_embeddings"],
                "--errors", self.lake["embedding_errors"]]

    def embed(self, day, run_id):
        assert embed_notes.main(["--date", day, "--notes", self.notes, "--models-root",
                                 str(self.root), *self.tables(), "--related",
                                 self.lake["related_notes"], "--run-id", run_id,
                                 "--empty-day", "publish", "--batch-size", "16",
                                 "--partitions", "2"]) == 0

    def embed_window(self, day, run_id):
        assert embed_window.main(["--date", day, "--window-days", str(WINDOW), "--notes",
                                  self.notes, "--models-root", str(self.root), *self.tables(),
                                  "--run-id", run_id, "--batch-size", "16",
                                  "--partitions", "2"]) == 0

    def rest(self, day, run_id):
        assert build_index.main(["--date", day, "--embeddings", self.lake["note_embeddings"],
                                 "--index-dir", self.index, "--window-days", str(WINDOW),
                                 "--notes", self.notes, "--errors",
                                 self.lake["embedding_errors"], "--models-root",
                                 str(self.root)]) == 0
        assert related_notes.main(["--date", day, "--embeddings",
                                   self.lake["note_embeddings"], "--index-dir", self.index,
                                   "--related", self.lake["related_notes"], "--top-k",
                                   str(TOP_K), "--recall-sample", "0"]) == 0
        assert validate_related.main(["--date", day, "--notes", self.notes, *self.tables(),
                                      "--related", self.lake["related_notes"], "--top-k",
                                      str(TOP_K), "--window-days", str(WINDOW),
                                      "--recall-sample", "20"]) == 0
        assert publish.main(["--date", day, *self.tables(), "--related",
                             self.lake["related_notes"], "--run-id", run_id,
                             "--models-root", str(self.root), "--keep-versions", "3"]) == 0

    def day(self, day, run_id):
        self.embed(day, run_id)
        self.embed_window(day, run_id)
        self.rest(day, run_id)

    def marker(self, day) -> Path:
        return Path(self.lake["related_notes"]) / "_published" / f"dt={day}" / "_SUCCESS"


def kill_at_write(monkeypatch, *, table: str, call: int):
    """Make the `call`-th write to `table` (a location suffix) die before it commits."""
    calls = {"n": 0}
    real = embedding.replace_days

    def dying(df, spec, location, *args, **kwargs):
        if location.endswith(table):
            calls["n"] += 1
            if calls["n"] == call:
                raise Killed(f"killed before writing {table}")
        return real(df, spec, location, *args, **kwargs)

    monkeypatch.setattr(embedding, "replace_days", dying)


def related_lists(spark, location, day) -> dict:
    rows = (spark.read.format("delta").load(location).where(F.col("dt") == day)
            .orderBy("note_id", "rank").collect())
    lists: dict = {}
    for row in rows:
        lists.setdefault(row.note_id, []).append((row.related_note_id, round(row.score, 5)))
    return lists


@pytest.mark.slow
def test_nine_days_of_operation(spark, tmp_path, monkeypatch):
    root = tmp_path / "models"
    notes = str(tmp_path / "notes")
    write_notes(spark, notes)
    versions = [save_model(0, root / "base")]
    run = Pipeline(root, tmp_path, notes)

    for day in DAYS[:3]:
        run.day(day, f"run-{day}")
    versions.append(train_and_promote(root, DAYS[2], 1, tmp_path))
    run.day(DAYS[3], f"run-{DAYS[3]}")
    assert registry.serving(root).version == versions[1]
    run.day(DAYS[4], f"run-{DAYS[4]}")                       # the empty day

    with monkeypatch.context() as patch:                      # killed between its commits
        kill_at_write(patch, table="embedding_errors", call=1)
        with pytest.raises(Killed):
            run.embed(DAYS[5], f"run-{DAYS[5]}-try1")
    run.day(DAYS[5], f"run-{DAYS[5]}-try2")
    versions.append(train_and_promote(root, DAYS[5], 2, tmp_path))

    run.embed(DAYS[6], f"run-{DAYS[6]}")
    with monkeypatch.context() as patch:                      # rollout killed on its 2nd day
        kill_at_write(patch, table="note_embeddings", call=2)
        with pytest.raises(Killed):
            run.embed_window(DAYS[6], f"run-{DAYS[6]}-try1")
    assert registry.status(root)["progress"] == "1/2 days"
    run.embed_window(DAYS[6], f"run-{DAYS[6]}-try2")
    run.rest(DAYS[6], f"run-{DAYS[6]}-try2")
    assert registry.serving(root).version == versions[2]

    run.day(DAYS[7], f"run-{DAYS[7]}")
    first_lists = related_lists(spark, run.lake["related_notes"], DAYS[7])
    run.embed(DAYS[7], f"rerun-{DAYS[7]}")
    assert not run.marker(DAYS[7]).exists()                   # withdrawn before rewriting
    run.embed_window(DAYS[7], f"rerun-{DAYS[7]}")
    run.rest(DAYS[7], f"rerun-{DAYS[7]}")
    assert related_lists(spark, run.lake["related_notes"], DAYS[7]) == first_lists

    assert notellm2(["models", "rollback", "--models-root", str(root)]) == 0
    assert registry.serving(root).version == versions[1]
    run.day(DAYS[8], f"run-{DAYS[8]}")

    expected = [versions[0]] * 3 + [versions[1]] * 3 + [versions[2]] * 2 + [versions[1]]
    check_published(spark, run, expected)
    check_windows(spark, run, notes)
    check_run_ids(spark, run, versions)
    status = registry.status(root)
    assert status["serving"]["version"] == versions[1] and status["pending"] is None
    assert status["withdrawn"] == [versions[2]]


def check_published(spark, run: Pipeline, expected: list[str]) -> None:
    """Every day published, its lists from the version that served it, one per day; the
    switch days' indexes were built on complete windows."""
    related_df = spark.read.format("delta").load(run.lake["related_notes"])
    by_day = {row.dt: row.versions for row in related_df.groupBy("dt").agg(
        F.sort_array(F.collect_set("model_version")).alias("versions")).collect()}
    for day, version in zip(DAYS, expected):
        marker = json.loads(run.marker(day).read_text())
        assert marker["model_version"] == version, day
        assert by_day[day] == [version], day
        manifest = read_manifest(run.index, day)
        assert manifest.model_version == version
        assert manifest.completeness.missing_days == (), day
    empty = json.loads(run.marker(EMPTY_DAY).read_text())
    assert (empty["embedded"], empty["day_outcome"]) == (0, "no notes")


def check_windows(spark, run: Pipeline, notes: str) -> None:
    """Queries and related notes are notes of the day's window; nothing is duplicated."""
    notes_pdf = spark.read.format("delta").load(notes).select("dt", "note_id").toPandas()
    related_df = spark.read.format("delta").load(run.lake["related_notes"])
    for day in DAYS:
        first, last = window_bounds(day=day, window_days=WINDOW)
        window = set(notes_pdf[(notes_pdf.dt >= first) & (notes_pdf.dt <= last)].note_id)
        rows = related_df.where(F.col("dt") == day).toPandas()
        assert len(rows) and set(rows.note_id) <= window and set(rows.related_note_id) <= window
        assert not rows.duplicated(["note_id", "rank"]).any()
        assert not rows.duplicated(["note_id", "related_note_id"]).any()
    embeddings = spark.read.format("delta").load(run.lake["note_embeddings"]).toPandas()
    assert not embeddings.duplicated(["dt", "note_id", "model_version"]).any()
    errors = spark.read.format("delta").load(run.lake["embedding_errors"]).toPandas()
    assert not errors.duplicated(["dt", "note_id", "model_version", "stage"]).any()


def check_run_ids(spark, run: Pipeline, versions: list[str]) -> None:
    """The retried and resumed runs: what each wrote, and what the markers name."""
    embeddings_df = spark.read.format("delta").load(run.lake["note_embeddings"])
    run_ids = {(row.dt, row.model_version): row.runs for row in embeddings_df.groupBy(
        "dt", "model_version").agg(F.collect_set("run_id").alias("runs")).collect()}
    assert run_ids[(DAYS[5], versions[1])] == [f"run-{DAYS[5]}-try2"]
    # The resumed rollout did not redo the day the killed one had finished.
    assert run_ids[(DAYS[5], versions[2])] == [f"run-{DAYS[6]}-try1"]
    assert run_ids[(DAYS[6], versions[2])] == [f"run-{DAYS[6]}-try2"]
    # v1 never embedded DAYS[7] while it served; the day after the rollback it did.
    assert run_ids[(DAYS[7], versions[1])] == [f"run-{DAYS[8]}"]
    assert json.loads(run.marker(DAYS[7]).read_text())["embedding_run_id"] == f"rerun-{DAYS[7]}"
    assert json.loads(run.marker(DAYS[5]).read_text())["embedding_run_id"] == (
        f"run-{DAYS[5]}-try2")
