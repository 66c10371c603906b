"""Optimizer state through safetensors + JSON, and checkpoint discovery."""

import torch

from notellm2_udf.training.state import (
    TrainingState,
    checkpoint_dir,
    flatten_optimizer_state,
    latest_checkpoint,
    load_training_state,
    read_step,
    save_training_checkpoint,
    unflatten_optimizer_state,
)


def _stepped_adamw() -> torch.optim.AdamW:
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(4))]
    optimizer = torch.optim.AdamW([{"params": weights[:1], "weight_decay": 0.1},
                                   {"params": weights[1:], "weight_decay": 0.0}], lr=0.01)
    for _ in range(2):
        optimizer.zero_grad()
        (weights[0].sum() ** 2 + weights[1].pow(3).sum()).backward()
        optimizer.step()
    return optimizer


def test_optimizer_state_round_trips_exactly():
    original = _stepped_adamw().state_dict()
    restored = unflatten_optimizer_state(*flatten_optimizer_state(original))
    assert restored["param_groups"] == original["param_groups"]
    assert restored["state"].keys() == original["state"].keys()
    for index, state in original["state"].items():
        for key, value in state.items():
            assert torch.equal(restored["state"][index][key], value), (index, key)


def test_training_checkpoint_saves_and_restores(tmp_path, tiny_checkpoint):
    from notellm2_udf.model.checkpoint import load_checkpoint

    model, processor = load_checkpoint(str(tiny_checkpoint))
    optimizer = _stepped_adamw()
    state = TrainingState(7, optimizer.state_dict(), torch.tensor(3.25), [{"step": 7}])
    save_training_checkpoint(checkpoint_dir(tmp_path, 7), model, processor, state)
    save_training_checkpoint(checkpoint_dir(tmp_path, 12), model, processor, state)

    latest = latest_checkpoint(tmp_path)
    assert latest == tmp_path / "checkpoints" / "step-00000012"
    assert read_step(checkpoint_dir(tmp_path, 7)) == 7
    restored = load_training_state(latest)
    assert restored.step == 7 and restored.history == [{"step": 7}]
    assert float(restored.temperature) == 3.25
    fresh = _stepped_adamw()
    fresh.load_state_dict(restored.optimizer)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg_sq"],
                       optimizer.state_dict()["state"][0]["exp_avg_sq"])
    assert not list(tmp_path.glob("checkpoints/.*")), "staging directories left behind"
    assert latest_checkpoint(tmp_path / "nothing") is None


def _optimizer_of(model_dir, decay_all_parameters):
    from notellm2_udf.model.checkpoint import load_checkpoint
    from notellm2_udf.training.loss import Temperature
    from notellm2_udf.training.optimizer import make_optimizer
    from notellm2_udf.training.settings import TrainSettings

    model, processor = load_checkpoint(model_dir)
    temperature = Temperature()
    trainable = [p for p in model.parameters() if p.requires_grad]
    settings = TrainSettings(model_dir, "unused", decay_all_parameters=decay_all_parameters)
    named = dict(model.named_parameters())
    named["temperature"] = temperature.value
    return model, processor, temperature, trainable, make_optimizer(
        trainable, temperature.value, settings), named


def test_a_checkpoint_with_the_two_group_optimizer_of_before_issue_14_resumes(
        tiny_checkpoint, tmp_path):
    """Before issue 14 every checkpoint had two AdamW groups (no decay on vectors and the
    temperature); the authors' single group must still resume from it, moments intact."""
    from notellm2_udf.training.loop import _start_process
    from notellm2_udf.training.plan import TrainPlan
    from notellm2_udf.training.settings import TrainSettings

    model, processor, temperature, trainable, old, old_named = _optimizer_of(
        str(tiny_checkpoint), decay_all_parameters=False)
    torch.manual_seed(0)
    for param in trainable + [temperature.value]:
        param.grad = torch.randn_like(param)
    old.step()
    save_training_checkpoint(checkpoint_dir(tmp_path, 3), model, processor, TrainingState(
        3, old.state_dict(), temperature.value.detach().clone(), [{"step": 3}]))

    plan = TrainPlan(TrainSettings(str(tiny_checkpoint), str(tmp_path)), steps_per_epoch=10,
                     start_step=3, resume_from=str(checkpoint_dir(tmp_path, 3)))
    run = _start_process(plan)
    assert len(run.optimizer.param_groups) == 1
    assert run.optimizer.param_groups[0]["weight_decay"] == 0.001  # this run's, on every one
    new_named = dict(run.model.named_parameters())
    new_named["temperature"] = run.temperature.value
    assert len(run.optimizer.state) == len(old.state) == len(new_named)
    for name, param in new_named.items():
        for key, value in old.state[old_named[name]].items():
            assert torch.equal(run.optimizer.state[param][key], value), (name, key)
    run.optimizer.step()  # and it steps


def test_an_optimizer_state_of_another_model_is_refused_in_one_line(tiny_checkpoint):
    import pytest

    from notellm2_udf.errors import JobInputError
    from notellm2_udf.training.optimizer import restore_optimizer

    _, _, temperature, trainable, optimizer, _ = _optimizer_of(str(tiny_checkpoint), True)
    other = torch.optim.AdamW([{"params": trainable[1:] + [temperature.value]}])
    with pytest.raises(JobInputError, match="does not fit this model") as error:
        restore_optimizer(optimizer, other.state_dict(), trainable, temperature.value, "ckpt")
    assert "\n" not in str(error.value)
