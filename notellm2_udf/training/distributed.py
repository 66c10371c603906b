"""The few collective operations training needs; all are no-ops in a single process.

Gradients: every process computes the same loss over the gathered global batch, but only its
own embeddings carry a graph (the others arrive through a plain all_gather). A model
parameter's full gradient is therefore the SUM over processes of their partial gradients,
and the temperature's gradient is already complete (and identical) in every process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment (torchrun / TorchDistributor)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def start(use_gpu: bool) -> None:
    """Join the process group when there are several processes (gloo on CPU, nccl on GPU)."""
    if world()[1] > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_gpu else "gloo")


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def gather_with_local_grad(local: torch.Tensor) -> torch.Tensor:
    """Concatenation over ranks of `local` [n, ...] (same n everywhere); only this rank's
    slice is attached to the autograd graph."""
    if not dist.is_initialized():
        return local
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.detach().contiguous())
    parts[dist.get_rank()] = local
    return torch.cat(parts)


def sum_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """All-reduce (sum) the gradients of `parameters`, as one flat buffer."""
    if not dist.is_initialized() or not parameters:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in parameters])
    dist.all_reduce(flat)
    offset = 0
    for p in parameters:
        p.grad.copy_(flat[offset:offset + p.numel()].view_as(p.grad))
        offset += p.numel()
