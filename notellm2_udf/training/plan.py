"""The run's plan, made on the driver: its converters and steps, when it validates and
checkpoints, and each step's learning rate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from notellm2_udf.training.settings import TrainSettings


@dataclass
class TrainPlan:
    """What the driver prepared: petastorm converters for epochs start_epoch.. (one per rank),
    and where to start. Picklable, for TorchDistributor."""

    settings: TrainSettings
    converters: list[list] = field(default_factory=list)  # [epoch - start_epoch][rank]
    validation_converters: list = field(default_factory=list)  # [rank]; empty: no validation
    validation_batches: int = 0  # global batches of validation pairs
    steps_per_epoch: int = 0
    start_step: int = 0
    resume_from: str | None = None  # a checkpoint step directory

    @property
    def total_steps(self) -> int:
        return self.settings.epochs * self.steps_per_epoch

    @property
    def start_epoch(self) -> int:
        return self.start_step // self.steps_per_epoch

    def validates_at(self, step: int) -> bool:
        """Validation after `step` (1-based): every eval_every steps, as the Trainer's
        evaluation_strategy="steps" (the last step only when it is a multiple)."""
        return bool(self.validation_converters) and step % self.settings.eval_every == 0

    def checkpoints_at(self, step: int) -> bool:
        """A resumable checkpoint after `step`: every checkpoint_every steps, and at every
        validation (as the authors' save_steps = eval_steps), so that the latest checkpoint
        is never older than OUTPUT/best."""
        every = self.settings.checkpoint_every
        return bool(every and step % every == 0) or self.validates_at(step)


def learning_rate(step: int, total_steps: int, settings: TrainSettings) -> float:
    """The learning rate of optimizer step `step` (counted from 0).

    warmup_decay_log: DeepSpeed's WarmupDecayLR with its default log warm-up, as the
    authors ran it: Ws = max(2, ceil(warmup_ratio T)); f(i) = lr ln(i + 1) / ln(Ws) for
    i < Ws, else lr max(0, (T - i) / max(1, T - Ws)). Their scheduler starts at -1 and steps
    after each optimizer step, so step 0 runs at the optimizer's configured lr and step s >= 1
    at f(s - 1); we keep that quirk (step 1 is then at 0).
    linear: the Hugging Face Trainer's linear warm-up and decay (our v1).
    """
    if settings.lr_schedule == "linear":
        warmup = max(1, math.ceil(settings.warmup_ratio * total_steps))
        if step < warmup:
            return settings.lr * (step + 1) / warmup
        return settings.lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    if step == 0:
        return settings.lr
    i = step - 1
    warmup = max(2, math.ceil(settings.warmup_ratio * total_steps))
    if i < warmup:
        return settings.lr * math.log(i + 1) / math.log(warmup)
    return settings.lr * max(0.0, (total_steps - i) / max(1, total_steps - warmup))
