"""The training curve: a PNG of the logged losses, also for a run without validation."""

from __future__ import annotations

from notellm2_udf.training.curve import plot_training_curve


def _history(validated: bool) -> list[dict]:
    history = [{"step": step, "loss": 2.0 / step, "multimodal": 2.1 / step,
                "visual": 1.5 / step, "temperature": 3.0 + step / 10} for step in range(1, 6)]
    if validated:
        history[-1].update(eval_loss=0.5, eval_multimodal=0.55, eval_visual=0.4)
    return history


def test_the_curve_is_a_png_with_or_without_validation(tmp_path):
    images = {}
    for validated in (False, True):
        path = tmp_path / f"curve-{validated}.png"
        plot_training_curve(_history(validated), path)
        images[validated] = path.read_bytes()
        assert images[validated][:8] == b"\x89PNG\r\n\x1a\n"
    assert images[True] != images[False]  # the validation point is drawn
