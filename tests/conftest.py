"""Session-wide fixtures: one SparkSession (Delta + Hive catalog) and one tiny NoteLLM-2 for the
whole test run (torch is imported only by the tests that use the model)."""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

SLOW_TEST_TIMEOUT_S = 3600  # the DAG test over a promotion took 1,974 s on a loaded machine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT_S))


@pytest.fixture(scope="session")
def lakehouse_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Warehouse + embedded metastore of the test session (never the user's own)."""
    return tmp_path_factory.mktemp("lakehouse")


@pytest.fixture(scope="session")
def spark(lakehouse_dir: Path):
    from notellm2_udf.spark.session import SparkSettings, build_spark_session, metastore_conf

    overrides = {
        **metastore_conf(lakehouse_dir),
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.snapshotPartitions": "2",
    }
    session = build_spark_session(
        SparkSettings(app_name="notellm2-tests", master="local[2]", overrides=overrides)
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_submit() -> Path:
    """The job venv's spark-submit (jobs are tested the way users run them)."""
    path = Path(sys.executable).parent / "spark-submit"
    if not path.exists():
        path = Path(shutil.which("spark-submit") or "spark-submit")
    return path


@pytest.fixture(scope="session")
def tiny_parts():
    """(model, processor) of the tiny random micl_late model; do not mutate: use tiny_model."""
    from notellm2_udf.model.compose import compose_tiny_random

    return compose_tiny_random("micl_late", seed=0)


@pytest.fixture(scope="session")
def v1_parts():
    """(model, processor) of the tiny micl_late model under the options of our first release
    (prompt_format v1, English, learned no-image vector, pooler_output, Q-Former input LN):
    what a checkpoint saved before those options existed loads as. Do not mutate."""
    from notellm2_udf.model.compose import compose_tiny_random
    from notellm2_udf.model.configuration import LEGACY_OPTIONS

    return compose_tiny_random("micl_late", seed=0, prompt_language="en", **LEGACY_OPTIONS)


@pytest.fixture
def tiny_model(tiny_parts):
    """A fresh deep copy of the tiny model, safe to change in a test."""
    import torch

    torch.manual_seed(0)
    return copy.deepcopy(tiny_parts[0])


@pytest.fixture
def tiny_processor(tiny_parts):
    return tiny_parts[1]


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_parts, tmp_path_factory):
    """Directory of the tiny model saved with save_checkpoint: the one tiny checkpoint of
    the run (jobs, training and evaluation start from it)."""
    from notellm2_udf.model.checkpoint import save_checkpoint

    directory = tmp_path_factory.mktemp("tiny") / "model"
    save_checkpoint(*tiny_parts, directory)
    return directory


@pytest.fixture(scope="session")
def sample_locations(spark, tmp_path_factory) -> tuple[str, str]:
    """(notes, related_pairs) locations of the training sample as Delta tables."""
    from tests.support.training_data import sample_tables

    return sample_tables(spark, tmp_path_factory.mktemp("training-sample"))


@pytest.fixture(scope="module")
def related_world(spark, tmp_path_factory):
    """The known related-notes world (tests/support/related_world.py), written once per
    session and registered again for each module that uses it."""
    from tests.support.related_world import shared_world

    return shared_world(spark, tmp_path_factory)


@pytest.fixture(scope="module")
def related_frames(spark, related_world):
    """That world's tables on its second day, as validate_related reads them."""
    from tests.support.related_world import DAYS, day_frames

    return day_frames(spark, related_world, DAYS[1])


@pytest.fixture
def index_paths(tmp_path):
    """(embeddings, index-dir, related) locations of one index test."""
    return tmp_path / "note_embeddings", tmp_path / "index", str(tmp_path / "related_notes")


@pytest.fixture(scope="session")
def tiny_encoder(tiny_checkpoint):
    from notellm2_udf.inference.encoder import Encoder

    return Encoder(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def private_install(tmp_path_factory) -> tuple[dict[str, str], Path]:
    """(environment, root) of a private Spark installation: see private_install_env."""
    from tests.support.processes import private_install_env

    root = tmp_path_factory.mktemp("install")
    return private_install_env(root), root


@pytest.fixture(scope="module")
def server_install(tmp_path_factory):
    """(environment, root, metastore server) of a private installation whose metastore is
    Derby's network server on a free loopback port, as `make setup` configures it (stopped
    afterwards, also when a test fails)."""
    from notellm2_udf.services.daemons import free_port
    from notellm2_udf.services.metastore import MetastoreServer
    from tests.support.processes import DERBY_JARS, private_install_env

    root = tmp_path_factory.mktemp("server-install")
    server = MetastoreServer(root / "lakehouse", DERBY_JARS, free_port())
    server.start()
    try:
        yield private_install_env(root, metastore_port=server.port), root, server
    finally:
        server.stop()
