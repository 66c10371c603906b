"""Composing an untrained NoteLLM-2 (`notellm2 init-model`): from local Hugging Face
checkpoints (loaded with from_pretrained, nothing downloaded) or as a tiny random model for
tests and the demo."""

import torch
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoTokenizer,
    Blip2QFormerConfig,
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    Qwen2Config,
    SiglipImageProcessorPil,
)
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from notellm2_udf.model.configuration import NoteLLM2Config
from notellm2_udf.model.modeling import NoteLLM2Model
from notellm2_udf.model.processor import NoteLLM2Processor
from notellm2_udf.model.prompt import IMAGE_EMBEDDING_TOKEN, IMAGE_TOKEN, PAD_TOKEN
from notellm2_udf.model.tiny_tokenizer import build_tiny_tokenizer

TINY_IMAGE_SIZE = 32


def add_special_tokens(tokenizer) -> dict[str, int]:
    """Adds `<IMG>`, `<IMG_EMB>` and, if the LLM has none, a pad token; returns the three ids.

    An existing pad token (Qwen2's <|endoftext|>) is kept: pads are never attended to.
    """
    tokenizer.add_tokens([IMAGE_TOKEN, IMAGE_EMBEDDING_TOKEN], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    return {
        "image_token_id": tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        "image_embedding_token_id": tokenizer.convert_tokens_to_ids(IMAGE_EMBEDDING_TOKEN),
        "pad_token_id": tokenizer.pad_token_id,
    }


@torch.no_grad()
def init_new_token_embeddings(language_model, token_ids: list[int], existing_tokens: int) -> None:
    """Sets the input embeddings of `token_ids` to the mean of the first `existing_tokens` rows
    (the LLM's own vocabulary), growing the matrix when the ids fall outside it."""
    embeddings = language_model.get_input_embeddings()
    # A tokenizer may count tokens the matrix lacks (Qwen2's adds <|endoftext|> on load).
    existing_rows = min(existing_tokens, embeddings.num_embeddings)
    mean = embeddings.weight[:existing_rows].float().mean(dim=0)
    if max(token_ids) >= embeddings.num_embeddings:
        # mean_resizing=False: the new rows are overwritten with the plain mean right after.
        language_model.resize_token_embeddings(max(token_ids) + 1, mean_resizing=False)
        embeddings = language_model.get_input_embeddings()
    embeddings.weight[torch.as_tensor(sorted(set(token_ids)))] = mean.to(embeddings.weight.dtype)


def compose_tiny_random(fusion: str = "micl_late", seed: int = 0, **options):
    """A NoteLLM-2 of a few hundred thousand parameters (Qwen2 2 x 32, CLIP 2 x 32 at
    32 px, Q-Former 2 x 32, 16 queries): seconds on a CPU. `options`: other NoteLLM2Config
    fields (e.g. prompt_format="v1") and qformer_hidden_size. Returns (model, processor)."""
    qformer_hidden = options.pop("qformer_hidden_size", 32)
    tokenizer = build_tiny_tokenizer()
    vocabulary = len(tokenizer)
    token_ids = add_special_tokens(tokenizer)
    config = NoteLLM2Config(
        vision_config=CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            image_size=TINY_IMAGE_SIZE, patch_size=8, projection_dim=32,
        ),
        qformer_config=Blip2QFormerConfig(
            hidden_size=qformer_hidden, intermediate_size=2 * qformer_hidden,
            num_hidden_layers=2, num_attention_heads=4,
        ),
        text_config=Qwen2Config(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=512,
            tie_word_embeddings=False,
        ),
        fusion=fusion,
        **token_ids,
        **options,
    )
    torch.manual_seed(seed)
    model = NoteLLM2Model._from_config(config, attn_implementation="sdpa")
    init_new_token_embeddings(model.language_model, list(token_ids.values()), vocabulary)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
    )
    return model.eval(), NoteLLM2Processor(tokenizer, image_processor, model.config)


def compose_from_pretrained(
    llm_dir: str, vision_dir: str, fusion: str = "micl_late", seed: int = 0, **options
):
    """An untrained NoteLLM-2 around a local decoder LLM and a local vision tower.

    `vision_dir` may hold a vision-only model (CLIPVisionModel, SiglipVisionModel) or a
    dual-encoder (CLIPModel, SiglipModel), whose vision half is taken. The new modules
    (Q-Former, projector, gate, projection) are random with `seed`; the new tokens' input
    embeddings are the mean of the LLM's. `options`: other NoteLLM2Config fields, and
    qformer_hidden_size (the Q-Former's width; intermediate 4x, heads of 64). Returns
    (model, processor).
    """
    qformer_hidden = options.pop("qformer_hidden_size", None)
    qformer_config = None
    if qformer_hidden:
        qformer_config = Blip2QFormerConfig(
            hidden_size=qformer_hidden, intermediate_size=4 * qformer_hidden,
            num_attention_heads=qformer_hidden // 64, num_hidden_layers=6)
    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    vocabulary = len(tokenizer)
    token_ids = add_special_tokens(tokenizer)
    language_model = AutoModel.from_pretrained(llm_dir)
    init_new_token_embeddings(language_model, list(token_ids.values()), vocabulary)

    vision_config = AutoConfig.from_pretrained(vision_dir)
    vision_config = getattr(vision_config, "vision_config", vision_config)
    vision_tower = MODEL_MAPPING[type(vision_config)].from_pretrained(
        vision_dir, config=vision_config, dtype=language_model.dtype
    )

    config = NoteLLM2Config(
        vision_config=vision_tower.config,
        qformer_config=qformer_config,
        text_config=language_model.config,
        fusion=fusion,
        **token_ids,
        **options,
    )
    torch.manual_seed(seed)
    # Built at the LLM's dtype; the random ViT and LLM inside are replaced right after.
    model = NoteLLM2Model._from_config(
        config, dtype=language_model.dtype, attn_implementation="sdpa"
    )
    model.vision_tower.load_state_dict(vision_tower.state_dict())
    model.language_model.load_state_dict(language_model.state_dict())
    return model.eval(), NoteLLM2Processor(
        tokenizer, _image_processor(vision_dir, vision_config), model.config
    )


def _image_processor(vision_dir: str, vision_config):
    """The checkpoint's own image processor, else the CLIP or SigLIP default at its size."""
    try:
        return AutoImageProcessor.from_pretrained(vision_dir, backend="pil")
    except (OSError, ValueError):
        size = vision_config.image_size
        if vision_config.model_type.startswith("siglip"):
            return SiglipImageProcessorPil(size={"height": size, "width": size})
        return CLIPImageProcessorPil(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )
