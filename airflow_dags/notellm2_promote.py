"""Promote a trained model only if its Recall@100 does not drop below the current model's.

The model registry is a directory on storage every executor mounts (the jobs read
checkpoints as local paths):

    <models_root>/base                the checkpoint training starts from
    <models_root>/candidates/<day>/   what the training run of <day> wrote (model/ in it)
    <models_root>/reports/<day>/{candidate,current}/metrics.json   evaluate.py's reports
    <models_root>/current             symlink to the promoted checkpoint (the daily DAG's model)
    <models_root>/promotions.jsonl    one line per decision, promoted or not

Both models are evaluated on the same pairs in the same run, so the comparison is fair even
though the pairs change from week to week. The link is swapped atomically (a new symlink
`os.replace`d over the old), so a daily run sees the old model or the new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

METRIC = "recall@100"
INPUTS = "full"


class PromotionError(ValueError):
    """A report without the metric, or a `current` that is not a symlink."""


def current_model(models_root: str) -> str:
    """The model now served: the `current` link's target, else the base checkpoint."""
    link = Path(models_root) / "current"
    return str(link.resolve()) if link.exists() else str(Path(models_root) / "base")


def read_metric(metrics_path: str, inputs: str = INPUTS, metric: str = METRIC) -> float:
    try:
        report = json.loads(Path(metrics_path).read_text())
        return float(report[inputs][metric])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PromotionError(f"no {inputs}.{metric} in {metrics_path}: {err!r}") from None


def decide_and_promote(models_root: str, day: str, candidate_dir: str,
                       candidate_metrics: str, current_metrics: str) -> dict:
    """Repoint `<models_root>/current` to `candidate_dir` if its metric >= the current one's.

    Returns the decision (also appended to promotions.jsonl).
    """
    candidate_score = read_metric(candidate_metrics)
    current_score = read_metric(current_metrics)
    promoted = candidate_score >= current_score
    decision = {"day": day, "candidate": candidate_dir, "previous": current_model(models_root),
                "metric": f"{INPUTS}.{METRIC}", "candidate_score": candidate_score,
                "current_score": current_score, "promoted": promoted}
    if promoted:
        swap_link(Path(models_root) / "current", Path(candidate_dir))
    with open(Path(models_root) / "promotions.jsonl", "a") as log:
        log.write(json.dumps(decision) + "\n")
    return decision


def swap_link(link: Path, target: Path) -> None:
    if link.exists() and not link.is_symlink():
        raise PromotionError(f"{link} is not a symlink; move it away to let promotion manage it")
    staging = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target.resolve())
    os.replace(staging, link)


def main(argv: list[str] | None = None) -> int:
    """The train DAG's promote step by hand (the demo uses it); prints the decision.

        python airflow_dags/notellm2_promote.py --models-root DIR --day D --candidate DIR \
            --candidate-metrics FILE --current-metrics FILE

    Exit 0 whether or not it promoted, 2 on a report without the metric.
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    for flag in ("--models-root", "--day", "--candidate", "--candidate-metrics",
                 "--current-metrics"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args(argv)
    try:
        decision = decide_and_promote(args.models_root, args.day, args.candidate,
                                      args.candidate_metrics, args.current_metrics)
    except PromotionError as err:
        print(f"promote: {err}")
        return 2
    print(json.dumps(decision))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
