"""scripts/run_jobs.py: several jobs in one spark-submit, in order, stopping at the first
failure with its exit code."""

from __future__ import annotations

import importlib.util

import pytest

from tests.support.processes import REPO_ROOT


@pytest.fixture(scope="module")
def run_jobs():
    spec = importlib.util.spec_from_file_location("run_jobs", REPO_ROOT / "scripts" /
                                                  "run_jobs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_line_splits_into_jobs_and_refuses_unknown_or_empty_parts(run_jobs):
    assert run_jobs.job_argvs(["publish", "--date", "D", "---", "build_index", "--x"]) == [
        ["publish", "--date", "D"], ["build_index", "--x"]]
    assert "embed_notes" in run_jobs.JOBS and "__init__" not in run_jobs.JOBS
    for argv in (["nope"], ["publish", "---"], []):
        with pytest.raises(ValueError, match="must start with a job among"):
            run_jobs.job_argvs(argv)


def test_jobs_run_in_order_and_the_first_failure_ends_the_run(run_jobs, monkeypatch, capsys):
    from jobs import build_index, publish, related_notes

    calls = []
    monkeypatch.setattr(build_index, "main", lambda argv: calls.append(("build", argv)) or 0)
    monkeypatch.setattr(related_notes, "main", lambda argv: calls.append(("related", argv)) or 2)
    monkeypatch.setattr(publish, "main", lambda argv: calls.append(("publish", argv)) or 0)
    code = run_jobs.main(["build_index", "--a", "---", "related_notes", "--b", "---",
                          "publish", "--c"])
    assert code == 2
    assert calls == [("build", ["--a"]), ("related", ["--b"])]
    out = capsys.readouterr().out
    assert "run_jobs: 1/3 build_index exited 0" in out and "2/3 related_notes exited 2" in out
    assert run_jobs.main(["nope"]) == 2
    assert "run_jobs: each part must start with a job" in capsys.readouterr().err
