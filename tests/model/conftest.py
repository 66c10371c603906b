"""The tiny NoteLLM-2 (built once per session) and its saved checkpoint."""

import copy

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_parts():
    """(model, processor) of the tiny random micl_late model; do not mutate: use tiny_model."""
    from notellm2_udf.init_model import compose_tiny_random

    return compose_tiny_random("micl_late", seed=0)


@pytest.fixture
def tiny_model(tiny_parts):
    """A fresh deep copy of the tiny model, safe to change in a test."""
    torch.manual_seed(0)
    return copy.deepcopy(tiny_parts[0])


@pytest.fixture
def tiny_processor(tiny_parts):
    return tiny_parts[1]


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_parts, tmp_path_factory):
    """Directory of the tiny model saved with save_checkpoint."""
    from notellm2_udf.checkpoint import save_checkpoint

    directory = tmp_path_factory.mktemp("tiny") / "model"
    save_checkpoint(*tiny_parts, directory)
    return directory


@pytest.fixture(scope="session")
def tiny_encoder(tiny_checkpoint):
    from notellm2_udf.encoder import Encoder

    return Encoder(tiny_checkpoint, device="cpu")
