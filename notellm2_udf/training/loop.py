"""The per-process training function: run directly (one process) or by TorchDistributor.

Every process loads the initial model, reads its own petastorm dataset (one per rank and
epoch, made on the driver), embeds its B pairs, all-gathers the embeddings, computes the
same loss over the global batch, sums gradients and takes the same AdamW step. Rank 0 writes
checkpoints, the final model, the log and the curve.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from notellm2_udf.model.images import DEFAULT_MAX_PIXELS

log = logging.getLogger("notellm2.train")


@dataclass(frozen=True)
class TrainSettings:
    """The run's hyper-parameters and files (the paper's 7B recipe as defaults)."""

    init_model_dir: str
    output_dir: str
    epochs: int = 1
    batch_pairs: int = 16  # per process
    lr: float = 3e-6
    weight_decay: float = 0.001
    warmup_ratio: float = 0.1
    seed: int = 0
    checkpoint_every: int = 0  # steps; 0 = only at the end
    stop_at_step: int | None = None  # stop there (checkpointed) to continue with --resume
    use_gpu: bool = False
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    reader_workers: int = 1


@dataclass
class TrainPlan:
    """What the driver prepared: petastorm converters for epochs start_epoch.. (one per rank),
    and where to start. Picklable, for TorchDistributor."""

    settings: TrainSettings
    converters: list[list] = field(default_factory=list)  # [epoch - start_epoch][rank]
    steps_per_epoch: int = 0
    start_step: int = 0
    resume_from: str | None = None  # a checkpoint step directory

    @property
    def total_steps(self) -> int:
        return self.settings.epochs * self.steps_per_epoch

    @property
    def start_epoch(self) -> int:
        return self.start_step // self.steps_per_epoch


def learning_rate(step: int, total_steps: int, settings: TrainSettings) -> float:
    """Linear warm-up over warmup_ratio of the steps, then linear decay to 0 (the Hugging Face
    Trainer's default schedule, which the authors' code uses). `step` counts from 0."""
    warmup = max(1, math.ceil(settings.warmup_ratio * total_steps))
    if step < warmup:
        return settings.lr * (step + 1) / warmup
    return settings.lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup))


@dataclass
class _Process:
    """What one training process holds while it runs."""

    settings: TrainSettings
    rank: int
    processes: int
    device: object
    model: object
    processor: object
    temperature: object
    optimizer: object
    trainable: list
    history: list[dict]

    def state(self, step: int):
        from notellm2_udf.training.state import TrainingState

        return TrainingState(step, self.optimizer.state_dict(), self.temperature.value,
                             self.history)


def train_process(plan: TrainPlan) -> dict | None:
    """Train from plan.start_step to the end (or stop_at_step); rank 0 returns a summary."""
    from notellm2_udf.training import distributed
    from notellm2_udf.training.data import LoaderSettings, open_batches

    settings = plan.settings
    distributed.start(settings.use_gpu)
    run = _start_process(plan)
    step = plan.start_step
    last_step = min(plan.total_steps, settings.stop_at_step or plan.total_steps)
    for epoch in range(plan.start_epoch, settings.epochs):
        if step >= last_step:
            break
        loader_settings = LoaderSettings(
            str(_model_dir(plan)), settings.batch_pairs, seed=settings.seed, epoch=epoch,
            max_image_pixels=settings.max_image_pixels, reader_workers=settings.reader_workers)
        steps_here = min((epoch + 1) * plan.steps_per_epoch, last_step) - step
        converter = plan.converters[epoch - plan.start_epoch][run.rank]
        with open_batches(converter, loader_settings) as batches:
            # A step's time runs from the end of the previous one: waiting for data counts.
            last_end = time.monotonic()
            for batch in itertools.islice(batches, steps_here):
                measured = _train_step(run, batch, step, plan.total_steps)
                step += 1
                seconds, last_end = time.monotonic() - last_end, time.monotonic()
                record = {"step": step, "epoch": epoch, **measured, "seconds": seconds,
                          "pairs_per_s": settings.batch_pairs * run.processes / seconds}
                run.history.append(record)
                if run.rank == 0:
                    _after_step(run, record, step, plan.total_steps)
    summary = _finish(run, plan, step) if run.rank == 0 else None
    distributed.stop()
    return summary


def _model_dir(plan: TrainPlan) -> Path | str:
    return Path(plan.resume_from) / "model" if plan.resume_from else plan.settings.init_model_dir


def _start_process(plan: TrainPlan) -> _Process:
    """The model (fp32 master weights; bf16 only inside autocast on a GPU), the optimizer and
    the temperature of this process, restored from plan.resume_from if given."""
    import torch

    from notellm2_udf.model.checkpoint import load_checkpoint
    from notellm2_udf.training import distributed
    from notellm2_udf.training.loss import Temperature
    from notellm2_udf.training.state import load_training_state

    settings = plan.settings
    rank, processes = distributed.world()
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if settings.use_gpu else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // processes))
    model, processor = load_checkpoint(_model_dir(plan), device=device)
    model.train()
    model.vision_tower.eval()  # frozen: no dropout noise either
    temperature = Temperature().to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": settings.weight_decay},
        # Biases, norms, the no-image vector and the temperature are not decayed (as in CLIP).
        {"params": [p for p in trainable if p.ndim < 2] + [temperature.value], "weight_decay": 0.0},
    ], lr=settings.lr)
    history: list[dict] = []
    if plan.resume_from:
        state = load_training_state(plan.resume_from)
        optimizer.load_state_dict(state.optimizer)
        with torch.no_grad():
            temperature.value.copy_(state.temperature)
        history = state.history
    return _Process(settings, rank, processes, device, model, processor, temperature, optimizer,
                    trainable, history)


def _train_step(run: _Process, batch, step: int, total_steps: int) -> dict:
    """One optimizer step on the global batch; the record of its losses and rates."""
    import torch

    from notellm2_udf.training import distributed
    from notellm2_udf.training.data import model_inputs
    from notellm2_udf.training.loss import training_loss

    settings = run.settings
    # Re-seeded every step (dropout): a resumed run draws what an uninterrupted one would.
    torch.manual_seed(zlib.crc32(f"{settings.seed}:{step}:{run.rank}".encode()))
    lr = learning_rate(step, total_steps, settings)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    inputs = {k: v.to(run.device) for k, v in model_inputs(batch).items()}
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.device.type == "cuda"):
        output = run.model(**inputs)
    losses = training_loss(
        distributed.gather_with_local_grad(output.embedding),
        distributed.gather_with_local_grad(output.visual_embedding),
        # gloo has no bool all_gather
        distributed.gather_with_local_grad(inputs["has_image"].long()).bool(),
        global_partners(settings.batch_pairs, run.processes, run.device),
        run.temperature.scale(), run.model.config.uses_micl)
    run.optimizer.zero_grad(set_to_none=False)
    losses["loss"].backward()
    for p in run.trainable + [run.temperature.value]:
        if p.grad is None:  # unused this step (no image in the batch): a zero step
            p.grad = torch.zeros_like(p)
    distributed.sum_gradients(run.trainable)
    run.optimizer.step()
    return {"lr": lr, **{k: float(v) for k, v in losses.items()},
            "temperature": float(run.temperature.value)}


def _after_step(run: _Process, record: dict, step: int, total_steps: int) -> None:
    """Rank 0: log the step, checkpoint every `checkpoint_every` steps."""
    from notellm2_udf.training.state import checkpoint_dir, save_training_checkpoint

    log.info("step %d/%d %s", step, total_steps, json.dumps(record))
    every = run.settings.checkpoint_every
    if every and step % every == 0:
        save_training_checkpoint(checkpoint_dir(run.settings.output_dir, step), run.model,
                                 run.processor, run.state(step))


def _finish(run: _Process, plan: TrainPlan, step: int) -> dict:
    """Rank 0: the last checkpoint, the final model (only when every step ran), the log and
    the curve; returns the run's summary."""
    from notellm2_udf.model.checkpoint import save_checkpoint
    from notellm2_udf.training.curve import plot_training_curve
    from notellm2_udf.training.state import checkpoint_dir, save_training_checkpoint

    settings, history = run.settings, run.history
    output = Path(settings.output_dir)
    every = settings.checkpoint_every
    if step > plan.start_step and not (every and step % every == 0):
        save_training_checkpoint(checkpoint_dir(output, step), run.model, run.processor,
                                 run.state(step))
    version = None
    if step == plan.total_steps:  # an interrupted run leaves its step checkpoint only
        version = save_checkpoint(run.model, run.processor, output / "model")
    (output / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    if history:
        plot_training_curve(history, output / "training_curve.png")
    return {"steps": step, "total_steps": plan.total_steps, "model_version": version,
            "final_loss": history[-1]["loss"] if history else None,
            "temperature": float(run.temperature.value),
            "pairs_per_s": _throughput(history, settings.batch_pairs * run.processes)}


def global_partners(batch_pairs: int, processes: int, device):
    """Partner indices over the gathered batch: each rank's block is [firsts; partners]."""
    import torch

    from notellm2_udf.training.loss import pair_partners

    return torch.cat([pair_partners(batch_pairs, device) + rank * 2 * batch_pairs
                      for rank in range(processes)])


def _throughput(history: list[dict], pairs_per_step: int) -> float | None:
    """Pairs per second over the run (data waits included)."""
    seconds = sum(record["seconds"] for record in history)
    return round(len(history) * pairs_per_step / seconds, 2) if seconds else None
