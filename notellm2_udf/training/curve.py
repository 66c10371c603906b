"""The training curve as a PNG: loss (total, multimodal, visual) and temperature by step."""

from __future__ import annotations

from pathlib import Path


def plot_training_curve(history: list[dict], path: str | Path) -> None:
    """`history`: the per-step records of loop.train_process (step, loss, multimodal, visual,
    temperature; eval_loss at validation steps)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on executors and CI
    import matplotlib.pyplot as plt

    steps = [record["step"] for record in history]
    figure, (loss_axis, temperature_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "multimodal", "visual"):
        loss_axis.plot(steps, [record[key] for record in history], label=key)
    validated = [record for record in history if "eval_loss" in record]
    if validated:
        loss_axis.plot([record["step"] for record in validated],
                       [record["eval_loss"] for record in validated], "o-", label="validation")
    loss_axis.set(xlabel="step", ylabel="InfoNCE loss", title="training loss")
    loss_axis.legend()
    temperature_axis.plot(steps, [record["temperature"] for record in history])
    temperature_axis.set(xlabel="step", ylabel="t (scale = exp t)", title="temperature")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
