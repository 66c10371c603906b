"""Models and index builds at any URI: each machine copies what it needs to a local cache once.

Executors cannot use Spark's JVM filesystem from their Python workers, so files are read with
pyarrow's filesystems instead:

    /plain/path, relative/path   used in place, never copied (local disk, NFS, a FUSE mount)
    file:///path                 copied like a remote URI (this is how the tests exercise it)
    hdfs://namenode:port/path    pyarrow HadoopFileSystem (libhdfs; CLASSPATH and
                                 ARROW_LIBHDFS_DIR set on the executors, see README)
    s3a://bucket/key, s3://...   pyarrow S3FileSystem (credentials from the AWS environment
                                 or instance role, not from spark.hadoop.fs.s3a.* settings;
                                 a store other than AWS: AWS_ENDPOINT_URL=http://host:port)
    gs://bucket/key              pyarrow GcsFileSystem

A copy lives in `<cache dir>/<name>-<version>`: the version is given (an index build's name,
unique and never modified) or hashed from the listing (relative paths, sizes, modification
times), so a rewritten model gets a new copy. Concurrent callers on one machine (the Python
workers of an executor, their threads) take a file lock; one copies into a temporary
directory and renames it into place, the others wait and use it. The cache dir is
`$NOTELLM2_CACHE_DIR`, else `<tmp>/notellm2-cache-<uid>`.

A process that was handed a copy holds a shared lock on it until it exits (a worker may
load the files any time after fetch returns). After each new copy the cache keeps the
`keep` most recently used copies (`$NOTELLM2_CACHE_KEEP`, else DEFAULT_KEEP) and deletes
older ones unless a live process holds them: at most `keep` copies plus those in use (and
the temporary directory of a copy that was killed, until the next prune).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO

from notellm2_udf.errors import JobInputError

log = logging.getLogger("notellm2.remote_files")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Hadoop's names for stores whose pyarrow filesystem takes another scheme.
_PYARROW_SCHEME = {"s3a": "s3", "s3n": "s3"}
# Today's and yesterday's model and index build: a rerun or a rollback copies nothing.
DEFAULT_KEEP = 4
# Lock files of the copies this process was handed, keyed by path: held until it exits.
_IN_USE: dict[str, IO] = {}


def is_remote(location: str) -> bool:
    """True for a URI with a scheme (file: included), False for a plain path."""
    match = _SCHEME.match(str(location))
    return match is not None and len(match[1]) > 1  # not a drive letter


def absolute_location(location: str) -> str:
    """A URI unchanged; a plain path made absolute (so `s3a://b/x` never becomes `./s3a:/b/x`)."""
    return str(location) if is_remote(location) else str(Path(location).resolve())


def filesystem(uri: str):
    """(pyarrow FileSystem, path inside it) of a URI; JobInputError for unknown schemes."""
    from pyarrow import fs

    scheme = _SCHEME.match(uri)[1].lower()
    if scheme in _PYARROW_SCHEME:
        uri = _PYARROW_SCHEME[scheme] + uri[len(scheme):]
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError with its own text
        raise JobInputError(f"cannot open {uri}: {err} (readable URI schemes: file, hdfs, "
                            "s3a, s3, gs; or a path on a shared mount)") from None


def read_text(location: str) -> str:
    """A small file's text, from a path or a URI."""
    if not is_remote(location):
        return Path(location).read_text()
    remote, path = filesystem(location)
    with remote.open_input_stream(path) as stream:
        return stream.read().decode()


def list_files(location: str) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every file under a directory, sorted."""
    if not is_remote(location):
        root = Path(location)
        return sorted((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in root.rglob("*") if p.is_file())
    from pyarrow import fs

    remote, root = filesystem(location)
    infos = remote.get_file_info(fs.FileSelector(root, recursive=True, allow_not_found=True))
    return sorted((info.path[len(root.rstrip("/")) + 1:], info.size, info.mtime_ns or 0)
                  for info in infos if info.type == fs.FileType.File)


def local_copy(location: str, *, version: str | None = None,
               cache_dir: Path | None = None, keep: int | None = None) -> Path:
    """A local directory with the contents of `location` (a plain path is returned as is)."""
    return fetch(location, version=version, cache_dir=cache_dir, keep=keep)[0]


def fetch(location: str, *, version: str | None = None, cache_dir: Path | None = None,
          keep: int | None = None) -> tuple[Path, bool]:
    """(local directory, whether this call copied it) of the directory at `location`; a new
    copy prunes the cache down to the `keep` most recently used copies and those in use."""
    if not is_remote(location):
        return Path(location), False
    files = list_files(location)
    if not files:
        raise JobInputError(f"no files under {location}")
    if version is None:
        version = hashlib.sha256(repr(files).encode()).hexdigest()[:16]
    keep = default_keep() if keep is None else keep
    if keep < 1:
        raise JobInputError(f"the local copy cache must keep at least 1 copy, not {keep}")
    cache_dir = Path(cache_dir or default_cache_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    # A leading dot marks the lock files and temporary directories, which prune tells apart.
    name = re.sub(r"[^\w.=-]", "_", location.rstrip("/").rsplit("/", 1)[-1]).lstrip(".")
    target = cache_dir / f"{name or 'root'}-{version}"
    lock, copied = _hold(location, files, target)
    os.utime(target)  # its last use, the order of pruning
    _IN_USE.setdefault(str(target), lock)
    if copied:
        prune(cache_dir, keep)
    return target, copied


def _hold(location: str, files: list[tuple[str, int, int]], target: Path) -> tuple[IO, bool]:
    """(lock file holding a shared lock on `target`, whether this call copied it there).

    The exclusive lock is only ever tried, never waited for: whoever copied keeps a shared
    lock for as long as it uses the copy, so a worker waiting for the exclusive one would wait
    forever once the copy is done. A worker that does not get it (another one is copying, or
    checking) looks again: a blocking shared lock waits out a copy in progress.
    """
    while True:
        lock = _lock(_lock_path(target), fcntl.LOCK_SH)
        if target.is_dir():
            return lock, False
        lock.close()
        lock = _lock(_lock_path(target), fcntl.LOCK_EX, wait=False)
        if lock is not None:
            break
        time.sleep(random.uniform(0.01, 0.05))  # apart, so that one of them gets it
    try:
        copied = not target.is_dir()  # another worker may have copied it while we waited
        if copied:
            _copy(location, files, target)
    except BaseException:
        lock.close()  # the waiting workers try themselves
        raise
    # Not atomic (flock drops the lock first), but a pruner never picks the newest copy.
    fcntl.flock(lock, fcntl.LOCK_SH)
    return lock, copied


def _copy(location: str, files: list[tuple[str, int, int]], target: Path) -> None:
    """Copy into a temporary directory beside `target`, renamed into place when complete."""
    incoming = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        remote, root = filesystem(location)
        for relative, _, _ in files:
            destination = incoming / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with remote.open_input_stream(f"{root.rstrip('/')}/{relative}") as source, \
                    destination.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        os.rename(incoming, target)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise


def prune(cache_dir: Path, keep: int) -> None:
    """Delete the copies past the `keep` most recently used, and the temporary directories
    of copies that were killed, unless a live process holds them (a shared lock: taking the
    exclusive one fails) or is copying (the exclusive lock)."""
    for old in _copies_by_last_use(cache_dir)[keep:]:
        if _delete_unheld(old, old):
            log.info("deleted the local copy %s (the cache keeps %d)", old, keep)
    for entry in cache_dir.iterdir():
        if entry.name.startswith(".") and entry.is_dir():  # .<copy name>.<random>
            _delete_unheld(entry, cache_dir / entry.name[1:].rsplit(".", 1)[0])


def _delete_unheld(directory: Path, copy: Path) -> bool:
    """Delete `directory` (`copy`, or a temporary directory of it) unless `copy`'s lock is
    held; whether it was deleted."""
    lock = _lock(_lock_path(copy), fcntl.LOCK_EX, wait=False)
    if lock is None:
        return False
    with lock:
        deleted = directory.is_dir()
        shutil.rmtree(directory, ignore_errors=True)
        if not copy.is_dir():
            # Whoever waits on this file finds it unlinked once it gets the lock, and retries.
            _lock_path(copy).unlink(missing_ok=True)
    return deleted


def _copies_by_last_use(cache_dir: Path) -> list[Path]:
    """The complete copies in `cache_dir`, most recently used first."""
    used = []
    for entry in cache_dir.iterdir():
        try:
            if entry.is_dir() and not entry.name.startswith("."):
                used.append((entry.stat().st_mtime_ns, entry))
        except FileNotFoundError:  # pruned by another process meanwhile
            pass
    return [entry for _, entry in sorted(used, key=lambda item: item[0], reverse=True)]


def _lock_path(copy: Path) -> Path:
    return copy.parent / f".{copy.name}.lock"


def _lock(path: Path, mode: int, *, wait: bool = True) -> IO | None:
    """The open lock file `path` holding flock `mode`, or None when `wait` is False and
    another holder conflicts. Retried when a pruner unlinked the file while we waited on it:
    a lock on an unlinked file excludes nobody who opens the path afterwards."""
    while True:
        handle = open(path, "a")
        try:
            fcntl.flock(handle, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


def default_cache_dir() -> Path:
    return Path(os.environ.get("NOTELLM2_CACHE_DIR")
                or Path(tempfile.gettempdir()) / f"notellm2-cache-{os.getuid()}")


def default_keep() -> int:
    value = os.environ.get("NOTELLM2_CACHE_KEEP") or str(DEFAULT_KEEP)
    if not value.isdigit():
        raise JobInputError(f"NOTELLM2_CACHE_KEEP must be a whole number, not {value!r}")
    return int(value)
