"""The training loop: resume equals an uninterrupted run; 2 processes equal 1 with the same
global batch (TorchDistributor, local mode, gloo)."""

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from notellm2_udf.training.launch import epoch_converters
from notellm2_udf.training.loop import TrainPlan, TrainSettings, train_process
from notellm2_udf.training.state import checkpoint_dir, load_training_state


def _plan(pair_rows_df, settings, processes, cache, start_step=0, resume_from=None):
    steps_per_epoch = pair_rows_df.count() // (settings.batch_pairs * processes)
    plan = TrainPlan(settings, steps_per_epoch=steps_per_epoch, start_step=start_step,
                     resume_from=resume_from)
    plan.converters = epoch_converters(pair_rows_df, plan, processes, cache.as_uri())
    return plan


def _weights(run_dir, step):
    return load_file(checkpoint_dir(run_dir, step) / "model" / "model.safetensors")


def test_resume_continues_exactly_like_an_uninterrupted_run(pair_rows_df, tiny_model_dir, tmp_path):
    settings = TrainSettings(tiny_model_dir, str(tmp_path / "whole"), epochs=2, batch_pairs=8,
                             lr=1e-3, stop_at_step=8)
    whole = _plan(pair_rows_df, settings, 1, tmp_path / "cache")
    assert whole.steps_per_epoch < 8 < whole.total_steps  # the resumed run crosses an epoch
    summary = train_process(whole)
    assert summary["steps"] == 8

    parts = dataclasses.replace(settings, output_dir=str(tmp_path / "parts"), stop_at_step=3)
    train_process(_plan(pair_rows_df, parts, 1, tmp_path / "cache"))
    resumed = dataclasses.replace(parts, stop_at_step=8)
    train_process(_plan(pair_rows_df, resumed, 1, tmp_path / "cache", start_step=3,
                        resume_from=str(checkpoint_dir(tmp_path / "parts", 3))))

    expected, got = _weights(tmp_path / "whole", 8), _weights(tmp_path / "parts", 8)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    expected_state = load_training_state(checkpoint_dir(tmp_path / "whole", 8))
    got_state = load_training_state(checkpoint_dir(tmp_path / "parts", 8))
    assert torch.equal(expected_state.temperature, got_state.temperature)
    assert [r["loss"] for r in got_state.history] == [r["loss"] for r in expected_state.history]
    assert len(got_state.history) == 8
    # The weights did change: the comparison is not between two untouched models.
    initial = load_file(f"{tiny_model_dir}/model.safetensors")
    assert any(not torch.equal(initial[name], got[name]) for name in got)


@pytest.fixture(scope="module")
def no_dropout_model_dir(tmp_path_factory):
    """Dropout draws differ by rank, so only a model without dropout can give the same
    weights on 1 and 2 processes."""
    from notellm2_udf.model.checkpoint import save_checkpoint
    from notellm2_udf.model.compose import compose_tiny_random

    model, processor = compose_tiny_random("micl_late", seed=0)
    model.config.qformer_config.hidden_dropout_prob = 0.0
    model.config.qformer_config.attention_probs_dropout_prob = 0.0
    directory = tmp_path_factory.mktemp("no-dropout") / "model"
    save_checkpoint(model, processor, directory)
    return str(directory)


def test_two_torchdistributor_processes_match_one_process_with_the_same_global_batch(
        pair_rows_df, no_dropout_model_dir, tmp_path):
    """2 processes x 4 pairs (GradCache in sub-batches of 2) = 1 process x 8 pairs.

    The gathered loss and the summed gradient are the same computation up to float
    summation order, so the check is made where that stays small: the step losses, and the
    weights after plain SGD steps (w - lr * g: a gradient difference of ~1e-7 relative moves
    a weight by ~lr * 1e-7). Weights after Adam steps are not comparable: Adam divides by
    sqrt(v), turning order noise in near-zero gradients into full-size updates."""
    from pyspark.ml.torch.distributor import TorchDistributor

    settings = TrainSettings(no_dropout_model_dir, str(tmp_path / "two"), batch_pairs=4,
                             sub_batch_pairs=2, lr=1e-2, optimizer="sgd", stop_at_step=3)
    two = _plan(pair_rows_df, settings, 2, tmp_path / "cache")
    summary = TorchDistributor(num_processes=2, local_mode=True, use_gpu=False).run(
        train_process, two)
    assert summary["steps"] == 3

    single = dataclasses.replace(settings, output_dir=str(tmp_path / "one"), batch_pairs=8,
                                 sub_batch_pairs=0)
    train_process(_plan(pair_rows_df, single, 1, tmp_path / "cache"))
    one_history = load_training_state(checkpoint_dir(tmp_path / "one", 3)).history
    two_history = load_training_state(checkpoint_dir(tmp_path / "two", 3)).history
    # Step 1 sees the same weights in both runs: its loss agrees to float precision.
    assert two_history[0]["loss"] == pytest.approx(one_history[0]["loss"], rel=1e-6)
    assert [r["loss"] for r in two_history] == pytest.approx([r["loss"] for r in one_history],
                                                            rel=1e-5)
    initial = load_file(f"{no_dropout_model_dir}/model.safetensors")
    expected, got = _weights(tmp_path / "one", 3), _weights(tmp_path / "two", 3)
    moved = 0
    for name in expected:
        step = (expected[name] - initial[name]).abs().max()
        moved += bool(step > 1e-4)
        # 1e-6 absolute: a thousand times the expected order noise (lr x 1e-7 x |g| <= 1),
        # far below the updates themselves (up to 1e-2).
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")
    assert moved > 10  # the runs trained: the comparison is not between untouched weights
