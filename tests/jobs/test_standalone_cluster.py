"""The daily jobs on a Spark standalone cluster (a master and two workers, separate JVMs on
loopback), submitted with spark-submit. The executors' Python has the dependencies but not
this project: the code reaches them as the wheel `make dist` builds, in --py-files. Model
and index are read through file:// URIs, so executors copy them into their cache. The rows
must be those of the same jobs on local[2]."""

from __future__ import annotations

import os
import subprocess
import sysconfig
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from jobs import build_index, embed_notes, related_notes
from notellm2_udf.sample.notes import SampleSpec
from notellm2_udf.sample.tables import write_sample_tables
from notellm2_udf.services.standalone import StandaloneCluster
from tests.support.processes import BIN, REPO_ROOT, run_process
from tests.support.tolerances import EMBEDDING_ATOL, SCORE_ATOL

DAY = "2026-11-24"
TOP_K = 5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executor_python(tmp_path_factory) -> Path:
    """A venv that sees the job venv's packages but not this project: the job venv's
    site-packages as a plain path in a .pth file (its own .pth files, among them the
    editable install's finder, are not run)."""
    venv = tmp_path_factory.mktemp("executor-venv")
    subprocess.run([str(BIN / "python"), "-m", "venv", "--without-pip", "--clear", str(venv)],
                   check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "job_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def dist_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(["bash", "scripts/build_dist.sh", str(out)], cwd=REPO_ROOT,
                           env={**os.environ, "PYTHON_FOR_DIST": str(BIN / "python")},
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (zip_path,) = out.glob("*.whl.zip")
    return zip_path


@pytest.fixture(scope="module")
def cluster(private_install, tmp_path_factory):
    env, _ = private_install
    run_dir = tmp_path_factory.mktemp("standalone")
    cluster = StandaloneCluster.on_free_ports(run_dir, workers=2, cores=1, memory="2g")
    cluster.start({**env, "NOTELLM2_CACHE_DIR": str(run_dir / "cache")}, timeout=400)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_executor_python_has_the_dependencies_but_not_the_project(executor_python, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    probe = subprocess.run([str(executor_python), "-c",
                            "import faiss, torch, pandas, pyarrow\n"
                            "try:\n    import notellm2_udf\nexcept ModuleNotFoundError:\n"
                            "    print('no project')\n"], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "no project"


def test_daily_jobs_on_a_standalone_cluster_give_the_rows_of_local(
        spark, private_install, cluster, executor_python, dist_zip, tiny_checkpoint,
        tmp_path):
    env, _ = private_install
    write_sample_tables(spark, SampleSpec(date(2026, 11, 24), days=1, notes_per_day=24),
                        tmp_path / "input", register=False)
    notes = str(tmp_path / "input" / "notes")
    local, remote = tmp_path / "local", tmp_path / "cluster"

    def argvs(out: Path, model: str, index_for_search: str) -> list[list[str]]:
        return [
            ["--date", DAY, "--notes", notes, "--model", model, "--embeddings",
             str(out / "emb"), "--errors", str(out / "err"), "--partitions", "4"],
            ["--date", DAY, "--embeddings", str(out / "emb"), "--index-dir",
             str(out / "index"), "--index-type", "flat", "--num-shards", "2"],
            ["--date", DAY, "--embeddings", str(out / "emb"), "--index-dir",
             index_for_search, "--related", str(out / "related"), "--top-k", str(TOP_K),
             "--recall-sample", "0"],
        ]

    jobs = ("embed_notes", "build_index", "related_notes")
    for main, argv in zip((embed_notes.main, build_index.main, related_notes.main),
                          argvs(local, str(tiny_checkpoint), str(local / "index"))):
        assert main(argv) == 0

    submit = [str(BIN / "spark-submit"), "--master", cluster.master_url,
              "--conf", f"spark.pyspark.python={executor_python}",
              "--conf", "spark.executor.memory=1g", "--conf", "spark.ui.enabled=false",
              "--conf", "spark.sql.shuffle.partitions=4", "--py-files", str(dist_zip)]
    for job, argv in zip(jobs, argvs(remote, tiny_checkpoint.as_uri(),
                                     (remote / "index").as_uri())):
        result = run_process(submit + [str(REPO_ROOT / "jobs" / f"{job}.py"), *argv], env,
                             timeout=900)
        assert result.returncode == 0, f"{job}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"

    # Same rows as local[2].
    def table(out: Path, name: str, order: list[str]):
        return (spark.read.format("delta").load(str(out / name)).toPandas()
                .sort_values(order).reset_index(drop=True))

    local_emb, remote_emb = (table(out, "emb", ["note_id"]) for out in (local, remote))
    assert list(remote_emb["note_id"]) == list(local_emb["note_id"]) and len(local_emb) >= 20
    np.testing.assert_allclose(np.stack(remote_emb["embedding"]),
                               np.stack(local_emb["embedding"]), atol=EMBEDDING_ATOL)
    assert (remote_emb["model_version"] == local_emb["model_version"]).all()
    local_err, remote_err = (table(out, "err", ["note_id", "stage"]) for out in (local, remote))
    assert remote_err[["note_id", "stage", "error"]].equals(local_err[["note_id", "stage",
                                                                          "error"]])
    local_rel, remote_rel = (table(out, "related", ["note_id", "rank"])
                             for out in (local, remote))
    assert len(local_rel) == len(local_emb) * TOP_K
    assert remote_rel[["note_id", "rank", "related_note_id"]].equals(
        local_rel[["note_id", "rank", "related_note_id"]])
    np.testing.assert_allclose(remote_rel["score"], local_rel["score"], atol=SCORE_ATOL)

    # Where the work ran: both workers' executors, each with the shipped wheel; the model
    # and the index build copied into the executors' cache from their URIs.
    work = Path(cluster.run_dir) / "work"
    shipped = sorted(path.parent.name for path in work.glob(f"app-*/*/{dist_zip.name}"))
    assert len(shipped) >= 2 * len(jobs) - 1, shipped  # one executor per worker and app
    cached = sorted(path.name for path in (Path(cluster.run_dir) / "cache").iterdir()
                    if not path.name.startswith("."))
    assert any(name.startswith(f"{tiny_checkpoint.name}-") for name in cached), cached
    assert any(name.startswith("build-") for name in cached), cached
