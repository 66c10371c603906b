"""Checking a NoteLLM-2 checkpoint directory on the driver, before any Spark work."""

from __future__ import annotations

import json
from pathlib import Path

from notellm2_udf.errors import JobInputError


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
