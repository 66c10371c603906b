import pytest
from transformers import LlamaConfig, SiglipVisionConfig

from notellm2_udf.model.configuration import NoteLLM2Config


def test_defaults_follow_the_paper():
    config = NoteLLM2Config()
    assert config.fusion == "micl_late"
    assert config.embed_dim == 64
    assert config.num_query_tokens == 16
    assert config.qformer_config.num_hidden_layers == 6
    assert config.vision_config.model_type == "clip_vision_model"
    assert (config.vision_config.patch_size, config.vision_config.image_size) == (16, 224)
    assert config.qformer_config.encoder_hidden_size == config.vision_config.hidden_size
    assert (config.title_max_chars, config.content_max_chars, config.max_text_tokens) == (
        20, 80, 140)
    assert (config.topic_max_chars, config.max_topics) == (16, 10)


def test_siglip_and_llama_sub_configs_round_trip_through_a_dict():
    config = NoteLLM2Config(
        vision_config=SiglipVisionConfig(hidden_size=48, image_size=32, patch_size=8),
        text_config=LlamaConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4),
        fusion="late_only",
        prompt_language="zh",
    )
    again = NoteLLM2Config(**config.to_dict())
    assert again.vision_config.model_type == "siglip_vision_model"
    assert again.text_config.model_type == "llama"
    assert again.qformer_config.encoder_hidden_size == 48
    assert (again.fusion, again.prompt_language) == ("late_only", "zh")
    assert not again.uses_image_tokens and again.uses_late_fusion and not again.uses_micl


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fusion": "early"}, "fusion must be one of"),
        ({"prompt_language": "fr"}, "prompt_language must be one of"),
        ({"embed_dim": 0}, "embed_dim must be a positive integer"),
        ({"max_text_tokens": -1}, "max_text_tokens must be a positive integer"),
        ({"text_config": {"model_type": "bert"}}, "decoder-only LLM"),
        ({"vision_config": {"model_type": "llama"}}, "expected a vision-tower config"),
    ],
)
def test_invalid_options_raise_value_error(options, message):
    with pytest.raises(ValueError, match=message):
        NoteLLM2Config(**options)
