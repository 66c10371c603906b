"""`notellm2 convert-authors-checkpoint`: a model trained with the authors' code -> ours.

    notellm2 convert-authors-checkpoint --weights pytorch_model.bin --init-model DIR --out DIR

--weights: their fp32 state dict (zero_to_fp32.py's pytorch_model.bin, read with
torch.load(weights_only=True): tensors only, no code; or a .safetensors file).
--init-model: our checkpoint of the same architecture, composed with `notellm2 init-model`
from the same LLM and ViT, with the authors' tokenizer files (their [PAD], <IMG>, <IMG_EMB>
ids: 32000-32002 for LLaMA-2) and the authors' options (the defaults). Its config and
tokenizer are kept; every weight is replaced (strict: a missing or extra key is an error).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="their state dict (.bin or .safetensors)")
    parser.add_argument("--init-model", required=True,
                        help="our checkpoint of the same architecture (config + tokenizer)")
    parser.add_argument("--out", required=True, help="checkpoint directory to write")


def load_weights(path: str | Path) -> dict:
    import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def run(args: argparse.Namespace) -> int:
    from notellm2_udf.model.authors_checkpoint import convert_authors_state_dict
    from notellm2_udf.model.checkpoint import load_checkpoint, save_checkpoint

    ours, temperature = convert_authors_state_dict(load_weights(args.weights))
    model, processor = load_checkpoint(args.init_model)
    model.load_state_dict(ours, strict=True)
    version = save_checkpoint(model, processor, args.out)
    temperature = None if temperature is None else float(temperature)
    print(f"convert-authors-checkpoint: wrote {args.out} ({len(ours)} tensors, "
          f"model_version={version}, temperature={temperature})")
    return 0
