"""NoteLLM-2 configuration: vision tower + Q-Former + decoder LLM sub-configs and the prompt."""

from typing import ClassVar

from transformers import AutoConfig, Blip2QFormerConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

FUSIONS = ("basic", "micl", "late_only", "micl_late", "basic_late")
PROMPT_LANGUAGES = ("en", "zh")
PROMPT_FORMATS = ("authors", "v1")
MISSING_IMAGE = ("zero_image", "learned_vector")
LATE_FUSION_INPUTS = ("cls", "pooler_output")

# What a config.json written before these options existed was built with: such a checkpoint
# keeps computing the embeddings it was trained for (`from_dict` fills them in).
LEGACY_OPTIONS = {
    "prompt_format": "v1",
    "use_topics_column": True,
    "missing_image": "learned_vector",
    "late_fusion_input": "pooler_output",
    "qformer_input_layernorm": True,
}


class NoteLLM2Config(PreTrainedConfig):
    r"""
    Configuration of a NoteLLM-2 multimodal representation model (arXiv 2405.16789).

    vision_config: any Hugging Face vision tower whose output has `last_hidden_state`
        [batch, patches, hidden] (and `pooler_output` for late_fusion_input="pooler_output").
        Frozen.
    qformer_config: a BLIP-2 Q-Former (6 layers by default) cross-attending into the
        vision tokens; `encoder_hidden_size` is set from `vision_config.hidden_size`, its
        own `hidden_size` (the query width, 768) is independent of the ViT's.
    text_config: a decoder-only LLM (any type with a causal-LM mapping: LLaMA, Qwen2, ...).
    num_query_tokens: learnable queries of the Q-Former = visual tokens per image (16).
    fusion: "basic" (one prompt segment with image and text, last token), "micl" (two
        segments, no late fusion), "late_only" (LLM sees text only, image enters through
        the late-fusion gate), "basic_late" (basic prompt + late fusion, no mICL) or
        "micl_late" (= NoteLLM-2, the default).
    embed_dim: size of the stored L2-normalised embedding (64).
    prompt_language: "zh" (the authors' prompt, default) or "en" (a translation).
    prompt_format: "authors" (their template, the note part tokenised in one call and cut
        to max_text_tokens, the suffix tokenised apart; their text preprocessing) or "v1"
        (our first release: spaced template tokenised piece by piece, text-segment cap).
    use_topics_column: put the `topics` column's tags before the content's hashtags (the
        authors take topics from the content only: False).
    missing_image: "zero_image" (the authors: the image segment stays, pixels all zero after
        normalisation) or "learned_vector" (no image segment, a learned vector stands in).
    late_fusion_input: "cls" (the ViT's last-layer CLS before its post-layernorm, the
        authors') or "pooler_output" (CLIP: after it; SigLIP: its pooling head).
    qformer_input_layernorm: a LayerNorm on the ViT tokens before the Q-Former (v1 only).
    title_max_chars / content_max_chars: character cuts of the authors' code (20 / 80).
    topic_max_chars / max_topics: hashtag limits (a `#tag#` of at most 16 characters, 10 topics).
    max_text_tokens: 140; "authors": cap on the note part (BOS, template, the image as one
        token, fields; the suffix comes on top); "v1": cap on the text segment.
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
    prompt_language: str = "zh"
    prompt_format: str = "authors"
    use_topics_column: bool = False
    missing_image: str = "zero_image"
    late_fusion_input: str = "cls"
    qformer_input_layernorm: bool = False
    title_max_chars: int = 20
    content_max_chars: int = 80
    topic_max_chars: int = 16
    max_topics: int = 10
    max_text_tokens: int = 140
    image_token_id: int | None = None
    image_embedding_token_id: int | None = None
    pad_token_id: int | None = None
    initializer_range: float = 0.02

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """A config.json without `prompt_format` predates the options of LEGACY_OPTIONS."""
        if "prompt_format" not in config_dict:
            config_dict = {**LEGACY_OPTIONS, **config_dict}
        return super().from_dict(config_dict, **kwargs)

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
        for name, allowed in (("prompt_format", PROMPT_FORMATS),
                              ("missing_image", MISSING_IMAGE),
                              ("late_fusion_input", LATE_FUSION_INPUTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
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
        return self.fusion in ("late_only", "micl_late", "basic_late")

    @property
    def zero_image_for_missing(self) -> bool:
        """Whether a note without a usable image gets an all-zero (normalised) pixel tensor
        and the full prompt, like one with an image."""
        return self.missing_image == "zero_image"
