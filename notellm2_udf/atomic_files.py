"""Write a file or a directory beside its target, then rename it into place: readers see
the old one or the new one, never a half-written one."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_directory(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory next to `target`; on success it replaces `target`.

    Readers never see a half-written directory: they see the old one, the new one, or, for
    the instant between removing the old and renaming the new, none. On an exception the
    staging directory is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        staging.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def write_atomic(path: str | Path, write: Callable[[str], None]) -> None:
    """Call `write(temporary_name)` next to `path`, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """`text` into the file at `path`, replaced whole."""
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))
