"""The evaluation report: metrics.json (machine-readable), report.md, recall_at_k.png.

metrics.json: {"full": {"recall@10": ..}, "image": {..}, "text": {..},   (one per --inputs)
               "subsets": {"full": {"short_query": {"recall@10": ..}, ..}, ..},
               "counts": {..}, "model_version": .., "held_out_from": ..}
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from notellm2_udf.atomic_files import write_text_atomic

INPUT_TITLES = {"full": "image + text", "image": "image only",
                "text": "text only (zero image, the authors')",
                "text_no_image": "text only (no image segment)"}


def write_report(report_dir: str | Path, metrics: dict) -> None:
    directory = Path(report_dir)
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(directory / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    write_text_atomic(directory / "report.md", markdown_report(metrics))
    plot_recall(metrics, directory / "recall_at_k.png")


def input_names(metrics: dict) -> list[str]:
    return [name for name in INPUT_TITLES if name in metrics]


def markdown_report(metrics: dict) -> str:
    """One row per input and subset, one column per K (recall in %)."""
    names = input_names(metrics)
    ks = list(metrics[names[0]]) if names else []
    lines = [f"# Retrieval evaluation (model {metrics.get('model_version')}, held out from "
             f"{metrics.get('held_out_from')})", "",
             "Counts: " + ", ".join(f"{k} {v}" for k, v in metrics.get("counts", {}).items()), "",
             "| inputs | pairs | " + " | ".join(k.replace("recall@", "R@") for k in ks) + " |",
             "|---|---|" + "---|" * len(ks)]
    for name in names:
        rows = [("all", metrics[name])] + list(metrics.get("subsets", {}).get(name, {}).items())
        for subset, recalls in rows:
            cells = " | ".join(_percent(recalls.get(k)) for k in ks)
            lines.append(f"| {INPUT_TITLES[name]} | {subset} | {cells} |")
    return "\n".join(lines) + "\n"


def plot_recall(metrics: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on the driver of a cluster job
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for name in input_names(metrics):
        ks = [int(k.split("@")[1]) for k in metrics[name]]
        axis.plot(ks, [100 * v for v in metrics[name].values()], marker="o",
                  label=INPUT_TITLES[name])
    axis.set(xscale="log", xlabel="K", ylabel="Recall@K (%)", ylim=(0, 100),
             title="held-out pairs, all queries")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _percent(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"
