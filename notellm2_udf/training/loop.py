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


LR_SCHEDULES = ("warmup_decay_log", "linear")


@dataclass(frozen=True)
class TrainSettings:
    """The run's hyper-parameters and files (the authors' 7B recipe as defaults: 128 pairs
    per global step, e.g. 1 process x 128 or 8 x 16)."""

    init_model_dir: str
    output_dir: str
    epochs: int = 1
    batch_pairs: int = 128  # per process
    # GradCache: embed this many pairs per forward pass, back-propagate them chunk by chunk
    # (0: the whole local batch in one pass). Same loss and gradients, bounded activations.
    sub_batch_pairs: int = 16
    lr: float = 3e-6
    weight_decay: float = 0.001
    # True: one group, decay on every parameter including the temperature (the authors');
    # False: none on biases, norms, vectors and the temperature (CLIP's habit, our v1).
    decay_all_parameters: bool = True
    warmup_ratio: float = 0.1
    lr_schedule: str = "warmup_decay_log"  # DeepSpeed WarmupDecayLR (the authors'), or linear
    max_grad_norm: float = 1.0  # global-norm clipping of the full gradient; 0 = off
    text_weight: float = 9.0  # mICL: L = (text_weight L_m + vision_weight L_v) / (sum)
    vision_weight: float = 1.0
    temperature_cap: float | None = None  # cap on t (v1: ln 100); None = unclamped (authors)
    optimizer: str = "adamw"  # or "sgd" (plain, no momentum): for exact-equivalence checks
    # Validation (when the plan has validation converters): the loss on the validation
    # pairs every eval_every steps (the authors': 1750), the lowest kept as OUTPUT/best.
    eval_every: int = 1750
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


def parameter_layout(trainable: list, temperature, decay_all_parameters: bool) -> list[list]:
    """The optimizer's parameters group by group. One group (the authors': DeepSpeed gets
    every parameter at once), or two: matrices, then biases, norms, vectors and the
    temperature (no decay; every checkpoint made before issue 14 has this layout)."""
    if decay_all_parameters:
        return [trainable + [temperature]]
    return [[p for p in trainable if p.ndim >= 2],
            [p for p in trainable if p.ndim < 2] + [temperature]]


def make_optimizer(trainable: list, temperature, settings: TrainSettings):
    import torch

    layout = parameter_layout(trainable, temperature, settings.decay_all_parameters)
    decays = ([settings.weight_decay] if settings.decay_all_parameters
              else [settings.weight_decay, 0.0])
    groups = [{"params": params, "weight_decay": decay} for params, decay in zip(layout, decays)]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=settings.lr)
    # betas and eps are DeepSpeed's AdamW defaults too
    return torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.999), eps=1e-8)


def restore_optimizer(optimizer, saved: dict, trainable: list, temperature,
                      checkpoint: str) -> None:
    """Load a checkpoint's optimizer state into `optimizer`. A state saved with the other
    group layout (parameter_layout: 1 group vs 2, e.g. a checkpoint from before issue 14
    resumed with the authors' single group) is migrated: the per-parameter moments move to
    the same parameters, the groups' hyper-parameters are this run's. JobInputError when the
    state does not fit this model's parameters."""
    from notellm2_udf.errors import JobInputError
    from notellm2_udf.training.state import regroup_optimizer_state

    current = parameter_layout(trainable, temperature, len(optimizer.param_groups) == 1)
    sizes = [len(group["params"]) for group in saved["param_groups"]]
    saved_layout = (parameter_layout(trainable, temperature, len(sizes) == 1)
                    if len(sizes) in (1, 2) else [])
    if sizes != [len(params) for params in saved_layout]:
        raise JobInputError(
            f"{checkpoint}: its optimizer state (parameter groups of sizes {sizes}) does not "
            f"fit this model's {len(trainable) + 1} trainable parameters; resume with the "
            f"model it was saved with, or train from step 0 without --resume")
    if len(saved_layout) != len(current):
        log.warning("%s: optimizer state saved with %d parameter group(s), migrated to %d",
                    checkpoint, len(saved_layout), len(current))
        saved = regroup_optimizer_state(saved, saved_layout, current,
                                        optimizer.state_dict()["param_groups"])
    for index, param in enumerate(p for params in current for p in params):
        for key, value in saved["state"].get(index, {}).items():
            if value.ndim and value.shape != param.shape:
                raise JobInputError(
                    f"{checkpoint}: optimizer state {key} of parameter {index} has shape "
                    f"{tuple(value.shape)}, the parameter {tuple(param.shape)}; resume with "
                    f"the model it was saved with, or train from step 0 without --resume")
    optimizer.load_state_dict(saved)


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


def step_gradients(model, inputs: dict, temperature, settings: TrainSettings,
                   processes: int) -> dict:
    """Forward and backward of one step's loss over the global batch; gradients accumulate
    in the parameters (this process's part of them). Returns the losses.

    With sub_batch_pairs smaller than the local batch this is GradCache (Gao et al. 2021):
    1. embed the notes sub-batch by sub-batch without a graph, keeping only the embeddings;
    2. compute the loss over all (gathered) embeddings and its gradient w.r.t. them;
    3. re-run each sub-batch with a graph, RNG state restored so that dropout draws the same
       masks, and back-propagate the cached embedding gradients through it.
    The loss and the gradients are those of the one-pass step (up to float summation order);
    activations are held for one sub-batch at a time.
    """
    import torch

    notes = inputs["input_ids"].shape[0]
    chunk = 2 * settings.sub_batch_pairs if settings.sub_batch_pairs else notes
    autocast = _autocast(inputs)

    def loss_of(embedding, visual_embedding):
        return _global_loss(model, inputs, embedding, visual_embedding, temperature, settings,
                            processes)

    if chunk >= notes:
        with autocast:
            output = model(**inputs)
        losses = loss_of(output.embedding, output.visual_embedding)
        losses["loss"].backward()
        return losses

    parts = _parts(notes, chunk)
    rng_states, embeddings, visual_embeddings = [], [], []
    with torch.no_grad():
        for rows in parts:
            rng_states.append(_rng_state())
            with autocast:
                output = model(**sub_batch(inputs, rows))
            embeddings.append(output.embedding)
            visual_embeddings.append(output.visual_embedding)
    embedding = torch.cat(embeddings).requires_grad_()
    visual_embedding = torch.cat(visual_embeddings).requires_grad_()
    losses = loss_of(embedding, visual_embedding)
    losses["loss"].backward()
    after = _rng_state()
    for rows, state in zip(parts, rng_states):
        _set_rng_state(state)
        with autocast:
            output = model(**sub_batch(inputs, rows))
        surrogate = (output.embedding * embedding.grad[rows]).sum()
        if visual_embedding.grad is not None:
            surrogate = surrogate + (output.visual_embedding * visual_embedding.grad[rows]).sum()
        surrogate.backward()
    _set_rng_state(after)
    return {name: value.detach() for name, value in losses.items()}


def _global_loss(model, inputs: dict, embedding, visual_embedding, temperature,
                 settings: TrainSettings, processes: int) -> dict:
    """The step's losses over the embeddings of every process (this one's keep their graph)."""
    from notellm2_udf.training import distributed
    from notellm2_udf.training.loss import training_loss

    return training_loss(
        distributed.gather_with_local_grad(embedding),
        distributed.gather_with_local_grad(visual_embedding),
        # gloo has no bool all_gather
        distributed.gather_with_local_grad(inputs["has_image"].long()).bool(),
        global_partners(settings.batch_pairs, processes, embedding.device),
        temperature.scale(), model.config.uses_micl,
        weights=(settings.text_weight, settings.vision_weight))


def _autocast(inputs: dict):
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16,
                          enabled=inputs["input_ids"].device.type == "cuda")


def _parts(notes: int, chunk: int) -> list:
    import torch

    return [torch.arange(start, min(start + chunk, notes)) for start in range(0, notes, chunk)]


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
                for rows in _parts(inputs["input_ids"].shape[0], chunk):
                    with _autocast(inputs):
                        outputs.append(run.model(**sub_batch(inputs, rows)))
                losses = _global_loss(
                    run.model, inputs, torch.cat([o.embedding for o in outputs]),
                    torch.cat([o.visual_embedding for o in outputs]), run.temperature,
                    settings, run.processes)
                for name, value in losses.items():
                    totals[name] = totals.get(name, 0.0) + float(value)
    finally:
        run.model.train()
        run.model.vision_tower.eval()
    return {f"eval_{name}": total / plan.validation_batches for name, total in totals.items()}


def sub_batch(inputs: dict, rows) -> dict:
    """The model inputs of `rows` of a batch (pixel_values hold the rows with an image)."""
    has_image = inputs["has_image"]
    image_index = has_image.long().cumsum(0) - 1
    picked = has_image[rows]
    length = int(inputs["embedding_positions"][rows].max()) + 1
    return {"input_ids": inputs["input_ids"][rows, :length],
            "embedding_positions": inputs["embedding_positions"][rows],
            "visual_positions": inputs["visual_positions"][rows],
            "has_image": picked,
            "pixel_values": inputs["pixel_values"][image_index[rows][picked]]}


def _rng_state() -> tuple:
    import torch

    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple) -> None:
    import torch

    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


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
