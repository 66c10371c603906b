"""NoteLLM-2 configuration: vision tower + Q-Former + decoder LLM sub-configs and the prompt."""

from typing import ClassVar

from transformers import AutoConfig, Blip2QFormerConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

FUSIONS = ("basic", "micl", "late_only", "micl_late")
PROMPT_LANGUAGES = ("en", "zh")


class NoteLLM2Config(PreTrainedConfig):
    r"""
    Configuration of a NoteLLM-2 multimodal representation model (arXiv 2405.16789).

    vision_config: any Hugging Face vision tower whose output has `last_hidden_state`
        [batch, patches, hidden] and a CLS-style `pooler_output` [batch, hidden]
        (CLIP: post-layernorm CLS token; SigLIP: attention-pooling head). Frozen.
    qformer_config: a BLIP-2 Q-Former (6 layers by default) cross-attending into the
        vision tokens; `encoder_hidden_size` is set from `vision_config.hidden_size`.
    text_config: a decoder-only LLM (any type with a causal-LM mapping: LLaMA, Qwen2, ...).
    num_query_tokens: learnable queries of the Q-Former = visual tokens per image (16).
    fusion: "basic" (one prompt segment with image and text, last token), "micl" (two
        segments, no late fusion), "late_only" (LLM sees text only, image enters through
        the late-fusion gate) or "micl_late" (= NoteLLM-2, the default).
    embed_dim: size of the stored L2-normalised embedding (64).
    prompt_language: "en" or "zh" (the authors' released prompts are Chinese).
    title_max_chars / content_max_chars: character cuts of the authors' code (20 / 80).
    topic_max_chars / max_topics: hashtag limits (16 characters, 10 topics).
    max_text_tokens: cap on the tokens of the text segment, template included (140).
    image_token_id / image_embedding_token_id / pad_token_id: ids of `<IMG>`, `<IMG_EMB>` and
        the pad token in the tokenizer; set when the tokenizer is composed.
    """

    model_type = "notellm2"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        # CLIP ViT-B/16 at 224 px, the paper's vision encoder.
        "vision_config": SubConfigSpec(
            config_class=AutoConfig,
            model_type="clip_vision_model",
            init_kwargs={"patch_size": 16, "image_size": 224},
        ),
        "qformer_config": SubConfigSpec(
            config_class=Blip2QFormerConfig, init_kwargs={"num_hidden_layers": 6}
        ),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    qformer_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    num_query_tokens: int = 16
    projector_hidden_act: str = "gelu"
    fusion: str = "micl_late"
    embed_dim: int = 64
    prompt_language: str = "en"
    title_max_chars: int = 20
    content_max_chars: int = 80
    topic_max_chars: int = 16
    max_topics: int = 10
    max_text_tokens: int = 140
    image_token_id: int | None = None
    image_embedding_token_id: int | None = None
    pad_token_id: int | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.qformer_config.encoder_hidden_size = self.vision_config.hidden_size
        self._check_options()

    def _check_options(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.prompt_language not in PROMPT_LANGUAGES:
            raise ValueError(
                f"prompt_language must be one of {PROMPT_LANGUAGES}, got {self.prompt_language!r}"
            )
        for name in ("num_query_tokens", "embed_dim", "title_max_chars", "content_max_chars",
                     "topic_max_chars", "max_topics", "max_text_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        text_type = self.text_config.model_type
        # BERT-likes also have a causal-LM head class; they are encoders all the same.
        if (
            text_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            or text_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        ):
            raise ValueError(
                f"text_config must be a decoder-only LLM config, got model_type "
                f"{self.text_config.model_type!r}"
            )
        for name in ("hidden_size", "image_size"):
            if not hasattr(self.vision_config, name):
                raise ValueError(
                    f"vision_config ({self.vision_config.model_type!r}) has no {name!r}: "
                    "expected a vision-tower config such as CLIPVisionConfig or SiglipVisionConfig"
                )

    @property
    def uses_image_tokens(self) -> bool:
        """Whether the LLM input contains Q-Former visual tokens."""
        return self.fusion != "late_only"

    @property
    def uses_micl(self) -> bool:
        """Whether the prompt has the separate image segment of mICL."""
        return self.fusion in ("micl", "micl_late")

    @property
    def uses_late_fusion(self) -> bool:
        """Whether the output goes through the late-fusion gate with the ViT CLS vector."""
        return self.fusion in ("late_only", "micl_late")
