"""The model of a run, on the driver, before any Spark work: pinned to one immutable
directory and version, and checked readable."""

from __future__ import annotations

import json
from pathlib import Path

from notellm2_udf.errors import JobInputError
from notellm2_udf.model.registry import PinnedModel, RegistryError, resolve_serving
from notellm2_udf.model.version import model_version


def check_model_dir(model_dir: str) -> None:
    """Refuse an unreadable checkpoint with JobInputError (reads JSON only: no torch here)."""
    config_path = Path(model_dir) / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise JobInputError(f"unreadable model {model_dir}: {err}") from None
    if config.get("model_type") != "notellm2":
        raise JobInputError(
            f"unreadable model {model_dir}: config.json model_type is "
            f"{config.get('model_type')!r}, not 'notellm2' (compose one with notellm2 init-model)")
    if not any(Path(model_dir).glob("*.safetensors")):
        raise JobInputError(f"unreadable model {model_dir}: no *.safetensors weights")


def pin_model(*, model_dir: str | None, models_root: str | None, day: str) -> PinnedModel:
    """Resolve the run's model once, on the driver: a link (`current`) followed to the
    directory it names, or the registry's serving version; and its model_version."""
    if models_root:
        try:
            pinned = resolve_serving(models_root, day)
        except RegistryError as err:
            raise JobInputError(f"models registry {models_root}: {err}") from None
    else:
        resolved = str(Path(model_dir).resolve())
        check_model_dir(resolved)
        pinned = PinnedModel(model_version(resolved), resolved)
    check_model_dir(pinned.dir)
    return pinned
