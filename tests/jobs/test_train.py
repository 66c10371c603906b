"""jobs/train.py end to end in this process (the session's Spark), on Delta sample tables."""

import json

from jobs import train
from tests.support.training_data import contract_pairs_copy


def _args(sample_locations, model_dir, output, *extra):
    notes_uri, pairs_uri = sample_locations
    return ["--pairs", pairs_uri, "--notes", notes_uri, "--init-model", str(model_dir),
            "--output", str(output), "--batch-pairs", "8", "--lr", "1e-3", *extra]


def test_train_job_stops_resumes_and_writes_its_outputs(sample_locations, tiny_checkpoint,
                                                         tmp_path):
    output = tmp_path / "run"
    assert train.main(_args(sample_locations, tiny_checkpoint, output, "--stop-at-step", "2")) == 0
    assert not (output / "model").exists()  # interrupted: its checkpoint only
    assert [p.name for p in (output / "checkpoints").iterdir()] == ["step-00000002"]

    assert train.main(_args(sample_locations, tiny_checkpoint, output, "--resume",
                            "--checkpoint-every", "2")) == 0
    run = json.loads((output / "train_run.json").read_text())
    assert run["held_out_from"] == "2026-11-21" and run["resumed_at_step"] == 2
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, run["steps_per_epoch"] + 1))
    assert {"loss", "multimodal", "visual", "temperature", "lr", "seconds", "pairs_per_s"} <= set(
        log[0])
    assert (output / "model" / "model.safetensors").exists()
    assert (output / "training_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_train_job_refuses_a_split_that_leaves_nothing_to_train(
        sample_locations, tiny_checkpoint, tmp_path, capsys):
    code = train.main(_args(sample_locations, tiny_checkpoint, tmp_path / "x",
                            "--holdout-days", "2"))
    assert code == 2
    assert "leaves none to train on" in capsys.readouterr().err


def test_a_pairs_table_of_exactly_the_contract_columns_trains(
        spark, sample_locations, tiny_checkpoint, tmp_path):
    """note_id, related_note_id, score, dt: no pair_kind (a sample-data-only column)."""
    notes_uri, pairs_uri = sample_locations
    real_uri = contract_pairs_copy(spark, pairs_uri, str(tmp_path / "real_pairs"))
    output = tmp_path / "run"
    assert train.main(_args((notes_uri, real_uri), tiny_checkpoint, output,
                            "--stop-at-step", "1")) == 0
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1] and log[0]["loss"] > 0


def test_train_job_validates_on_the_last_training_days_and_keeps_the_best(
        sample_locations, tiny_checkpoint, tmp_path, capsys):
    from notellm2_udf.model.checkpoint import model_version

    output = tmp_path / "run"
    # Both sample days before the held-out period: the first trains, the second validates.
    assert train.main(_args(sample_locations, tiny_checkpoint, output,
                            "--held-out-from", "2026-11-22", "--validation-days", "1",
                            "--eval-every", "2")) == 0
    run = json.loads((output / "train_run.json").read_text())
    assert run["validation_from"] == "2026-11-21" and run["eval_every"] == 2
    assert run["validation_batches"] >= 1
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    validated = {r["step"]: r["eval_loss"] for r in log if "eval_loss" in r}
    assert sorted(validated) == list(range(2, run["steps_per_epoch"] + 1, 2))
    best = json.loads((output / "best" / "best.json").read_text())
    assert validated[best["step"]] == min(validated.values()) == best["eval_loss"]
    assert model_version(output / "model") == model_version(output / "best" / "model")
    out = capsys.readouterr().out
    assert f"best_step={best['step']}" in out and "validation_from=2026-11-21" in out

    code = train.main(_args(sample_locations, tiny_checkpoint, tmp_path / "x",
                            "--validation-days", "1"))
    assert code == 2
    assert "for validation leaves none to train on" in capsys.readouterr().err
