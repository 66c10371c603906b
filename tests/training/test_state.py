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


def test_training_checkpoint_saves_and_restores(tmp_path, tiny_model_dir):
    from notellm2_udf.model.checkpoint import load_checkpoint

    model, processor = load_checkpoint(tiny_model_dir)
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
