"""Weights in the authors' parameter naming (their MLlama / MQwen state dict, as
zero_to_fp32.py writes it) -> ours (NoteLLM2Model.state_dict()).

    theirs                                        ours
    model.X (LLaMA)                               language_model.X  (rotary inv_freq dropped)
    transformer.X (Qwen-7B)                       language_model.X  (Qwen2 names, c_attn split)
    vision_tower.vision_tower.vision_model.X      vision_tower.X    (position_ids dropped)
    query_tokens                                  connector.query_tokens
    qformer.X                                     connector.qformer.X
    mm_projector.0.* / mm_projector.2.*           projector.linear_1.* / projector.linear_2.*
    mm_projector_latefusion.weight                late_fusion.vision_proj.weight
    gate.trans_all.weight                         late_fusion.gate.weight   ([h; v] order kept)
    linear.weight                                 embedding_projection.weight
    temperature [1]                               returned apart (the training state's, [])

Their model has no LayerNorm before the Q-Former and no learned no-image vector: convert
into a model composed with the authors' options (qformer_input_layernorm=False,
missing_image="zero_image"), whose state dict has neither.
"""

from __future__ import annotations

import re

import torch

DROPPED = (re.compile(r"\.rotary_emb\.inv_freq$"), re.compile(r"\.embeddings\.position_ids$"))
RENAMES = (
    ("vision_tower.vision_tower.vision_model.", "vision_tower."),
    ("query_tokens", "connector.query_tokens"),
    ("qformer.", "connector.qformer."),
    ("mm_projector.0.", "projector.linear_1."),
    ("mm_projector.2.", "projector.linear_2."),
    ("mm_projector_latefusion.", "late_fusion.vision_proj."),
    ("gate.trans_all.", "late_fusion.gate."),
    ("linear.", "embedding_projection."),
    ("model.", "language_model."),
)
# Qwen-7B's (transformer.h.N.<name>) -> Qwen2's (layers.N.<name>); c_attn is split apart.
QWEN_LAYER = {"ln_1": "input_layernorm", "ln_2": "post_attention_layernorm",
              "attn.c_proj": "self_attn.o_proj", "mlp.w2": "mlp.gate_proj",
              "mlp.w1": "mlp.up_proj", "mlp.c_proj": "mlp.down_proj"}


def convert_authors_state_dict(
    theirs: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """(our state dict, the temperature as a scalar or None). Raises ValueError on a key it
    does not know, so that nothing is silently left at its initial value."""
    ours: dict[str, torch.Tensor] = {}
    temperature = None
    unknown = []
    for name, tensor in theirs.items():
        if any(pattern.search(name) for pattern in DROPPED):
            continue
        if name == "temperature":
            temperature = tensor.reshape(())
            continue
        if name.startswith("transformer."):
            ours.update(_qwen_entries(name.removeprefix("transformer."), tensor))
            continue
        for old, new in RENAMES:
            if name == old or name.startswith(old):
                ours[new + name[len(old):]] = tensor
                break
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"keys the converter does not know: {unknown[:10]}"
                         f"{f' and {len(unknown) - 10} more' if len(unknown) > 10 else ''}")
    return ours, temperature


def _qwen_entries(name: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    prefix = "language_model."
    if name == "wte.weight":
        return {prefix + "embed_tokens.weight": tensor}
    if name == "ln_f.weight":
        return {prefix + "norm.weight": tensor}
    match = re.fullmatch(r"h\.(\d+)\.(.+)\.(weight|bias)", name)
    if not match:
        raise ValueError(f"unknown Qwen key transformer.{name}")
    layer, module, kind = match.groups()
    base = f"{prefix}layers.{layer}."
    if module == "attn.c_attn":  # [3H, ...] = q, k, v stacked
        q, k, v = tensor.chunk(3, dim=0)
        return {f"{base}self_attn.{p}_proj.{kind}": t for p, t in zip("qkv", (q, k, v))}
    if module not in QWEN_LAYER:
        raise ValueError(f"unknown Qwen key transformer.{name}")
    return {f"{base}{QWEN_LAYER[module]}.{kind}": tensor}
