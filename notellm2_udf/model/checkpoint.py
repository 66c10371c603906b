"""A NoteLLM-2 checkpoint directory: safetensors weights, JSON configs, tokenizer and
image-processor files. Nothing in it is ever unpickled.

    config.json                 NoteLLM2Config (vision / Q-Former / text sub-configs, prompt)
    model.safetensors           all weights (sharded for big models: model-0000x-of-0000y...)
    tokenizer.json, tokenizer_config.json
    preprocessor_config.json    the vision tower's image processor
"""

import json
from pathlib import Path

import torch

from notellm2_udf.atomic_files import staged_directory
from notellm2_udf.model.modeling import NoteLLM2Model
from notellm2_udf.model.processor import NoteLLM2Processor
from notellm2_udf.model.version import model_version

# Keys that from_pretrained adds to a tokenizer's config about where it was loaded from;
# dropped so that a loaded-and-saved checkpoint has the same bytes (and model_version).
LOADER_ONLY_TOKENIZER_KEYS = ("is_local", "local_files_only", "name_or_path")


def save_checkpoint(
    model: NoteLLM2Model, processor: NoteLLM2Processor, directory: str | Path
) -> str:
    """Writes the checkpoint into a temporary sibling, then moves it into place; returns its
    model_version. An existing checkpoint at `directory` is replaced."""
    with staged_directory(directory) as staging:
        # Loading fills the sub-configs' dtype; set it on save too, for the same bytes.
        for sub_config in (model.config.vision_config, model.config.qformer_config,
                           model.config.text_config):
            sub_config.dtype = model.dtype
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        _drop_loader_keys(staging / "tokenizer_config.json")
    return model_version(directory)


def _drop_loader_keys(tokenizer_config: Path) -> None:
    settings = json.loads(tokenizer_config.read_text())
    for key in LOADER_ONLY_TOKENIZER_KEYS:
        settings.pop(key, None)
    tokenizer_config.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n")


def load_checkpoint(
    directory: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[NoteLLM2Model, NoteLLM2Processor]:
    """(model in eval mode on `device` in `dtype`, processor) from a checkpoint directory."""
    model = NoteLLM2Model.from_pretrained(
        directory, dtype=dtype, attn_implementation="sdpa", use_safetensors=True
    )
    processor = NoteLLM2Processor.from_pretrained(directory, config=model.config)
    return model.to(device).eval(), processor
