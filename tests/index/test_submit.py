"""related_notes the way users run it: spark-submit, registering in a private metastore."""

from __future__ import annotations

import subprocess

from jobs import build_index
from tests.support.processes import REPO_ROOT
from tests.support.vectors import clustered_vectors, embeddings_pdf, read_related, write_embeddings

DAY = "2026-11-24"


def test_spark_submit_related_notes(spark, spark_submit, private_install, tmp_path):
    env, _ = private_install
    xb = clustered_vectors(300, seed=7)
    embeddings = write_embeddings(spark, tmp_path / "note_embeddings",
                                  embeddings_pdf([f"n{i:03d}" for i in range(300)], xb, dt=DAY))
    common = ["--date", DAY, "--embeddings", embeddings, "--index-dir", str(tmp_path / "index")]
    assert build_index.main([*common, "--num-shards", "2"]) == 0
    related = str(tmp_path / "related_notes")
    result = subprocess.run(
        [str(spark_submit), "--master", "local[2]", str(REPO_ROOT / "jobs" / "related_notes.py"),
         *common, "--related", related, "--top-k", "10", "--queries", "new",
         "--recall-sample", "0"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "rows=3000" in result.stdout and "related=notellm2.related_notes" in result.stdout
    found = read_related(spark, related, DAY)
    assert len(found) == 300 and all(len(pairs) == 10 for pairs in found.values())
