"""Resumable training checkpoints: safetensors and JSON only, nothing is unpickled.

    OUTPUT/checkpoints/step-00000040/
        model/                      a NoteLLM-2 checkpoint (checkpoint.save_checkpoint)
        optimizer.safetensors       AdamW moments and step counts, the temperature
        training_state.json         step, param groups, the log history so far

    OUTPUT/best/                    with validation: the lowest validation loss so far
        model/                      a copy of that step's checkpoint model
        best.json                   its step and validation losses

The learning rate is a function of the step and the RNG is re-seeded from (seed, step, rank)
at every step, so the step is all the scheduler and random state there is to restore.
A step directory is written under a temporary name and renamed into place: a directory named
step-* is always complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STEP_PREFIX = "step-"
BEST_DIR = "best"
BEST_FILE = "best.json"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "training_state.json"
TEMPERATURE_KEY = "temperature"


@dataclass
class TrainingState:
    """What a checkpoint restores besides the model weights."""

    step: int
    optimizer: dict  # torch.optim.Optimizer.state_dict() layout
    temperature: torch.Tensor  # scalar
    history: list[dict]


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"{STEP_PREFIX}{step:08d}"


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The step directory with the highest step, or None."""
    root = Path(output_dir) / "checkpoints"
    steps = sorted(root.glob(f"{STEP_PREFIX}*")) if root.is_dir() else []
    return steps[-1] if steps else None


def read_step(directory: str | Path) -> int:
    return int(json.loads((Path(directory) / STATE_FILE).read_text())["step"])


def best_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / BEST_DIR


def read_best(output_dir: str | Path) -> dict | None:
    """The record of OUTPUT/best (step, eval_loss, ...), or None when there is none."""
    path = best_dir(output_dir) / BEST_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def save_best(output_dir: str | Path, model_dir: Path, record: dict) -> None:
    """OUTPUT/best = a copy of `model_dir` (a step checkpoint's model) and `record`,
    replaced as a whole."""
    from notellm2_udf.atomic_files import staged_directory

    with staged_directory(best_dir(output_dir)) as staging:
        shutil.copytree(model_dir, staging / "model")
        (staging / BEST_FILE).write_text(json.dumps(record, indent=1))


def copy_checkpoint(source: Path, target: Path) -> str:
    """Copy a model checkpoint directory into place (replaced whole); its model_version."""
    from notellm2_udf.atomic_files import staged_directory
    from notellm2_udf.model.checkpoint import model_version

    with staged_directory(target) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
    return model_version(target)


def save_training_checkpoint(directory: Path, model, processor, state: TrainingState) -> None:
    from notellm2_udf.atomic_files import staged_directory
    from notellm2_udf.model.checkpoint import save_checkpoint

    with staged_directory(directory) as staging:
        save_checkpoint(model, processor, staging / "model")
        tensors, groups = flatten_optimizer_state(state.optimizer)
        tensors[TEMPERATURE_KEY] = state.temperature.detach().cpu().clone()
        save_file(tensors, staging / OPTIMIZER_FILE)
        (staging / STATE_FILE).write_text(json.dumps(
            {"step": state.step, "param_groups": groups, "history": state.history}, indent=1))


def load_training_state(directory: str | Path) -> TrainingState:
    meta = json.loads((Path(directory) / STATE_FILE).read_text())
    tensors = load_file(Path(directory) / OPTIMIZER_FILE)
    temperature = tensors.pop(TEMPERATURE_KEY)
    return TrainingState(step=meta["step"],
                         optimizer=unflatten_optimizer_state(tensors, meta["param_groups"]),
                         temperature=temperature, history=meta["history"])


def flatten_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """optimizer.state_dict() -> ({"state.<param>.<key>": tensor}, JSON-able param groups)."""
    tensors = {}
    for index, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if not torch.is_tensor(value):
                raise TypeError(f"optimizer state {index}.{key} is not a tensor: {value!r}")
            tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous().clone()
    groups = [{key: list(value) if isinstance(value, tuple) else value
               for key, value in group.items()} for group in state_dict["param_groups"]]
    return tensors, groups


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], groups: list[dict]) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    return {"state": state,
            "param_groups": [{key: tuple(value) if key == "betas" else value
                              for key, value in group.items()} for group in groups]}


def regroup_optimizer_state(saved: dict, saved_layout: list[list], layout: list[list],
                            param_groups: list[dict]) -> dict:
    """A state_dict saved with the parameters grouped as `saved_layout` (parameter objects,
    group by group) re-indexed for `layout` (the same parameters grouped otherwise), with
    `param_groups` (the target optimizer's state_dict()["param_groups"]) as its groups.
    AdamW's and SGD's per-parameter state does not depend on the grouping."""
    saved_params = [param for params in saved_layout for param in params]
    index = {id(param): position
             for position, param in enumerate(param for params in layout for param in params)}
    if sorted(index.values()) != list(range(len(saved_params))) or any(
            id(param) not in index for param in saved_params):
        raise ValueError("the two layouts do not hold the same parameters")
    return {"state": {index[id(saved_params[old])]: state
                      for old, state in saved["state"].items()},
            "param_groups": param_groups}
