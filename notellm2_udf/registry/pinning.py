"""The model of a run, on the driver, before any Spark work: pinned to one immutable
directory (a path or a URI) and version, and checked readable."""

from __future__ import annotations

import json
from pathlib import Path

from notellm2_udf.errors import JobInputError
from notellm2_udf.files.remote_files import is_remote, list_files, local_copy, read_text
from notellm2_udf.model.version import model_version
from notellm2_udf.registry.versions import PinnedModel, RegistryError, resolve_serving


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


def pin_model(*, model_dir: str | None, models_root: str | None, day: str) -> PinnedModel:
    """Resolve the run's model once, on the driver: a link (`current`) followed to the
    directory it names, or the registry's serving version; and its model_version."""
    if models_root:
        try:
            pinned = resolve_serving(models_root, day)
        except RegistryError as err:
            raise JobInputError(f"models registry {models_root}: {err}") from None
    elif is_remote(model_dir):
        # The version is the hash of the files' contents: the driver reads them once, from
        # the local copy the executors' cache would make too.
        check_model_dir(model_dir)
        pinned = PinnedModel(model_version(local_copy(model_dir)), model_dir)
    else:
        resolved = str(Path(model_dir).resolve())
        check_model_dir(resolved)
        pinned = PinnedModel(model_version(resolved), resolved)
    check_model_dir(pinned.dir)
    return pinned
