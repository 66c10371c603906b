"""The evaluation tests use the training tests' tiny model and sample Delta tables."""

from tests.training.conftest import sample_locations, tiny_model_dir  # noqa: F401 (fixtures)
