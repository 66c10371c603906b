"""Models and index builds at URIs: copied once per version into a local cache, concurrent
callers safe; plain paths used in place; no URI turned into a relative path."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from jobs import train
from notellm2_udf.errors import JobInputError
from notellm2_udf.files.remote_files import (
    absolute_location,
    default_keep,
    fetch,
    is_remote,
    list_files,
)
from notellm2_udf.index.layout import local_build_dir, read_manifest
from notellm2_udf.registry.pinning import check_model_dir
from notellm2_udf.settings.declared import parse_settings
from tests.index import manifests

# Spawned, not forked: the test process runs Spark's py4j threads and pyarrow's thread pools,
# and a forked child may inherit a lock one of them held at the fork, then wait forever on it
# (CI hung in this file once, inside a forked fetch). Every wait has a bound so a stuck child
# fails the test instead of the run.
_CONTEXT = multiprocessing.get_context("spawn")
_WAIT_S = 120


@pytest.fixture
def model_dir(tmp_path):
    directory = tmp_path / "models" / "m1"
    (directory / "tokenizer").mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "notellm2"}))
    (directory / "model.safetensors").write_bytes(b"\x01" * 3_000_000)
    (directory / "tokenizer" / "vocab.json").write_text('{"a": 1}')
    return directory


def test_uris_and_paths_are_told_apart():
    assert is_remote("s3a://bucket/x") and is_remote("file:///tmp/x")
    assert is_remote("hdfs://nn:8020/m") and is_remote("abfss://c@acct.dfs.core.windows.net/m")
    assert not is_remote("/tmp/x") and not is_remote("models/current")
    assert absolute_location("s3a://bucket/x") == "s3a://bucket/x"
    assert absolute_location("models/current") == str(Path("models/current").resolve())


def test_train_keeps_a_uri_as_a_uri(capsys):
    settings = parse_settings(train.TrainJobSettings, [
        "--pairs", "p", "--notes", "n", "--init-model", "s3a://bucket/x", "--output", "out"])
    assert settings.resolved_training().init_model_dir == "s3a://bucket/x"
    assert settings.resolved_training().output_dir == str(Path("out").resolve())
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(train.TrainJobSettings, ["--pairs", "p", "--notes", "n", "--init-model",
                                                "m", "--output", "s3a://bucket/out"])
    assert exit_info.value.code == 2
    assert "--output must be a path every training process can write" in \
        capsys.readouterr().err


def test_a_file_uri_is_copied_once_per_version(model_dir, tmp_path):
    cache = tmp_path / "cache"
    uri = model_dir.as_uri()
    first, copied = fetch(uri, cache_dir=cache)
    assert copied and first.parent == cache and first.name.startswith("m1-")
    assert list_files(str(first))[0][:2] == ("config.json", len('{"model_type": "notellm2"}'))
    assert [(name, size) for name, size, _ in list_files(str(first))] == \
        [(name, size) for name, size, _ in list_files(str(model_dir))]
    assert (first / "tokenizer" / "vocab.json").read_text() == '{"a": 1}'
    again, copied = fetch(uri, cache_dir=cache)
    assert (again, copied) == (first, False)

    (model_dir / "model.safetensors").write_bytes(b"\x02" * 10)  # a new version
    second, copied = fetch(uri, cache_dir=cache)
    assert copied and second != first
    assert (second / "model.safetensors").read_bytes() == b"\x02" * 10
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == \
        sorted([first.name, second.name])


def test_a_plain_path_is_used_in_place(model_dir, tmp_path):
    assert fetch(str(model_dir), cache_dir=tmp_path / "cache") == (model_dir, False)
    assert not (tmp_path / "cache").exists()


def _fetch_in_process(args):
    uri, cache = args
    path, copied = fetch(uri, cache_dir=Path(cache))
    return str(path), copied, (path / "model.safetensors").stat().st_size


def test_concurrent_workers_copy_once(model_dir, tmp_path):
    cache = tmp_path / "cache"
    with _CONTEXT.Pool(4) as pool:
        results = pool.map_async(_fetch_in_process,
                                 [(model_dir.as_uri(), str(cache))] * 8).get(_WAIT_S)
    assert sum(copied for _, copied, _ in results) == 1
    assert {(path, size) for path, _, size in results} == {
        (str(cache / results[0][0].rsplit("/", 1)[1]), 3_000_000)}
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == \
        [Path(results[0][0]).name]  # no temporary directory left behind


def test_threads_of_one_worker_copy_once_and_none_waits_forever(model_dir, tmp_path):
    """The copier keeps its shared lock while it uses the copy: a thread that had queued for
    the exclusive lock behind it used to wait for ever (the S3 test hung on this in CI)."""
    cache = tmp_path / "cache"
    results = []
    # Daemon threads: a stuck one fails the test instead of hanging the run at exit.
    threads = [threading.Thread(target=lambda: results.append(
        fetch(model_dir.as_uri(), cache_dir=cache)), daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_WAIT_S)
    assert len(results) == 6, "a thread is still waiting for the lock"
    assert sum(copied for _, copied in results) == 1
    assert {path for path, _ in results} == {cache / results[0][0].name}
    assert (results[0][0] / "model.safetensors").stat().st_size == 3_000_000


def _new_version(model_dir: Path, size: int) -> None:
    (model_dir / "model.safetensors").write_bytes(b"\x03" * size)


def _fetch_in_a_process_that_exits(uri: str, cache: Path, keep: int, **kwargs) -> str:
    """The name of the copy, fetched by a process that then exits (releasing its hold)."""
    with _CONTEXT.Pool(1) as pool:
        kwargs.update(cache_dir=cache, keep=keep)
        return Path(pool.apply_async(fetch, (uri,), kwargs).get(_WAIT_S)[0]).name


def _hold_in_a_process(uri: str, cache: Path, fetched, release) -> None:
    fetch(uri, cache_dir=cache)
    fetched.set()
    release.wait(_WAIT_S)


def _cached(cache: Path) -> set[str]:
    return {p.name for p in cache.iterdir()}


def test_the_cache_keeps_the_most_recently_used_copies(model_dir, tmp_path):
    cache, uri = tmp_path / "cache", model_dir.as_uri()
    for version in ("a", "b", "a"):  # a is used again after b
        _fetch_in_a_process_that_exits(uri, cache, keep=2, version=version)
    assert _cached(cache) == {"m1-a", ".m1-a.lock", "m1-b", ".m1-b.lock"}
    _fetch_in_a_process_that_exits(uri, cache, keep=2, version="c")
    assert _cached(cache) == {"m1-a", ".m1-a.lock", "m1-c", ".m1-c.lock"}
    assert (cache / "m1-a" / "model.safetensors").stat().st_size == 3_000_000


def test_a_copy_in_use_is_never_pruned(model_dir, tmp_path):
    cache, uri = tmp_path / "cache", model_dir.as_uri()
    fetched, release = _CONTEXT.Event(), _CONTEXT.Event()
    holder = _CONTEXT.Process(target=_hold_in_a_process, args=(uri, cache, fetched, release))
    holder.start()
    assert fetched.wait(_WAIT_S)
    (held,) = {p.name for p in cache.iterdir() if not p.name.startswith(".")}

    _new_version(model_dir, 12)
    second = _fetch_in_a_process_that_exits(uri, cache, keep=1)
    assert _cached(cache) == {held, f".{held}.lock", second, f".{second}.lock"}

    release.set()
    holder.join(_WAIT_S)
    _new_version(model_dir, 13)
    third, copied = fetch(uri, cache_dir=cache, keep=1)  # this process holds it from now on
    assert copied and _cached(cache) == {third.name, f".{third.name}.lock"}
    assert (third / "model.safetensors").read_bytes() == b"\x03" * 13

    _new_version(model_dir, 14)
    fourth = _fetch_in_a_process_that_exits(uri, cache, keep=1)
    assert _cached(cache) == {third.name, f".{third.name}.lock", fourth, f".{fourth}.lock"}


def test_a_killed_copy_is_cleaned_up_by_the_next_prune(model_dir, tmp_path):
    cache, uri = tmp_path / "cache", model_dir.as_uri()
    (cache / ".m1-a.x7k2q9" / "tokenizer").mkdir(parents=True)  # as mkdtemp names it
    (cache / ".m1-a.x7k2q9" / "model.safetensors").write_bytes(b"\x01" * 1000)
    _fetch_in_a_process_that_exits(uri, cache, keep=4, version="b")
    assert _cached(cache) == {"m1-b", ".m1-b.lock"}

    hidden = model_dir.parent / ".m2"  # its copy must not look like a temporary directory
    model_dir.rename(hidden)
    assert fetch(hidden.as_uri(), cache_dir=cache, version="c")[0].name == "m2-c"


def test_the_number_of_copies_kept_is_checked(model_dir, tmp_path, monkeypatch):
    assert default_keep() == 4
    monkeypatch.setenv("NOTELLM2_CACHE_KEEP", "2")
    assert default_keep() == 2
    monkeypatch.setenv("NOTELLM2_CACHE_KEEP", "two")
    with pytest.raises(JobInputError, match="NOTELLM2_CACHE_KEEP must be a whole number"):
        fetch(model_dir.as_uri(), cache_dir=tmp_path / "cache")
    with pytest.raises(JobInputError, match="must keep at least 1 copy, not 0"):
        fetch(model_dir.as_uri(), cache_dir=tmp_path / "cache", keep=0)


def test_model_check_reads_a_uri(model_dir, tmp_path):
    check_model_dir(model_dir.as_uri())
    with pytest.raises(JobInputError, match="unreadable model file://.*missing"):
        check_model_dir((tmp_path / "missing").as_uri())
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(JobInputError, match="no \\*.safetensors weights"):
        check_model_dir(model_dir.as_uri())


def test_an_index_build_read_through_a_uri_is_copied_by_its_build_name(tmp_path, monkeypatch):
    build = tmp_path / "index" / "dt=2026-11-24" / "build-x1"
    build.mkdir(parents=True)
    (build / "shard-00000.faiss").write_bytes(b"faiss")
    (build.parent / "manifest.json").write_text(manifests.naming("build-x1"))
    monkeypatch.setenv("NOTELLM2_CACHE_DIR", str(tmp_path / "cache"))

    manifest = read_manifest((tmp_path / "index").as_uri(), "2026-11-24")
    assert manifest.build_dir == f"{(tmp_path / 'index').as_uri()}/dt=2026-11-24/build-x1"
    local = local_build_dir(manifest)
    assert local == tmp_path / "cache" / "build-x1-build-x1"
    assert (local / "shard-00000.faiss").read_bytes() == b"faiss"
    assert local_build_dir(read_manifest(str(tmp_path / "index"), "2026-11-24")) == build
    with pytest.raises(JobInputError, match="no index for 2026-11-25"):
        read_manifest((tmp_path / "index").as_uri(), "2026-11-25")
