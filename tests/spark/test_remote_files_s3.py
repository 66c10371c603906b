"""Models and index builds read from a real S3 API (moto's server on loopback, run from
.venv-s3): copied once per version, by one of the threads that ask at once; the endpoint and
the credentials come from the AWS environment variables, as on executors."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pyarrow import fs

from notellm2_udf.errors import JobInputError
from notellm2_udf.files.remote_files import fetch, list_files
from notellm2_udf.index.layout import local_build_dir, read_manifest
from notellm2_udf.services.daemons import LOOPBACK, free_port, port_open, wait_until
from tests.index import manifests

MOTO_SERVER = Path(__file__).resolve().parents[2] / ".venv-s3" / "bin" / "moto_server"
BUCKET = "notellm2"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_port():
    port = free_port()
    server = subprocess.Popen([str(MOTO_SERVER), "-H", LOOPBACK, "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port), 60, f"moto's S3 server listening on {port}")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def s3(s3_port, monkeypatch):
    """The bucket, as written by a client given the endpoint explicitly; readers get it from
    AWS_ENDPOINT_URL only."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role probes
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{LOOPBACK}:{s3_port}")
    store = fs.S3FileSystem(endpoint_override=f"{LOOPBACK}:{s3_port}", scheme="http",
                            allow_bucket_creation=True, allow_bucket_deletion=True)
    store.create_dir(BUCKET)
    yield store
    store.delete_dir(BUCKET)


def _put(store, key: str, data: bytes) -> None:
    with store.open_output_stream(f"{BUCKET}/{key}") as sink:
        sink.write(data)


def _fetch_at_once(uri: str, cache: Path, *, threads: int = 6, **kwargs):
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: fetch(uri, cache_dir=cache, **kwargs), range(threads)))


def test_a_model_is_copied_from_s3_once_per_version(s3, tmp_path):
    weights = bytes(range(256)) * 12_000  # 3 MB: several chunks of the copy
    _put(s3, "models/m1/config.json", b'{"model_type": "notellm2"}')
    _put(s3, "models/m1/model.safetensors", weights)
    _put(s3, "models/m1/tokenizer/vocab.json", b'{"a": 1}')
    cache = tmp_path / "cache"

    results = _fetch_at_once(f"s3a://{BUCKET}/models/m1", cache)
    assert sum(copied for _, copied in results) == 1
    (first,) = {path for path, _ in results}
    assert first.parent == cache and first.name.startswith("m1-")
    assert (first / "model.safetensors").read_bytes() == weights
    assert [(name, size) for name, size, _ in list_files(str(first))] == [
        ("config.json", 26), ("model.safetensors", len(weights)), ("tokenizer/vocab.json", 8)]
    assert fetch(f"s3://{BUCKET}/models/m1/", cache_dir=cache) == (first, False)

    _put(s3, "models/m1/model.safetensors", b"\x02" * 10)  # a new version at the same key
    results = _fetch_at_once(f"s3a://{BUCKET}/models/m1", cache)
    assert sum(copied for _, copied in results) == 1
    (second,) = {path for path, _ in results}
    assert second != first and (second / "model.safetensors").read_bytes() == b"\x02" * 10
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == \
        sorted([first.name, second.name])


def test_an_index_build_is_copied_from_s3_by_its_build_name(s3, tmp_path, monkeypatch):
    _put(s3, "index/dt=2026-11-24/build-x1/shard-00000.faiss", b"faiss-0")
    _put(s3, "index/dt=2026-11-24/build-x1/shard-00001.faiss", b"faiss-1")
    _put(s3, "index/dt=2026-11-24/manifest.json", manifests.naming("build-x1").encode())
    monkeypatch.setenv("NOTELLM2_CACHE_DIR", str(tmp_path / "cache"))

    manifest = read_manifest(f"s3a://{BUCKET}/index", "2026-11-24")
    assert manifest.build_dir == f"s3a://{BUCKET}/index/dt=2026-11-24/build-x1"
    with ThreadPoolExecutor(4) as pool:
        builds = set(pool.map(lambda _: local_build_dir(manifest), range(4)))
    assert builds == {tmp_path / "cache" / "build-x1-build-x1"}
    (build,) = builds
    assert sorted(p.read_bytes() for p in build.iterdir()) == [b"faiss-0", b"faiss-1"]
    with pytest.raises(JobInputError, match="no index for 2026-11-25"):
        read_manifest(f"s3a://{BUCKET}/index", "2026-11-25")

