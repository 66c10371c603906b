"""build_index and related_notes end to end, in-process (main(argv) on the test session)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from jobs import related_notes
from notellm2_udf.index.layout import read_manifest
from notellm2_udf.index.manifest import Completeness
from notellm2_udf.spark.session import session_conf
from tests.support.index_runs import DAY, assert_same_related, build, ids, relate
from tests.support.vectors import (
    clustered_vectors,
    embeddings_pdf,
    exact_related,
    read_related,
    write_embeddings,
)


def test_sharded_exact_related_notes_equal_brute_force(spark, index_paths):
    xb = clustered_vectors(600, seed=1)
    xb[10:14] = xb[3]  # exact ties, ordered by related_note_id
    note_ids = ids(600)
    write_embeddings(spark, index_paths[0], embeddings_pdf(note_ids, xb, dt=DAY))
    expected = exact_related(note_ids, xb, 20)

    for shards in ("3", "1"):
        assert build(index_paths, "--index-type", "flat", "--num-shards", shards) == 0
        assert relate(index_paths, "--top-k", "20") == 0
        assert_same_related(read_related(spark, index_paths[2], DAY), expected)
    assert [other for other, _ in expected["n00003"][:4]] == ["n00010", "n00011", "n00012",
                                                             "n00013"]
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{index_paths[2]}`").first()
    assert detail["properties"]["delta.dataSkippingNumIndexedCols"] == "2"
    rows = spark.table("notellm2.related_notes").where(f"dt = '{DAY}'")
    assert rows.count() == 600 * 20
    assert {r.model_version for r in rows.select("model_version").distinct().collect()} == {"m1"}


def test_ivf_recall_and_manifest(spark, index_paths, capsys):
    xb = clustered_vectors(3000, seed=2)
    note_ids = ids(3000)
    write_embeddings(spark, index_paths[0], embeddings_pdf(note_ids, xb, dt=DAY))
    assert build(index_paths, "--index-type", "ivf", "--num-shards", "2") == 0
    assert relate(index_paths, "--recall-sample", "100") == 0
    summary = capsys.readouterr().out
    assert "index=IVF76,Flat" in summary and "shards=2" in summary

    manifest = read_manifest(index_paths[1], DAY)
    assert (manifest.model_version, manifest.dimension, manifest.rows) == ("m1", 32, 3000)
    assert [s.shard for s in manifest.shards] == [0, 1]
    assert sum(s.rows for s in manifest.shards) == 3000
    assert [s.offset for s in manifest.shards] == [0, manifest.shards[0].rows]
    assert manifest.search_parameters == "nprobe=16"

    found = read_related(spark, index_paths[2], DAY)
    expected = exact_related(note_ids, xb, 100)
    recall = np.mean([len({o for o, _ in found[q]} & {o for o, _ in expected[q]}) / 100
                      for q in note_ids])
    assert recall >= 0.95
    reported = float(summary.split("sampled_recall@100=")[1].split(",")[0])
    assert reported >= 0.95
    assert float(summary.split("recall_s=")[1].split(",")[0]) > 0

    # --nprobe is kept with the index: scanning every list finds what exact search finds
    # (0.999: two notes at the 100th place may tie to float rounding, in any order).
    assert build(index_paths, "--index-type", "ivf", "--num-shards", "2", "--nprobe", "76") == 0
    assert read_manifest(index_paths[1], DAY).search_parameters == "nprobe=76"
    assert relate(index_paths, "--recall-sample", "100") == 0
    found = read_related(spark, index_paths[2], DAY)
    assert np.mean([len({o for o, _ in found[q]} & {o for o, _ in expected[q]}) / 100
                    for q in note_ids]) >= 0.999


def test_rerun_replaces_the_index_and_the_day_atomically(spark, index_paths):
    xb = clustered_vectors(200, seed=3)
    other_day = "2026-11-23"
    write_embeddings(spark, index_paths[0], embeddings_pdf(ids(100), xb[:100], dt=other_day),
                     embeddings_pdf(ids(100, "m"), xb[100:], dt=DAY))
    assert build(index_paths, "--index-type", "flat", day=other_day) == 0
    assert relate(index_paths, "--top-k", "5", day=other_day) == 0
    before_other = read_related(spark, index_paths[2], other_day)

    builds, results = [], []
    for _ in range(3):
        assert build(index_paths, "--index-type", "flat", "--num-shards", "2") == 0
        assert relate(index_paths, "--top-k", "5") == 0
        builds.append(read_manifest(index_paths[1], DAY).build)
        results.append(read_related(spark, index_paths[2], DAY))
    first = results[0]
    assert results[1] == first and results[2] == first
    assert len(set(builds)) == 3
    # The published build and the previous one remain; older ones are gone.
    remaining = sorted(p.name for p in (index_paths[1] / f"dt={DAY}").glob("build-*"))
    assert remaining == sorted(builds[1:])
    assert read_related(spark, index_paths[2], other_day) == before_other
    assert len(first) == 200 and all(len(pairs) == 5 for pairs in first.values())


def test_mixed_model_versions_are_refused(spark, index_paths, capsys):
    xb = clustered_vectors(20, seed=4)
    write_embeddings(spark, index_paths[0],
                     embeddings_pdf(ids(10), xb[:10], dt="2026-11-20", model_version="m1"),
                     embeddings_pdf(ids(10, "x"), xb[10:], dt=DAY, model_version="m2"))
    assert build(index_paths) == 2
    err = capsys.readouterr().err
    assert "2 model versions ['m1', 'm2']" in err
    assert not (index_paths[1] / f"dt={DAY}" / "manifest.json").exists()
    # A window that holds only m2 is fine.
    assert build(index_paths, "--window-days", "3") == 0


@pytest.mark.parametrize("n", [1, 3])
def test_corpus_not_larger_than_k_gives_every_other_note(spark, index_paths, n):
    xb = clustered_vectors(n, seed=5)
    write_embeddings(spark, index_paths[0], embeddings_pdf(ids(n), xb, dt=DAY))
    assert build(index_paths) == 0
    assert relate(index_paths) == 0
    found = read_related(spark, index_paths[2], DAY)
    assert_same_related(found, {q: pairs for q, pairs in exact_related(ids(n), xb, 100).items()
                                if pairs})


def test_window_latest_row_and_new_queries(spark, index_paths):
    xb = clustered_vectors(40, seed=6)
    old, edited, fresh = ids(10, "a"), ids(10, "b"), ids(10, "c")
    write_embeddings(
        spark, index_paths[0],
        embeddings_pdf(ids(10, "z"), xb[30:], dt="2026-10-01"),  # before the 30-day window
        embeddings_pdf(old + edited, xb[:20], dt="2026-11-01"),
        embeddings_pdf(edited + fresh, xb[20:40][::-1][:20], dt=DAY),
    )
    assert build(index_paths) == 0
    assert relate(index_paths, "--queries", "new", "--top-k", "5") == 0
    found = read_related(spark, index_paths[2], DAY)
    assert sorted(found) == sorted(edited + fresh)

    # The corpus is the latest row of each note in the window: the edited notes' new vectors.
    corpus_ids = old + edited + fresh
    corpus_xb = np.vstack([xb[:10], xb[20:40][::-1][:20]])
    expected = exact_related(corpus_ids, corpus_xb, 5)
    assert_same_related(found, {q: expected[q] for q in edited + fresh})


@pytest.mark.parametrize(("rows", "cores", "tasks"), [
    (1, 2, 2), (400_000, 2, 2), (400_001, 2, 4), (1_000_000, 2, 6), (1_000_000, 16, 16),
])
def test_search_tasks_are_whole_waves_of_at_most_200k_queries(rows, cores, tasks):
    spark = SimpleNamespace(sparkContext=SimpleNamespace(defaultParallelism=cores))
    assert related_notes.search_tasks(spark, rows) == tasks


def test_the_write_setting_is_scoped_to_the_write(spark):
    (key, value), = related_notes.ONE_DAY_WRITE.items()
    for before in (None, "7"):
        if before is not None:
            spark.conf.set(key, before)
        with session_conf(spark, related_notes.ONE_DAY_WRITE):
            assert spark.conf.get(key) == value
        assert spark.conf.get(key, None) == before
    spark.conf.unset(key)


@pytest.mark.parametrize(("index_type", "n"), [("flat", 600), ("ivf", 3000), ("hnsw", 800)])
def test_a_rerun_gives_the_same_index_and_lists(spark, index_paths, tmp_path, index_type, n):
    """Same input, same files and lists, also when the corpus arrives in another order and
    partitioning: the shard bounds and the IVF training sample are chosen by a hash of
    note_id, each shard's vectors are added in note_id order, HNSW graphs with one thread."""
    xb = clustered_vectors(n, seed=8)
    pdf = embeddings_pdf(ids(n), xb, dt=DAY)
    write_embeddings(spark, index_paths[0], pdf)
    shuffled_pdf = pdf.sample(frac=1, random_state=0)
    shuffled = write_embeddings(spark, tmp_path / "shuffled_embeddings",
                                *(shuffled_pdf.iloc[part::3] for part in range(3)))
    runs = []
    for embeddings, partitions in ((index_paths[0], "4"), (shuffled, "3")):
        paths = (embeddings, *index_paths[1:])
        with session_conf(spark, {"spark.sql.shuffle.partitions": partitions}):
            assert build(paths, "--index-type", index_type, "--num-shards", "2") == 0
            assert relate(paths, "--top-k", "10") == 0
        manifest = read_manifest(index_paths[1], DAY)
        files = {entry.file: (Path(manifest.build_dir) / entry.file).read_bytes()
                 for entry in manifest.shards}
        # What a rerun may change: its build's name, when it was made, how long it took.
        manifest = replace(manifest, build="", created_utc="",
                           shards=tuple(replace(entry, build_s=0.0) for entry in manifest.shards))
        runs.append((manifest, files, read_related(spark, index_paths[2], DAY)))
    (manifest, files, lists), again = runs
    assert again[0] == manifest and again[1] == files
    # Queries batch differently under other partitionings (FAISS scores a batch with BLAS).
    assert_same_related(again[2], lists)
    assert [entry.file for entry in manifest.shards] == [
        f"shard-{s:05d}.faiss" for s in range(len(manifest.shards))]
    assert sum(entry.rows for entry in manifest.shards) == n and len(lists) == n


def write_notes(spark, location, days_and_ids):
    from notellm2_udf.spark.delta_io import replace_days
    from schemas import NOTES

    for day, note_ids in days_and_ids.items():
        rows = [(day, note_id, "t", "c", [], None) for note_id in note_ids]
        replace_days(spark.createDataFrame(rows, NOTES.schema), NOTES, location, day)


def test_an_incomplete_window_is_refused_naming_the_missing_days(spark, index_paths, tmp_path,
                                                                capsys):
    xb = clustered_vectors(30, seed=9)
    days = ["2026-11-22", "2026-11-23", DAY]
    notes = str(tmp_path / "notes")
    write_notes(spark, notes, {day: ids(10, f"{day}-") for day in days})
    write_notes(spark, notes, {"2026-11-22": ids(11, "2026-11-22-")})  # one late note
    write_embeddings(spark, index_paths[0],
                     embeddings_pdf(ids(10, "2026-11-22-"), xb[:10], dt=days[0]),
                     embeddings_pdf(ids(10, f"{DAY}-"), xb[20:], dt=DAY))
    window = ("--window-days", "3", "--notes", notes)
    assert build(index_paths, *window) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "build_index: window [2026-11-22, 2026-11-24] is incomplete for model m1: no "
        "embeddings on 2026-11-23 (1 of 3 days with notes); embed them first "
        "(jobs/embed_window.py, oldest first), or pass --allow-incomplete-window to index "
        "what is there")
    assert not (index_paths[1] / f"dt={DAY}" / "manifest.json").exists()

    assert build(index_paths, *window, "--allow-incomplete-window") == 0
    assert "late_notes=1" in capsys.readouterr().out
    manifest = read_manifest(index_paths[1], DAY)
    assert manifest.completeness == Completeness(days_with_notes=3, missing_days=("2026-11-23",),
                                                 late_notes={"2026-11-22": 1})
    assert manifest.rows == 20
