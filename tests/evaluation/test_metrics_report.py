"""The report files."""

import json

from notellm2_udf.evaluation.metrics_report import markdown_report, write_report

METRICS = {
    "full": {"recall@10": 0.5, "recall@100": 0.75},
    "image": {"recall@10": 0.125, "recall@100": float("nan")},
    "subsets": {"full": {"short_query": {"recall@10": 0.25, "recall@100": 1.0}}},
    "counts": {"test_pairs": 4}, "model_version": "abc", "held_out_from": "2026-11-21",
}


def test_write_report_writes_json_markdown_and_png(tmp_path):
    write_report(tmp_path / "report", METRICS)
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["full"] == {"recall@10": 0.5, "recall@100": 0.75}
    assert saved["subsets"]["full"]["short_query"]["recall@100"] == 1.0
    assert (tmp_path / "report" / "recall_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "metrics.json", "recall_at_k.png", "report.md"]


def test_markdown_table_rows():
    lines = markdown_report(METRICS).splitlines()
    assert "| inputs | pairs | R@10 | R@100 |" in lines
    assert "| image + text | all | 50.00 | 75.00 |" in lines
    assert "| image + text | short_query | 25.00 | 100.00 |" in lines
    assert "| image only | all | 12.50 | - |" in lines
