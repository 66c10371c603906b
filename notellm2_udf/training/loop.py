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
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from notellm2_udf.training.optimizer import make_optimizer, restore_optimizer
from notellm2_udf.training.plan import TrainPlan, learning_rate
from notellm2_udf.training.settings import TrainSettings
from notellm2_udf.training.step import autocast, global_loss, parts, step_gradients, sub_batch

log = logging.getLogger("notellm2.train")


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
    best: dict | None = None  # rank 0: the record of OUTPUT/best (step, eval_loss, ...)

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
    if run.rank == 0:
        run.best = _restore_best(plan)
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
                if plan.validates_at(step):  # every rank: the loss is gathered
                    record.update(validation_losses(run, plan))
                run.history.append(record)
                if run.rank == 0:
                    _after_step(run, plan, record, step)
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
    temperature = Temperature(cap=settings.temperature_cap).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, temperature.value, settings)
    history: list[dict] = []
    if plan.resume_from:
        state = load_training_state(plan.resume_from)
        restore_optimizer(optimizer, state.optimizer, trainable, temperature.value,
                          plan.resume_from)
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

    settings = run.settings
    # Re-seeded every step (dropout): a resumed run draws what an uninterrupted one would.
    torch.manual_seed(zlib.crc32(f"{settings.seed}:{step}:{run.rank}".encode()))
    lr = learning_rate(step, total_steps, settings)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    inputs = {k: v.to(run.device) for k, v in model_inputs(batch).items()}
    run.optimizer.zero_grad(set_to_none=False)
    losses = step_gradients(run.model, inputs, run.temperature, settings, run.processes)
    for p in run.trainable + [run.temperature.value]:
        if p.grad is None:  # unused this step (no image in the batch): a zero step
            p.grad = torch.zeros_like(p)
    distributed.sum_gradients(run.trainable)
    if settings.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(run.trainable + [run.temperature.value],
                                       settings.max_grad_norm)
    run.optimizer.step()
    return {"lr": lr, **{k: float(v) for k, v in losses.items()},
            "temperature": float(run.temperature.value)}


def validation_losses(run: _Process, plan: TrainPlan) -> dict:
    """{"eval_loss", "eval_multimodal", "eval_visual"}: the training loss (same weights,
    global batch and in-batch negatives) on the validation pairs, dropout off, averaged over
    the plan's validation batches (the authors' eval_loss). Every process takes part."""
    import torch

    from notellm2_udf.training.data import LoaderSettings, model_inputs, open_batches

    settings = run.settings
    loader_settings = LoaderSettings(
        str(_model_dir(plan)), settings.batch_pairs, seed=settings.seed, flip_images=False,
        max_image_pixels=settings.max_image_pixels, reader_workers=settings.reader_workers)
    totals: dict[str, float] = {}
    run.model.eval()
    try:
        with torch.no_grad(), open_batches(plan.validation_converters[run.rank],
                                           loader_settings) as batches:
            for batch in itertools.islice(batches, plan.validation_batches):
                inputs = {k: v.to(run.device) for k, v in model_inputs(batch).items()}
                chunk = 2 * settings.sub_batch_pairs or inputs["input_ids"].shape[0]
                outputs = []
                for rows in parts(inputs["input_ids"].shape[0], chunk):
                    with autocast(inputs):
                        outputs.append(run.model(**sub_batch(inputs, rows)))
                losses = global_loss(
                    run.model, inputs, torch.cat([o.embedding for o in outputs]),
                    torch.cat([o.visual_embedding for o in outputs]), run.temperature,
                    settings, run.processes)
                for name, value in losses.items():
                    totals[name] = totals.get(name, 0.0) + float(value)
    finally:
        run.model.train()
        run.model.vision_tower.eval()
    return {f"eval_{name}": total / plan.validation_batches for name, total in totals.items()}


def _after_step(run: _Process, plan: TrainPlan, record: dict, step: int) -> None:
    """Rank 0: log the step; checkpoint where the plan says; a validation loss lower than
    every earlier one (strictly, as the Trainer) replaces OUTPUT/best."""
    from notellm2_udf.training.state import checkpoint_dir, save_best, save_training_checkpoint

    log.info("step %d/%d %s", step, plan.total_steps, json.dumps(record))
    if plan.checkpoints_at(step):
        save_training_checkpoint(checkpoint_dir(run.settings.output_dir, step), run.model,
                                 run.processor, run.state(step))
    if "eval_loss" in record and (run.best is None
                                  or record["eval_loss"] < run.best["eval_loss"]):
        run.best = {"step": step, **{k: v for k, v in record.items() if k.startswith("eval_")}}
        save_best(run.settings.output_dir,
                  checkpoint_dir(run.settings.output_dir, step) / "model", run.best)


def _restore_best(plan: TrainPlan) -> dict | None:
    """Rank 0 at the start: the record of OUTPUT/best, or None. A fresh run (step 0) removes
    one left by an earlier run in the same directory; a resumed run keeps it, refusing one
    from after the checkpoint it resumes from (its weights would not belong to this run)."""
    import shutil

    from notellm2_udf.errors import JobInputError
    from notellm2_udf.training.state import best_dir, read_best

    best = read_best(plan.settings.output_dir)
    if best is None:
        return None
    if plan.start_step == 0:
        shutil.rmtree(best_dir(plan.settings.output_dir))
        return None
    if best["step"] > plan.start_step:
        raise JobInputError(
            f"{best_dir(plan.settings.output_dir)} is from step {best['step']}, after the "
            f"checkpoint resumed from (step {plan.start_step}): resume from the latest "
            f"checkpoint, or remove that directory")
    return best


def _finish(run: _Process, plan: TrainPlan, step: int) -> dict:
    """Rank 0: the last checkpoint, the final model (only when every step ran), the log and
    the curve; returns the run's summary."""
    from notellm2_udf.model.checkpoint import save_checkpoint
    from notellm2_udf.training.curve import plot_training_curve
    from notellm2_udf.training.state import (
        best_dir,
        checkpoint_dir,
        copy_checkpoint,
        save_training_checkpoint,
    )

    settings, history = run.settings, run.history
    output = Path(settings.output_dir)
    if step > plan.start_step and not plan.checkpoints_at(step):
        save_training_checkpoint(checkpoint_dir(output, step), run.model, run.processor,
                                 run.state(step))
    version = None
    if step == plan.total_steps and run.best:  # the lowest validation loss, as the authors'
        version = copy_checkpoint(best_dir(output) / "model", output / "model")
    elif step == plan.total_steps:  # no validation: the last weights
        version = save_checkpoint(run.model, run.processor, output / "model")
    # (an interrupted run leaves its step checkpoint only)
    (output / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    if history:
        plot_training_curve(history, output / "training_curve.png")
    return {"steps": step, "total_steps": plan.total_steps, "model_version": version,
            "best_step": run.best["step"] if run.best else None,
            "best_eval_loss": run.best["eval_loss"] if run.best else None,
            "final_loss": history[-1]["loss"] if history else None,
            "temperature": float(run.temperature.value),
            "pairs_per_s": _throughput(history, settings.batch_pairs * run.processes)}


def _throughput(history: list[dict], pairs_per_step: int) -> float | None:
    """Pairs per second over the run (data waits included)."""
    seconds = sum(record["seconds"] for record in history)
    return round(len(history) * pairs_per_step / seconds, 2) if seconds else None
