"""The `model_version` of a checkpoint directory: a hash of its files (no torch here, so the
driver of a Spark job and the model registry can compute it cheaply)."""

from __future__ import annotations

import hashlib
from pathlib import Path

VERSION_HEX_DIGITS = 16


def model_version(directory: str | Path) -> str:
    """sha256 over the sorted (relative path, bytes) of every file in the checkpoint, as 16 hex.

    Identical weights, configs and tokenizer files give the same version wherever and
    whenever they were saved; any change to any file gives another.
    """
    root = Path(directory)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no checkpoint files in {root}")
    for path in files:
        relative = path.relative_to(root).as_posix().encode()
        digest.update(len(relative).to_bytes(8, "little") + relative)
        digest.update(path.stat().st_size.to_bytes(8, "little"))
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:VERSION_HEX_DIGITS]


def files_signature(directory: str | Path) -> list[list]:
    """(relative path, size, mtime_ns) of every file: tells cheaply whether a directory may
    have changed since its version was computed (equal signatures: no need to hash again)."""
    root = Path(directory)
    return [[p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns]
            for p in sorted(root.rglob("*")) if p.is_file()]
