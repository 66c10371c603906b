"""The paper's training loss: symmetric in-batch InfoNCE with a learnable temperature, and the
mICL mix 9:1 of the multimodal and visual losses (../shared/NOTELLM2.md, "Training")."""

from __future__ import annotations

import math

import torch
from torch import nn

INITIAL_TEMPERATURE = 3.0  # exp(3.0) ~ 20, the paper's starting scale
# CLIP's cap on the logit scale (our v1 default; the authors have none): past 100 the
# softmax is nearly one-hot.
CLIP_MAX_TEMPERATURE = math.log(100.0)
MICL_WEIGHTS = (9.0, 1.0)  # (multimodal, visual): NoteLLM-2's run


class Temperature(nn.Module):
    """The learnable scalar t of `logits = exp(t) * E E^T`; `cap` clamps t (None: unclamped,
    the authors')."""

    def __init__(self, initial: float = INITIAL_TEMPERATURE, cap: float | None = None):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(float(initial)))
        self.cap = cap

    def scale(self) -> torch.Tensor:
        value = self.value if self.cap is None else self.value.clamp(max=self.cap)
        return value.exp()


def pair_partners(pairs: int, device: torch.device | None = None) -> torch.Tensor:
    """Partner index of each of 2 x `pairs` notes laid out as [firsts; seconds]."""
    index = torch.arange(pairs, device=device)
    return torch.cat([index + pairs, index])


def infonce_loss(
    embeddings: torch.Tensor,
    partner: torch.Tensor,
    scale: torch.Tensor,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of each note against all other notes of the batch, its partner
    being the label; symmetric because both notes of a pair are anchors.

    embeddings: [n, d] unit vectors. partner: [n] int64. scale: scalar exp(t).
    valid: [n] bool; invalid notes are neither anchors nor candidates (a note without an
    image has no visual embedding of its own). An anchor whose partner is invalid is skipped.
    Returns a scalar; zero (still attached to the graph) when no anchor is left.
    """
    n = embeddings.shape[0]
    valid = torch.ones(n, dtype=torch.bool, device=embeddings.device) if valid is None else valid
    logits = scale * embeddings @ embeddings.T
    excluded = torch.eye(n, dtype=torch.bool, device=embeddings.device) | ~valid[None, :]
    logits = logits.masked_fill(excluded, float("-inf"))
    anchors = valid & valid[partner]
    if not bool(anchors.any()):
        return embeddings.sum() * 0.0
    return nn.functional.cross_entropy(logits[anchors], partner[anchors])


def training_loss(
    embedding: torch.Tensor,
    visual_embedding: torch.Tensor,
    has_image: torch.Tensor,
    partner: torch.Tensor,
    scale: torch.Tensor,
    use_micl: bool,
    weights: tuple[float, float] = MICL_WEIGHTS,
) -> dict[str, torch.Tensor]:
    """{"loss", "multimodal", "visual"}: L = (w_m L_m + w_v L_v) / (w_m + w_v) with mICL
    (weights = (w_m, w_v), 9:1 for NoteLLM-2), else L = L_m.

    Without mICL (basic, late_only) there is no visual segment to train, so L_v is reported
    (under no_grad) but not optimised.
    """
    multimodal = infonce_loss(embedding, partner, scale)
    if use_micl:
        visual = infonce_loss(visual_embedding, partner, scale, valid=has_image)
        weight_m, weight_v = weights
        loss = (weight_m * multimodal + weight_v * visual) / (weight_m + weight_v)
    else:
        with torch.no_grad():
            visual = infonce_loss(visual_embedding, partner, scale, valid=has_image)
        loss = multimodal
    return {"loss": loss, "multimodal": multimodal, "visual": visual}
