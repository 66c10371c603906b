"""The optimizer: its parameter groups (the authors' one or our v1's two), and restoring a
checkpoint's state into it, migrated between the two layouts."""

from __future__ import annotations

import logging

from notellm2_udf.training.settings import TrainSettings

log = logging.getLogger("notellm2.train")


def parameter_layout(trainable: list, temperature, decay_all_parameters: bool) -> list[list]:
    """The optimizer's parameters group by group. One group (the authors': DeepSpeed gets
    every parameter at once), or two: matrices, then biases, norms, vectors and the
    temperature (no decay; every checkpoint made before issue 14 has this layout)."""
    if decay_all_parameters:
        return [trainable + [temperature]]
    return [[p for p in trainable if p.ndim >= 2],
            [p for p in trainable if p.ndim < 2] + [temperature]]


def make_optimizer(trainable: list, temperature, settings: TrainSettings):
    import torch

    layout = parameter_layout(trainable, temperature, settings.decay_all_parameters)
    decays = ([settings.weight_decay] if settings.decay_all_parameters
              else [settings.weight_decay, 0.0])
    groups = [{"params": params, "weight_decay": decay} for params, decay in zip(layout, decays)]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=settings.lr)
    # betas and eps are DeepSpeed's AdamW defaults too
    return torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.999), eps=1e-8)


def restore_optimizer(optimizer, saved: dict, trainable: list, temperature,
                      checkpoint: str) -> None:
    """Load a checkpoint's optimizer state into `optimizer`. A state saved with the other
    group layout (parameter_layout: 1 group vs 2, e.g. a checkpoint from before issue 14
    resumed with the authors' single group) is migrated: the per-parameter moments move to
    the same parameters, the groups' hyper-parameters are this run's. JobInputError when the
    state does not fit this model's parameters."""
    from notellm2_udf.errors import JobInputError
    from notellm2_udf.training.state import regroup_optimizer_state

    current = parameter_layout(trainable, temperature, len(optimizer.param_groups) == 1)
    sizes = [len(group["params"]) for group in saved["param_groups"]]
    saved_layout = (parameter_layout(trainable, temperature, len(sizes) == 1)
                    if len(sizes) in (1, 2) else [])
    if sizes != [len(params) for params in saved_layout]:
        raise JobInputError(
            f"{checkpoint}: its optimizer state (parameter groups of sizes {sizes}) does not "
            f"fit this model's {len(trainable) + 1} trainable parameters; resume with the "
            f"model it was saved with, or train from step 0 without --resume")
    if len(saved_layout) != len(current):
        log.warning("%s: optimizer state saved with %d parameter group(s), migrated to %d",
                    checkpoint, len(saved_layout), len(current))
        saved = regroup_optimizer_state(saved, saved_layout, current,
                                        optimizer.state_dict()["param_groups"])
    for index, param in enumerate(p for params in current for p in params):
        for key, value in saved["state"].get(index, {}).items():
            if value.ndim and value.shape != param.shape:
                raise JobInputError(
                    f"{checkpoint}: optimizer state {key} of parameter {index} has shape "
                    f"{tuple(value.shape)}, the parameter {tuple(param.shape)}; resume with "
                    f"the model it was saved with, or train from step 0 without --resume")
    optimizer.load_state_dict(saved)
