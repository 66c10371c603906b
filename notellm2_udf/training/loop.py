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
    eval_every: int = 1750  # steps between validation losses (with validation converters)
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
    temperature = Temperature(cap=settings.temperature_cap).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if settings.decay_all_parameters:  # the authors': DeepSpeed gets every parameter at once
        groups = [{"params": trainable + [temperature.value],
                   "weight_decay": settings.weight_decay}]
    else:
        groups = [
            {"params": [p for p in trainable if p.ndim >= 2],
             "weight_decay": settings.weight_decay},
            {"params": [p for p in trainable if p.ndim < 2] + [temperature.value],
             "weight_decay": 0.0},
        ]
    if settings.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=settings.lr)
    else:  # betas and eps are DeepSpeed's AdamW defaults too
        optimizer = torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.999), eps=1e-8)
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

    from notellm2_udf.training import distributed
    from notellm2_udf.training.loss import training_loss

    notes = inputs["input_ids"].shape[0]
    chunk = 2 * settings.sub_batch_pairs if settings.sub_batch_pairs else notes
    autocast = torch.autocast("cuda", dtype=torch.bfloat16,
                              enabled=inputs["input_ids"].device.type == "cuda")

    def loss_of(embedding, visual_embedding):
        return training_loss(
            distributed.gather_with_local_grad(embedding),
            distributed.gather_with_local_grad(visual_embedding),
            # gloo has no bool all_gather
            distributed.gather_with_local_grad(inputs["has_image"].long()).bool(),
            global_partners(settings.batch_pairs, processes, embedding.device),
            temperature.scale(), model.config.uses_micl,
            weights=(settings.text_weight, settings.vision_weight))

    if chunk >= notes:
        with autocast:
            output = model(**inputs)
        losses = loss_of(output.embedding, output.visual_embedding)
        losses["loss"].backward()
        return losses

    parts = [torch.arange(start, min(start + chunk, notes)) for start in range(0, notes, chunk)]
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
