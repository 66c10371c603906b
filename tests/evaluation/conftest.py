"""Tiny model and sample Delta tables for the evaluation job tests."""

import pytest

from tests.training import fixtures


@pytest.fixture(scope="session")
def eval_model_dir(tmp_path_factory) -> str:
    return fixtures.tiny_model_dir(tmp_path_factory.mktemp("evaluation-model"))


@pytest.fixture(scope="session")
def eval_sample_locations(spark, tmp_path_factory) -> tuple[str, str]:
    return fixtures.sample_tables(spark, tmp_path_factory.mktemp("evaluation-sample"))
