"""IndexManifest: written and read back whole, the manifests of earlier releases read, and a
clear error naming the file and the field for anything else (no Spark)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from notellm2_udf.errors import JobInputError
from notellm2_udf.index.layout import publish, read_manifest
from notellm2_udf.index.manifest import (
    FORMAT_VERSION,
    Completeness,
    IndexManifest,
    ShardEntry,
)
from notellm2_udf.index.params import IndexParams
from tests.index import manifests

DAY = "2026-11-24"


def ivf_manifest(build: str = "build-20261207T000000Z-aaaaaa", **changes) -> IndexManifest:
    manifest = IndexManifest(
        date=DAY, window_days=30, window=("2026-10-26", DAY), model_version="m1",
        dimension=32, metric="inner_product", index_type="ivf", factory="IVF76,Flat",
        search_parameters="nprobe=16",
        params=IndexParams("ivf", 32, nlist=76, search="nprobe=16"), rows=3000,
        shards=(ShardEntry(0, 1496, "n00000", "shard-00000.faiss", "shard-00000.ids.parquet",
                           216845, 0.41, 0),
                ShardEntry(1, 1504, "n01496", "shard-00001.faiss", "shard-00001.ids.parquet",
                           217997, 0.4, 1496)),
        task_index_bytes=1 << 30, trained="trained.faiss",
        completeness=Completeness(30, ("2026-11-01",), {"2026-11-02": 3}),
        created_utc="2026-12-07T00:00:00+00:00", build=build)
    return replace(manifest, **changes)


def test_a_manifest_is_read_back_as_written(tmp_path):
    manifest = ivf_manifest()
    manifest.write(tmp_path)
    read = IndexManifest.read(tmp_path)
    assert read == manifest
    assert read.build_dir == str(tmp_path / manifest.build)
    assert read.completeness.late_notes == {"2026-11-02": 3}
    assert read.shards[1].offset == 1496 and read.params.nlist == 76
    # Through a URI, build_dir is a URI too (executors copy the build from it).
    by_uri = IndexManifest.read(tmp_path.as_uri())
    assert by_uri == manifest and by_uri.build_dir == f"{tmp_path.as_uri()}/{manifest.build}"


def test_the_file_keeps_the_keys_earlier_releases_read():
    """Earlier readers take the JSON by key and ignore `format`: the keys must not move."""
    written = ivf_manifest().to_json()
    previous = json.loads(manifests.WITH_BUDGET)
    assert list(written) == list(previous)
    assert list(written["shards"][0]) == list(previous["shards"][0])
    assert list(written["params"]) == list(previous["params"])
    assert list(written["completeness"]) == list(previous["completeness"])
    assert written["format"] == FORMAT_VERSION == 2
    assert written["window"] == ["2026-10-26", DAY]
    assert written["completeness"]["missing_days"] == ["2026-11-01"]
    assert "build_dir" not in written


def test_the_manifests_of_earlier_releases_are_read(tmp_path):
    first = IndexManifest.from_json(json.loads(manifests.FIRST_RELEASE), source="first")
    assert first.task_index_bytes is None and first.completeness is None
    assert first == ivf_manifest(
        build="build-20261126T070400Z-1a2b3c", task_index_bytes=None, completeness=None,
        created_utc="2026-11-26T07:04:06+00:00",
        shards=(replace(ivf_manifest().shards[0], build_s=0.412),
                replace(ivf_manifest().shards[1], build_s=0.398)))

    empty = IndexManifest.from_json(json.loads(manifests.EMPTY_INDEX), source="empty")
    assert empty.is_empty and empty.shards == () and empty.task_index_bytes is None
    assert (empty.index_type, empty.dimension, empty.params, empty.search_parameters) == (
        "empty", None, None, None)
    assert empty.completeness == Completeness(3, (), {})

    budget = IndexManifest.from_json(json.loads(manifests.WITH_BUDGET), source="budget")
    assert budget.task_index_bytes == 1 << 30
    assert budget.completeness == Completeness(3, ("2026-11-23",), {"2026-11-22": 1})
    assert budget.params == IndexParams("flat", 32) and budget.search_parameters == ""

    # Read from the index directory, as related_notes does.
    (tmp_path / f"dt={DAY}").mkdir()
    (tmp_path / f"dt={DAY}" / "manifest.json").write_text(manifests.FIRST_RELEASE)
    assert read_manifest(tmp_path, DAY) == first


def test_publish_writes_the_manifest_and_keeps_the_previous_build(tmp_path):
    day = tmp_path / f"dt={DAY}"
    builds = [day / f"build-{i}" for i in range(3)]
    for build in builds:
        build.mkdir(parents=True)
    (day / "manifest.json").write_text(manifests.naming(builds[1].name))  # format 1
    publish(ivf_manifest(build=builds[2].name, build_dir=str(builds[2])))
    assert read_manifest(tmp_path, DAY) == ivf_manifest(build=builds[2].name)
    assert sorted(p.name for p in day.glob("build-*")) == ["build-1", "build-2"]
    with pytest.raises(ValueError, match="names"):
        publish(ivf_manifest(build="build-9", build_dir=str(builds[2])))


def broken(change) -> dict:
    data = json.loads(manifests.WITH_BUDGET)
    change(data)
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.update(format=3), "unknown index manifest format 3"),
    (lambda m: m.pop("format"), "unknown index manifest format None"),
    (lambda m: m.update(shard_bounds=[]), "unknown field 'shard_bounds' in the manifest"),
    (lambda m: m.pop("rows"), "the manifest lacks field 'rows'"),
    (lambda m: m.pop("model_version"), "the manifest lacks field 'model_version'"),
    (lambda m: m["shards"][0].pop("offset"), "shard entry 0 lacks field 'offset'"),
    (lambda m: m["shards"][0].update(path="x"), "unknown field 'path' in shard entry 0"),
    (lambda m: m["params"].update(efs=1), "unknown field 'efs' in field 'params'"),
    (lambda m: m["completeness"].pop("late_notes"),
     "field 'completeness' lacks field 'late_notes'"),
    (lambda m: m.update(rows="20"), "field 'rows' of the manifest must be int, got '20'"),
    (lambda m: m.update(shards={}), "field 'shards' must be a JSON array"),
    (lambda m: m.update(window=[DAY]), "field 'window' must be"),
])
def test_anything_else_is_refused_naming_the_file_and_the_field(tmp_path, change, message):
    (tmp_path / "manifest.json").write_text(json.dumps(broken(change)))
    with pytest.raises(JobInputError) as err:
        IndexManifest.read(tmp_path)
    assert str(err.value).startswith(f"{tmp_path}/manifest.json: ")
    assert message in str(err.value)


def test_format_2_has_no_optional_field():
    data = ivf_manifest().to_json()
    data.pop("task_index_bytes")
    with pytest.raises(JobInputError, match="lacks field 'task_index_bytes'"):
        IndexManifest.from_json(data, source="x")


def test_a_missing_manifest_names_the_day(tmp_path):
    with pytest.raises(FileNotFoundError):
        IndexManifest.read(tmp_path)
    with pytest.raises(JobInputError, match=f"no index for {DAY}: .*run build_index first"):
        read_manifest(tmp_path, DAY)
    (tmp_path / f"dt={DAY}").mkdir()
    (tmp_path / f"dt={DAY}" / "manifest.json").write_text("{not json")
    with pytest.raises(JobInputError, match="manifest.json: not an index manifest"):
        read_manifest(tmp_path, DAY)
