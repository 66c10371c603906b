"""The training loop: resume equals an uninterrupted run; 2 processes equal 1 with the same
global batch (TorchDistributor, local mode, gloo)."""

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from notellm2_udf.training.launch import epoch_converters
from notellm2_udf.training.loop import train_process
from notellm2_udf.training.plan import TrainPlan
from notellm2_udf.training.settings import TrainSettings
from notellm2_udf.training.state import checkpoint_dir, load_training_state


def _plan(pair_rows_df, settings, processes, cache, start_step=0, resume_from=None):
    steps_per_epoch = pair_rows_df.count() // (settings.batch_pairs * processes)
    plan = TrainPlan(settings, steps_per_epoch=steps_per_epoch, start_step=start_step,
                     resume_from=resume_from)
    plan.converters = epoch_converters(pair_rows_df, plan, processes, cache.as_uri())
    return plan


def _weights(run_dir, step):
    return load_file(checkpoint_dir(run_dir, step) / "model" / "model.safetensors")


def test_resume_continues_exactly_like_an_uninterrupted_run(pair_rows_df, tiny_checkpoint,
                                                           tmp_path):
    settings = TrainSettings(str(tiny_checkpoint), str(tmp_path / "whole"), epochs=2, batch_pairs=8,
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
    initial = load_file(f"{tiny_checkpoint}/model.safetensors")
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
        pair_rows_df, validation_rows_df, no_dropout_model_dir, tmp_path):
    """2 processes x 4 pairs (GradCache in sub-batches of 2) = 1 process x 8 pairs, the
    validation loss (gathered over the processes) included.

    The gathered loss and the summed gradient are the same computation up to float
    summation order, so the check is made where that stays small: the step losses, and the
    weights after plain SGD steps (w - lr * g: a gradient difference of ~1e-7 relative moves
    a weight by ~lr * 1e-7). Weights after Adam steps are not comparable: Adam divides by
    sqrt(v), turning order noise in near-zero gradients into full-size updates."""
    from pyspark.ml.torch.distributor import TorchDistributor

    from notellm2_udf.training.launch import validation_converters

    def validated(plan, processes):
        plan.validation_batches = validation_rows_df.count() // 8
        plan.validation_converters = validation_converters(
            validation_rows_df, plan, processes, (tmp_path / "cache").as_uri())
        return plan

    settings = TrainSettings(no_dropout_model_dir, str(tmp_path / "two"), batch_pairs=4,
                             sub_batch_pairs=2, lr=1e-2, optimizer="sgd", stop_at_step=3,
                             eval_every=3)
    two = validated(_plan(pair_rows_df, settings, 2, tmp_path / "cache"), 2)
    summary = TorchDistributor(num_processes=2, local_mode=True, use_gpu=False).run(
        train_process, two)
    assert summary["steps"] == 3

    single = dataclasses.replace(settings, output_dir=str(tmp_path / "one"), batch_pairs=8,
                                 sub_batch_pairs=0)
    train_process(validated(_plan(pair_rows_df, single, 1, tmp_path / "cache"), 1))
    one_history = load_training_state(checkpoint_dir(tmp_path / "one", 3)).history
    two_history = load_training_state(checkpoint_dir(tmp_path / "two", 3)).history
    # Step 1 sees the same weights in both runs: its loss agrees to float precision.
    assert two_history[0]["loss"] == pytest.approx(one_history[0]["loss"], rel=1e-6)
    assert [r["loss"] for r in two_history] == pytest.approx([r["loss"] for r in one_history],
                                                            rel=1e-5)
    assert two_history[2]["eval_loss"] == pytest.approx(one_history[2]["eval_loss"], rel=1e-5)
    assert "eval_loss" not in two_history[1]
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


@pytest.fixture(scope="module")
def validation_rows_df(spark):
    """The held-out day's pairs with both notes: validation pairs for the loop tests."""
    from notellm2_udf.inputs.notes import split_duplicates
    from notellm2_udf.training.pairs import split_by_date, undirected_pairs, with_notes
    from tests.support import training_data

    notes_df, pairs_df = training_data.sample_frames(spark)
    _, held_out_df = split_by_date(pairs_df, training_data.SAMPLE.day_strings[1])
    return with_notes(undirected_pairs(held_out_df), split_duplicates(notes_df)[0]).cache()


def test_validation_every_n_steps_keeps_the_lowest_loss_as_the_model(
        pair_rows_df, validation_rows_df, tiny_checkpoint, tmp_path):
    import json

    from notellm2_udf.training.launch import validation_converters
    from notellm2_udf.training.state import read_best

    output = tmp_path / "run"
    settings = TrainSettings(str(tiny_checkpoint), str(output), batch_pairs=6, sub_batch_pairs=4,
                             lr=3e-2, eval_every=2)
    plan = _plan(pair_rows_df, settings, 1, tmp_path / "cache")
    plan.validation_batches = validation_rows_df.count() // 6
    plan.validation_converters = validation_converters(validation_rows_df, plan, 1,
                                                       (tmp_path / "cache").as_uri())
    assert plan.validation_batches >= 2
    assert plan.total_steps >= 5 and plan.total_steps % 2 == 1  # the last step: no validation
    summary = train_process(plan)

    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    validated = {r["step"]: r["eval_loss"] for r in log if "eval_loss" in r}
    assert sorted(validated) == list(range(2, plan.total_steps + 1, 2))
    assert all({"eval_multimodal", "eval_visual"} <= r.keys() for r in log if "eval_loss" in r)
    best_step = min(validated, key=validated.get)
    best = read_best(output)
    assert best["step"] == summary["best_step"] == best_step
    assert best["eval_loss"] == validated[best_step] == summary["best_eval_loss"]
    assert len(set(validated.values())) == len(validated)  # the weights moved between them
    # Every validation step left a resumable checkpoint; the last step has one too.
    steps = sorted(int(p.name.split("-")[1]) for p in (output / "checkpoints").iterdir())
    assert steps == sorted(set(validated) | {plan.total_steps})
    at_best = _weights(output, best_step)
    for saved in (output / "best" / "model", output / "model"):
        got = load_file(saved / "model.safetensors")
        assert got.keys() == at_best.keys()
        assert all(torch.equal(got[name], at_best[name]) for name in got), saved
    last = _weights(output, plan.total_steps)  # the model is not simply the last weights
    assert any(not torch.equal(last[name], at_best[name]) for name in last)


def test_a_resumed_run_refuses_a_best_model_from_after_its_checkpoint(tiny_checkpoint, tmp_path):
    from notellm2_udf.errors import JobInputError
    from notellm2_udf.training.loop import _restore_best
    from notellm2_udf.training.state import best_dir

    best_dir(tmp_path).mkdir()
    (best_dir(tmp_path) / "best.json").write_text('{"step": 6, "eval_loss": 1.5}')
    settings = TrainSettings(str(tiny_checkpoint), str(tmp_path))
    resumed = TrainPlan(settings, steps_per_epoch=10, start_step=4, resume_from="x")
    with pytest.raises(JobInputError, match="from step 6, after the checkpoint resumed from"):
        _restore_best(resumed)
    assert _restore_best(dataclasses.replace(resumed, start_step=6))["eval_loss"] == 1.5
    assert _restore_best(TrainPlan(settings, steps_per_epoch=10)) is None  # a fresh run
    assert not best_dir(tmp_path).exists()  # ... removes the earlier run's best
