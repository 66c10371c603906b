"""Models and index builds at any URI: each machine copies what it needs to a local cache once.

Executors cannot use Spark's JVM filesystem from their Python workers, so files are read with
pyarrow's filesystems instead:

    /plain/path, relative/path   used in place, never copied (local disk, NFS, a FUSE mount)
    file:///path                 copied like a remote URI (this is how the tests exercise it)
    hdfs://namenode:port/path    pyarrow HadoopFileSystem (libhdfs; CLASSPATH and
                                 ARROW_LIBHDFS_DIR set on the executors, see README)
    s3a://bucket/key, s3://...   pyarrow S3FileSystem (credentials from the AWS environment
                                 or instance role, not from spark.hadoop.fs.s3a.* settings)
    gs://bucket/key              pyarrow GcsFileSystem

A copy lives in `<cache dir>/<name>-<version>`: the version is given (an index build's name,
unique and never modified) or hashed from the listing (relative paths, sizes, modification
times), so a rewritten model gets a new copy. Concurrent callers on one machine (the Python
workers of an executor) take a file lock; one copies into a temporary directory and renames
it into place, the others wait and use it. The cache dir is `$NOTELLM2_CACHE_DIR`, else
`<tmp>/notellm2-cache-<uid>`; old versions stay until something cleans the directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from notellm2_udf.errors import JobInputError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Hadoop's names for stores whose pyarrow filesystem takes another scheme.
_PYARROW_SCHEME = {"s3a": "s3", "s3n": "s3"}


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
               cache_dir: Path | None = None) -> Path:
    """A local directory with the contents of `location` (a plain path is returned as is)."""
    return fetch(location, version=version, cache_dir=cache_dir)[0]


def fetch(location: str, *, version: str | None = None,
          cache_dir: Path | None = None) -> tuple[Path, bool]:
    """(local directory, whether this call copied it) of the directory at `location`."""
    if not is_remote(location):
        return Path(location), False
    files = list_files(location)
    if not files:
        raise JobInputError(f"no files under {location}")
    if version is None:
        version = hashlib.sha256(repr(files).encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir or default_cache_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.=-]", "_", location.rstrip("/").rsplit("/", 1)[-1]) or "root"
    target = cache_dir / f"{name}-{version}"
    if target.is_dir():
        return target, False
    with open(cache_dir / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_dir():  # another worker copied it while we waited
            return target, False
        incoming = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_dir))
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
    return target, True


def default_cache_dir() -> Path:
    return Path(os.environ.get("NOTELLM2_CACHE_DIR")
                or Path(tempfile.gettempdir()) / f"notellm2-cache-{os.getuid()}")
