"""The index directory of one day, and how a new build replaces the old one atomically.

    <index-dir>/dt=2026-11-24/
        manifest.json                  the published build; replaced last, with os.replace
        build-20261124T0312Z-1a2b3c/   one build: never modified once published
            trained.faiss              coarse quantizer / codebooks (IVF types only)
            shard-00000.faiss          one FAISS index per shard
            shard-00000.ids.parquet    note_id of each FAISS id of that shard, in order

A build is written into a fresh build directory, then `manifest.json` (which names the
build) is renamed over the old one: readers see the old build or the new one, never a
half-written one. The previous build is kept for readers that read the old manifest just
before the swap; older ones (and builds of failed runs) are removed by the next publish.

build_index writes to a filesystem that the driver and every executor see at the same path
(local disk in local mode, a shared mount such as NFS on a cluster; `file:` URIs name it
too). Readers take any URI that `files/remote_files.py` reads (hdfs://, s3a://, file://...):
each executor copies the published build once to its local cache, keyed by the build's name.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from notellm2_udf.days import validate_day
from notellm2_udf.errors import JobInputError
from notellm2_udf.files.remote_files import is_remote, local_copy
from notellm2_udf.index.manifest import MANIFEST, IndexManifest


def local_dir(uri: str) -> Path:
    """The local path of a `file:` URI or plain path; other schemes are not supported for
    writing an index."""
    if uri.startswith("file:"):
        uri = "/" + uri[len("file:"):].lstrip("/")
    elif "://" in uri:
        raise JobInputError(
            f"index dir must be a path on a filesystem shared by driver and executors, "
            f"got {uri!r}")
    return Path(uri).absolute()


def day_dir(index_dir: str | Path, day: str) -> Path:
    return local_dir(str(index_dir)) / f"dt={validate_day(day)}"


def new_build_dir(index_dir: str | Path, day: str) -> Path:
    """A fresh, empty build directory for `day`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = day_dir(index_dir, day) / f"build-{stamp}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    return path


def read_manifest(index_dir: str | Path, day: str) -> IndexManifest:
    """The published manifest of `day`, its build_dir an absolute path, or a URI when
    `index_dir` is one (executors then copy the build, see `local_build_dir`)."""
    if is_remote(str(index_dir)):
        directory = f"{str(index_dir).rstrip('/')}/dt={validate_day(day)}"
    else:
        directory = day_dir(index_dir, day)
    try:
        return IndexManifest.read(directory)
    except FileNotFoundError:
        raise JobInputError(f"no index for {day}: {directory}/{MANIFEST} is missing "
                            "(run build_index first)") from None


def local_build_dir(manifest: IndexManifest) -> Path:
    """A local directory holding the build of `manifest` (copied once per machine from a URI;
    a build is never modified once published, so its name is its version)."""
    return local_copy(manifest.build_dir, version=manifest.build)


def publish(manifest: IndexManifest) -> None:
    """Make the build of `manifest` (its build_dir, a local path) the index of its day, then
    drop builds older than the previous one."""
    build_dir = Path(manifest.build_dir)
    if build_dir.name != manifest.build:
        raise ValueError(f"manifest of build {manifest.build!r} names {build_dir}")
    day = build_dir.parent
    previous = IndexManifest.read(day).build if (day / MANIFEST).is_file() else None
    manifest.write(day)
    for old in day.glob("build-*"):
        if old.name not in (build_dir.name, previous):
            shutil.rmtree(old, ignore_errors=True)
