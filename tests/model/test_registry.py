"""The model registry on fake checkpoints (model_version hashes files; nothing is loaded)."""

from __future__ import annotations

import json
import os

import pytest

from notellm2_udf.cli.main import main as notellm2
from notellm2_udf.model.version import model_version
from notellm2_udf.registry import versions as registry


def checkpoint(path, weights: str):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "notellm2"}))
    (path / "model.safetensors").write_text(weights)
    return path


def promote(root, name: str, weights: str):
    target = checkpoint(root / "candidates" / name / "model", weights)
    link = root / "current"
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    return model_version(target)


def test_a_promoted_model_is_pending_until_switched_then_serves(tmp_path):
    root = tmp_path / "models"
    base = model_version(checkpoint(root / "base", "w0"))
    serving = registry.resolve_serving(root, "2026-11-01")
    assert serving.version == base
    assert serving.dir == str(root / "versions" / base)
    assert registry.resolve_pending(root) is None

    v1 = promote(root, "d1", "w1")
    pending = registry.resolve_pending(root)
    assert pending.version == v1 and model_version(pending.dir) == v1
    # Adopted by hard links: no bytes copied, and a retrain that rewrites the candidate
    # directory (new files, renamed into place) leaves the adopted version intact.
    source = root / "candidates" / "d1" / "model" / "model.safetensors"
    assert os.stat(source).st_ino == os.stat(f"{pending.dir}/model.safetensors").st_ino
    assert registry.resolve_serving(root, "2026-11-02").version == base

    registry.record_progress(root, v1, ["2026-11-01", "2026-11-02"], ["2026-11-01"])
    assert registry.status(root)["progress"] == "1/2 days"
    assert not registry.switch(root, "someone-else", "2026-11-02")
    assert registry.switch(root, v1, "2026-11-02")
    status = registry.status(root)
    assert status["serving"]["version"] == v1 and status["serving"]["since"] == "2026-11-02"
    assert status["pending"] is None and status["previous"]["version"] == base
    assert registry.resolve_pending(root) is None      # current is what serves


def test_rollback_withdraws_and_a_newer_promotion_replaces_an_unfinished_rollout(tmp_path):
    root = tmp_path / "models"
    checkpoint(root / "base", "w0")
    base = registry.resolve_serving(root, "2026-11-01").version
    v1 = promote(root, "d1", "w1")
    registry.resolve_pending(root)
    registry.switch(root, v1, "2026-11-02")

    assert notellm2(["models", "rollback", "--models-root", str(root)]) == 0
    assert registry.serving(root).version == base
    assert registry.resolve_pending(root) is None      # v1 withdrawn: not adopted again
    assert registry.status(root)["withdrawn"] == [v1]
    assert notellm2(["models", "rollback", "--models-root", str(root)]) == 2

    v2 = promote(root, "d2", "w2")
    assert registry.resolve_pending(root).version == v2
    v3 = promote(root, "d3", "w3")
    assert registry.resolve_pending(root).version == v3
    registry.withdraw(root, v3)
    assert registry.pending(root) is None and registry.resolve_pending(root) is None
    with pytest.raises(registry.RegistryError, match="serving"):
        registry.withdraw(root, base)


def test_prune_keeps_serving_pending_and_the_previous_ones(tmp_path, capsys):
    root = tmp_path / "models"
    checkpoint(root / "base", "w0")
    versions = [registry.resolve_serving(root, "2026-11-01").version]
    for day in ("d1", "d2", "d3"):
        versions.append(promote(root, day, f"w-{day}"))
        registry.resolve_pending(root)
        registry.switch(root, versions[-1], day)
    pending = promote(root, "d4", "w-d4")
    registry.resolve_pending(root)
    assert registry.prune(root, 2) == sorted(versions[:2])
    assert sorted(registry.status(root)["versions_on_disk"]) == sorted([*versions[2:], pending])
    assert [entry["version"] for entry in registry.status(root)["history"]] == [versions[2]]
    assert notellm2(["models", "status", "--models-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"serving:   {versions[3]}" in out and f"pending:   {pending}" in out
    assert f"previous:  {versions[2]}" in out


def test_an_unchanged_source_is_not_hashed_again(tmp_path, monkeypatch):
    root = tmp_path / "models"
    checkpoint(root / "base", "w0")
    registry.resolve_serving(root, "2026-11-01")
    promote(root, "d1", "w1")
    registry.resolve_pending(root)
    monkeypatch.setattr(registry, "model_version", lambda _: pytest.fail("hashed again"))
    registry.resolve_pending(root)
