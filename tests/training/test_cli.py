"""The public contract: both jobs through spark-submit, as users run them (slow: two JVMs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_spark_submit_train_then_evaluate(sample_locations, tiny_checkpoint, tmp_path):
    env = {**os.environ, "SPARK_CONF_DIR": str(tmp_path / "conf"),
           "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PATH": f"{BIN}:{os.environ['PATH']}"}  # torchrun for TorchDistributor
    subprocess.run([str(BIN / "notellm2"), "spark-defaults", "--jars-dir",
                    str(REPO_ROOT / ".cache" / "jars"), "--lakehouse", str(tmp_path / "lake"),
                    "--write"], env=env, check=True, capture_output=True)
    notes_uri, pairs_uri = sample_locations

    def submit(*args):
        result = subprocess.run([str(BIN / "spark-submit"), "--master", "local[2]", *args],
                                env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    out = submit("jobs/train.py", "--pairs", pairs_uri, "--notes", notes_uri,
                 "--init-model", str(tiny_checkpoint), "--output", str(tmp_path / "run"),
                 "--batch-pairs", "4", "--num-processes", "2", "--lr", "1e-3")
    assert "train done" in out
    out = submit("jobs/evaluate.py", "--pairs", pairs_uri, "--notes", notes_uri,
                 "--model", str(tmp_path / "run" / "model"), "--report", str(tmp_path / "report"),
                 "--inputs", "full,text", "--ks", "10,100")
    assert "evaluate done" in out
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(metrics["full"]) == {"recall@10", "recall@100"} and "image" not in metrics
    assert 0.0 < metrics["full"]["recall@10"] <= metrics["full"]["recall@100"] <= 1.0
