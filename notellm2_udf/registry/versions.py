"""The model registry: which checkpoint serves, which one is rolling out, the ones before.

    <models_root>/
        base/                      the first checkpoint (training starts from it)
        candidates/<day>/model/    what a training run wrote
        current -> candidates/...  the promoted checkpoint (the train DAG's `promote` sets it)
        versions/<model_version>/  immutable copies (hard links) of the adopted checkpoints
        registry.json              serving version, pending rollout, history, withdrawn
        promotions.jsonl           the train DAG's decisions

Promotion only repoints `current`. The daily pipeline *adopts* it: the checkpoint is copied
(hard links, so no bytes move on one filesystem) to `versions/<model_version>/`, a
directory nothing writes again, and becomes the *pending* version. Jobs resolve a version
once, on the driver, and hand its `versions/` directory to executors, so a later promotion
cannot mix two models in one run. The pending version becomes *serving* only when `publish`
has published a day whose index was built from it (every day of the window embedded by it,
related lists validated): one atomic rewrite of registry.json. Rollback rewrites it back.

registry.json is replaced whole (write beside, rename), under an flock on registry.lock,
so readers see the old state or the new one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from notellm2_udf.atomic_files import staged_directory, write_text_atomic
from notellm2_udf.model.version import files_signature, model_version

STATE = "registry.json"
LOCK = "registry.lock"
VERSIONS = "versions"
EMPTY_STATE = {"serving": None, "pending": None, "history": [], "withdrawn": [], "sources": {}}


class RegistryError(ValueError):
    """The registry cannot do what was asked (no previous version, unknown version...)."""


@dataclass(frozen=True)
class PinnedModel:
    """A model resolved once for a whole run: its immutable directory and version."""

    version: str
    dir: str


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_state(root: str | Path) -> dict:
    path = Path(root) / STATE
    if not path.is_file():
        return json.loads(json.dumps(EMPTY_STATE))
    return {**json.loads(json.dumps(EMPTY_STATE)), **json.loads(path.read_text())}


@contextmanager
def updating(root: str | Path) -> Iterator[dict]:
    """The state to change in place; written back atomically when the block ends."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read_state(root)
        yield state
        write_text_atomic(root / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")


def promoted_dir(root: str | Path) -> Path:
    """What training promoted last: the `current` link's target, else `base`."""
    link = Path(root) / "current"
    return link.resolve() if link.exists() else Path(root) / "base"


def _pinned(entry: dict | None) -> PinnedModel | None:
    return PinnedModel(entry["version"], entry["dir"]) if entry else None


def serving(root: str | Path) -> PinnedModel | None:
    return _pinned(read_state(root)["serving"])


def pending(root: str | Path) -> PinnedModel | None:
    return _pinned(read_state(root)["pending"])


def _source_version(state: dict, source: Path) -> str:
    """model_version of `source`, hashed again only when its files changed since last time."""
    signature = files_signature(source)
    known = state["sources"].get(str(source))
    if known and known["signature"] == signature:
        return known["version"]
    version = model_version(source)
    state["sources"][str(source)] = {"signature": signature, "version": version}
    return version


def _adopt(root: Path, source: Path, version: str) -> PinnedModel:
    """`versions/<version>/`, made from `source` if absent (hard links, else copies)."""
    target = root / VERSIONS / version
    if not target.is_dir():
        with staged_directory(target) as staging:
            shutil.copytree(source, staging, dirs_exist_ok=True, copy_function=_link_or_copy)
        if model_version(target) != version:
            shutil.rmtree(target)
            raise RegistryError(f"{source} changed while it was adopted; try again")
    return PinnedModel(version, str(target))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(source, target)


def resolve_serving(root: str | Path, day: str) -> PinnedModel:
    """The serving version; the first run adopts the promoted checkpoint as serving (there is
    no window to roll out from yet)."""
    root = Path(root)
    with updating(root) as state:
        if state["serving"] is None:
            source = promoted_dir(root)
            if not source.is_dir():
                raise RegistryError(f"nothing to serve: neither {root}/current nor {root}/base")
            model = _adopt(root, source, _source_version(state, source))
            state["serving"] = {"version": model.version, "dir": model.dir, "since": day,
                                "source": str(source), "at": now()}
        return _pinned(state["serving"])


def resolve_pending(root: str | Path) -> PinnedModel | None:
    """The version rolling out: the promoted checkpoint if it is neither serving nor withdrawn
    (adopted on first sight; a newer promotion replaces an unfinished rollout)."""
    root = Path(root)
    with updating(root) as state:
        source = promoted_dir(root)
        if not source.is_dir() or state["serving"] is None:
            return _pinned(state["pending"])
        version = _source_version(state, source)
        if version == state["serving"]["version"] or version in state["withdrawn"]:
            return _pinned(state["pending"])
        if state["pending"] is None or state["pending"]["version"] != version:
            model = _adopt(root, source, version)
            state["pending"] = {"version": version, "dir": model.dir, "source": str(source),
                                "adopted_at": now(), "days_done": []}
        return _pinned(state["pending"])


def record_progress(root: str | Path, version: str, window: list[str], done: list[str]) -> None:
    """What the pending version's rollout has embedded of the window it is working on."""
    with updating(root) as state:
        if state["pending"] and state["pending"]["version"] == version:
            state["pending"].update(window=window, days_done=sorted(done), updated_at=now())


def switch(root: str | Path, version: str, day: str) -> bool:
    """Make the pending `version` serving from `day` on; False if it is not the pending one."""
    with updating(root) as state:
        if not state["pending"] or state["pending"]["version"] != version:
            return False
        if state["serving"]:
            state["history"].append({**state["serving"], "until": day})
        state["serving"] = {key: state["pending"][key] for key in ("version", "dir", "source")}
        state["serving"].update(since=day, at=now())
        state["pending"] = None
        return True


def rollback(root: str | Path) -> tuple[PinnedModel, PinnedModel]:
    """Serve the previous version again; the one it replaces is withdrawn (not adopted again
    from `current`). Returns (withdrawn, serving now)."""
    with updating(root) as state:
        if not state["history"] or state["serving"] is None:
            raise RegistryError("no previous serving version to roll back to")
        previous = state["history"].pop()
        if not Path(previous["dir"]).is_dir():
            raise RegistryError(f"previous version {previous['version']} was pruned "
                                f"({previous['dir']} is gone)")
        withdrawn = state["serving"]
        state["withdrawn"].append(withdrawn["version"])
        state["serving"] = {**{k: v for k, v in previous.items() if k != "until"},
                            "since": previous.get("since"), "at": now(), "rolled_back": True}
        return _pinned(withdrawn), _pinned(state["serving"])


def withdraw(root: str | Path, version: str) -> None:
    """Stop rolling out `version` and never adopt it again (a failed validation, a regret)."""
    with updating(root) as state:
        if state["serving"] and state["serving"]["version"] == version:
            raise RegistryError(f"{version} is serving: roll back instead")
        if state["pending"] and state["pending"]["version"] == version:
            state["pending"] = None
        if version not in state["withdrawn"]:
            state["withdrawn"].append(version)


def prune(root: str | Path, keep: int) -> list[str]:
    """Delete `versions/<v>/` of all but the serving, pending and `keep - 1` latest previous
    versions; returns the deleted versions (their rows stay in the tables)."""
    if keep < 1:
        raise RegistryError(f"keep must be >= 1, got {keep}")
    with updating(root) as state:
        previous = state["history"][-(keep - 1):] if keep > 1 else []
        kept = {entry["version"] for entry in (state["serving"], state["pending"], *previous)
                if entry}
        removed = []
        for path in sorted((Path(root) / VERSIONS).glob("*")):
            if path.is_dir() and path.name not in kept:
                shutil.rmtree(path)
                removed.append(path.name)
        state["history"] = [entry for entry in state["history"]
                            if entry["version"] not in removed]
        return removed


def status(root: str | Path) -> dict:
    """What serves, what rolls out and how far it got, what was before."""
    state = read_state(root)
    pending_entry = state["pending"]
    progress = None
    if pending_entry and pending_entry.get("window"):
        progress = f"{len(pending_entry['days_done'])}/{len(pending_entry['window'])} days"
    return {"serving": state["serving"], "pending": pending_entry, "progress": progress,
            "previous": state["history"][-1] if state["history"] else None,
            "history": state["history"], "withdrawn": state["withdrawn"],
            "versions_on_disk": sorted(p.name for p in (Path(root) / VERSIONS).glob("*")
                                       if p.is_dir())}
