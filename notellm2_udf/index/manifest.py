"""The manifest of a published index build: what it holds, written and read as typed JSON.

    {"format": 2, "date": "2026-11-24", "window_days": 30, "window": [first, last],
     "model_version": ..., "dimension": 64, "metric": "inner_product", "index_type": "ivf",
     "factory": "IVF4000,Flat", "search_parameters": "nprobe=16", "params": {...},
     "rows": 1000000, "shards": [{"shard": 0, "rows": ..., "first_note_id": ..., "file": ...,
     "ids": ..., "bytes": ..., "build_s": ..., "offset": 0}, ...],
     "task_index_bytes": 1073741824, "trained": "trained.faiss",
     "completeness": {"days_with_notes": 30, "missing_days": [], "late_notes": {}},
     "created_utc": ..., "build": "build-20261124T031200Z-1a2b3c"}

Format 2 (this release) has the keys of format 1 (every earlier release), each always
present, so the readers of earlier releases, which ignore `format`, read it. Format 1 files
may lack `task_index_bytes` (built before the task index budget was recorded, and every
empty index) and `completeness` (built before the window was accounted for): they read as
None. Any other missing key, an unknown key or another format is a JobInputError naming the
file and the field: a manifest is a contract between jobs, and a guessed field would fail
later on a cluster.

Where the build lives (`build_dir`) is not in the file: it depends on where the file was
read from (a path, or a URI that executors copy the build from), and a day directory stays
valid when moved. `read` sets it from that location and the builder sets it before `write`;
it takes no part in equality, so a manifest read back equals the one written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path

from notellm2_udf.atomic_files import write_text_atomic
from notellm2_udf.errors import JobInputError
from notellm2_udf.files.remote_files import is_remote, read_text
from notellm2_udf.index.params import IndexParams

MANIFEST = "manifest.json"
FORMAT_VERSION = 2
FORMATS = (1, 2)
# Scores are inner products of unit vectors (cosine); the one metric the search supports.
METRIC = "inner_product"
EMPTY = "empty"
# Absent from format 1 files written before they existed.
FORMAT_1_OPTIONAL = ("task_index_bytes", "completeness")
# The JSON types each scalar annotation accepts (the fields' annotations are strings here).
_SCALARS = {"str": (str,), "int": (int,), "float": (int, float),
            "str | None": (str, type(None)), "int | None": (int, type(None))}


@dataclass(frozen=True)
class ShardEntry:
    """One shard of a build: `file` holds `rows` vectors under FAISS ids 0..rows-1, `ids`
    (Parquet) their note_ids in note_id order from `first_note_id`; global ids are `offset`
    + FAISS id. `bytes`: the size of `file`; `build_s`: seconds its task spent on it."""

    shard: int
    rows: int
    first_note_id: str
    file: str
    ids: str
    bytes: int
    build_s: float
    offset: int


@dataclass(frozen=True)
class Completeness:
    """What the model version had embedded of the window when the index was built."""

    days_with_notes: int
    missing_days: tuple[str, ...]
    late_notes: dict[str, int]  # day -> notes that arrived after that day was embedded


@dataclass(frozen=True)
class IndexManifest:
    """One published build of a day: the corpus it indexes, how, and its shards.

    index_type is one of params.INDEX_TYPES less auto, or "empty" (a window without embedded
    notes: rows 0, no shards, dimension, params and search_parameters None). `build` names the
    build directory beside the manifest; `build_dir` is where that directory is (module
    docstring), None until read or set by the builder.
    """

    date: str
    window_days: int
    window: tuple[str, str]
    model_version: str
    dimension: int | None
    metric: str
    index_type: str
    factory: str
    search_parameters: str | None
    params: IndexParams | None
    rows: int
    shards: tuple[ShardEntry, ...]
    task_index_bytes: int | None  # None: a format 1 build that did not record its budget
    trained: str | None
    completeness: Completeness | None  # None: a format 1 build that did not record it
    created_utc: str
    build: str
    build_dir: str | None = field(default=None, compare=False)

    @property
    def is_empty(self) -> bool:
        return self.rows == 0

    def to_json(self) -> dict:
        """The file's contents: `format`, then every field but build_dir, in field order."""
        return {"format": FORMAT_VERSION,
                **{name: _jsonable(getattr(self, name)) for name in _file_fields(IndexManifest)}}

    def write(self, day_dir: str | Path) -> None:
        """Replace `day_dir/manifest.json` with this manifest, atomically (local paths only:
        publishing needs a rename)."""
        write_text_atomic(Path(day_dir) / MANIFEST, json.dumps(self.to_json(), indent=1))

    @classmethod
    def read(cls, day_dir: str | Path) -> IndexManifest:
        """The manifest in `day_dir` (a path or a URI), with build_dir set beside it.

        FileNotFoundError when there is none; JobInputError when it is not a manifest this
        release reads."""
        if is_remote(str(day_dir)):
            directory = str(day_dir).rstrip("/")
            source = f"{directory}/{MANIFEST}"
            build_dir = f"{directory}/{{}}"
        else:
            directory = Path(day_dir).absolute()
            source = str(directory / MANIFEST)
            build_dir = str(directory / "{}")
        text = read_text(source)
        try:
            data = json.loads(text)
        except ValueError as err:
            raise JobInputError(f"{source}: not an index manifest ({err})") from None
        manifest = cls.from_json(data, source=source)
        return replace(manifest, build_dir=build_dir.format(manifest.build))

    @classmethod
    def from_json(cls, data: object, *, source: str) -> IndexManifest:
        """The manifest of a file's parsed JSON; `source` names the file in errors."""
        if not isinstance(data, dict):
            raise JobInputError(f"{source}: not an index manifest (a JSON object expected)")
        data = dict(data)
        version = data.pop("format", None)
        if version not in FORMATS:
            raise JobInputError(
                f"{source}: unknown index manifest format {version!r} (this release reads "
                f"formats {', '.join(map(str, FORMATS))}; rebuild the index with build_index)")
        if version == 1:
            data = {name: None for name in FORMAT_1_OPTIONAL} | data
        values = _checked_fields(cls, data, source, "the manifest")
        values["window"] = tuple(_typed(values["window"], list, source, "window"))
        if len(values["window"]) != 2:
            raise JobInputError(f"{source}: field 'window' must be [first day, last day]")
        values["shards"] = tuple(
            ShardEntry(**_checked_fields(ShardEntry, _typed(entry, dict, source, "shards"),
                                         source, f"shard entry {i}"))
            for i, entry in enumerate(_typed(values["shards"], list, source, "shards")))
        if values["params"] is not None:
            values["params"] = IndexParams(**_checked_fields(
                IndexParams, _typed(values["params"], dict, source, "params"), source,
                "field 'params'"))
        if values["completeness"] is not None:
            completeness = _checked_fields(
                Completeness, _typed(values["completeness"], dict, source, "completeness"),
                source, "field 'completeness'")
            completeness["missing_days"] = tuple(completeness["missing_days"])
            values["completeness"] = Completeness(**completeness)
        return cls(**values)


def _file_fields(cls) -> list[str]:
    return [f.name for f in fields(cls) if f.name != "build_dir"]


def _jsonable(value):
    """Tuples as lists and dataclasses as objects, all the way down."""
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if is_dataclass(value):
        return {name: _jsonable(getattr(value, name)) for name in _file_fields(type(value))}
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _typed(value, kind: type, source: str, name: str):
    if not isinstance(value, kind):
        raise JobInputError(f"{source}: field {name!r} must be a JSON "
                            f"{'array' if kind is list else 'object'}, got {value!r}")
    return value


def _checked_fields(cls, data: dict, source: str, what: str) -> dict:
    """`data` as the keyword arguments of dataclass `cls`: JobInputError naming the field
    for one that `cls` does not have or that `data` lacks."""
    names = _file_fields(cls)
    unknown = [key for key in data if key not in names]
    if unknown:
        raise JobInputError(f"{source}: unknown field {unknown[0]!r} in {what} (expected "
                            f"{', '.join(names)})")
    missing = [name for name in names if name not in data]
    if missing:
        raise JobInputError(f"{source}: {what} lacks field {missing[0]!r}")
    for f in fields(cls):
        kinds = _SCALARS.get(f.type)
        value = data.get(f.name)
        if kinds and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise JobInputError(f"{source}: field {f.name!r} of {what} must be {f.type}, "
                                f"got {value!r}")
    return dict(data)
