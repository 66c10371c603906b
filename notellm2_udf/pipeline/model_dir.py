"""Checking a NoteLLM-2 checkpoint directory (a path or a URI) on the driver, before any
Spark work."""

from __future__ import annotations

import json

from notellm2_udf.errors import JobInputError
from notellm2_udf.spark.remote_files import list_files, read_text


def check_model_dir(model_dir: str) -> None:
    """Refuse an unreadable checkpoint with JobInputError (reads JSON only: no torch here)."""
    try:
        config = json.loads(read_text(f"{str(model_dir).rstrip('/')}/config.json"))
    except (OSError, ValueError) as err:
        raise JobInputError(f"unreadable model {model_dir}: {err}") from None
    if config.get("model_type") != "notellm2":
        raise JobInputError(
            f"unreadable model {model_dir}: config.json model_type is "
            f"{config.get('model_type')!r}, not 'notellm2' (compose one with notellm2 init-model)")
    if not any(name.endswith(".safetensors") and "/" not in name
               for name, _, _ in list_files(str(model_dir))):
        raise JobInputError(f"unreadable model {model_dir}: no *.safetensors weights")
