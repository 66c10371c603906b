import argparse
import json

import pytest
import torch
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaModel,
    Qwen2Config,
    Qwen2ForCausalLM,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from notellm2_udf.cli import init_model
from notellm2_udf.model.checkpoint import load_checkpoint, model_version, save_checkpoint
from notellm2_udf.model.compose import compose_from_pretrained
from notellm2_udf.model.tiny_tokenizer import build_tiny_tokenizer
from tests.support.notes import mixed_notes


def outputs(model, processor, notes_pdf):
    with torch.no_grad():
        return model(**processor(notes_pdf))


def test_round_trip_gives_identical_outputs_and_version(tiny_parts, tiny_checkpoint, tmp_path):
    model, processor = load_checkpoint(tiny_checkpoint)
    before, after = outputs(*tiny_parts, mixed_notes()), outputs(model, processor, mixed_notes())
    assert torch.equal(before.embedding, after.embedding)
    assert torch.equal(before.visual_embedding, after.visual_embedding)
    assert save_checkpoint(model, processor, tmp_path / "again") == model_version(tiny_checkpoint)


def test_checkpoint_holds_only_json_and_safetensors(tiny_checkpoint):
    names = sorted(p.name for p in tiny_checkpoint.iterdir())
    assert names == ["config.json", "model.safetensors", "preprocessor_config.json",
                     "tokenizer.json", "tokenizer_config.json"]
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert (config["model_type"], config["fusion"], config["embed_dim"]) == (
        "notellm2", "micl_late", 64)


def test_model_version_changes_with_any_weight(tiny_model, tiny_processor, tiny_checkpoint,
                                               tmp_path):
    with torch.no_grad():
        tiny_model.embedding_projection.weight[0, 0] += 1e-3
    version = save_checkpoint(tiny_model, tiny_processor, tmp_path / "changed")
    assert len(version) == 16 and version != model_version(tiny_checkpoint)


def test_init_model_cli_functions(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    init_model.add_arguments(parser)
    args = parser.parse_args(["--tiny-random", "--out", str(tmp_path / "m"), "--fusion", "micl",
                              "--seed", "1"])
    assert init_model.run(args) == 0
    printed = capsys.readouterr().out
    assert f"model_version={model_version(tmp_path / 'm')}" in printed
    assert "fusion=micl" in printed
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "x"])  # --tiny-random or --llm is required
    args = parser.parse_args(["--llm", "some/dir", "--out", "x"])
    assert init_model.run(args) == 2  # --llm without --vision


def save_tiny_llm(directory, family: str) -> None:
    """A tiny random Hugging Face causal LM checkpoint with the byte tokenizer."""
    common = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
                  "max_position_embeddings": 512}
    torch.manual_seed(0)
    model = (Qwen2ForCausalLM(Qwen2Config(**common)) if family == "qwen2"
             else LlamaModel(LlamaConfig(**common)))
    model.save_pretrained(directory)
    build_tiny_tokenizer().save_pretrained(directory)


def save_tiny_vision(directory, family: str) -> None:
    common = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                  "num_attention_heads": 4, "image_size": 32, "patch_size": 8}
    torch.manual_seed(0)
    if family == "clip":
        CLIPVisionModel(CLIPVisionConfig(**common)).save_pretrained(directory)
    else:
        SiglipVisionModel(SiglipVisionConfig(**common)).save_pretrained(directory)


@pytest.mark.parametrize(("llm", "vision"), [("qwen2", "clip"), ("llama", "siglip")])
def test_compose_from_local_hugging_face_checkpoints(tmp_path, llm, vision):
    save_tiny_llm(tmp_path / "llm", llm)
    save_tiny_vision(tmp_path / "vision", vision)
    model, processor = compose_from_pretrained(str(tmp_path / "llm"), str(tmp_path / "vision"),
                                               seed=0)

    config = model.config
    assert (config.text_config.model_type == llm
            and config.vision_config.model_type.startswith(vision))
    embeddings = model.language_model.get_input_embeddings().weight
    new_ids = [config.image_token_id, config.image_embedding_token_id, config.pad_token_id]
    assert sorted(new_ids) == [256, 257, 258]  # the byte tokenizer has no pad: one is added
    assert embeddings.shape[0] == 259
    for token_id in new_ids:
        torch.testing.assert_close(embeddings[token_id], embeddings[:256].mean(dim=0))

    reference = (Qwen2ForCausalLM if llm == "qwen2" else LlamaModel).from_pretrained(
        tmp_path / "llm")
    reference_layer = reference.model.layers[0] if llm == "qwen2" else reference.layers[0]
    assert torch.equal(model.language_model.layers[0].mlp.up_proj.weight,
                       reference_layer.mlp.up_proj.weight)

    version = save_checkpoint(model, processor, tmp_path / "composed")
    loaded, loaded_processor = load_checkpoint(tmp_path / "composed")
    notes = mixed_notes()
    torch.testing.assert_close(outputs(model, processor, notes).embedding,
                               outputs(loaded, loaded_processor, notes).embedding, rtol=0, atol=0)
    assert model_version(tmp_path / "composed") == version


def test_a_config_json_from_before_the_authors_options_loads_as_it_was_built(v1_parts, tmp_path):
    """config.json written before prompt_format existed: the v1 options, same embeddings."""
    from notellm2_udf.model.configuration import LEGACY_OPTIONS

    save_checkpoint(*v1_parts, tmp_path / "old")
    config_path = tmp_path / "old" / "config.json"
    config = json.loads(config_path.read_text())
    for name in LEGACY_OPTIONS:
        config.pop(name)
    config_path.write_text(json.dumps(config))
    model, processor = load_checkpoint(tmp_path / "old")
    assert {name: getattr(model.config, name) for name in LEGACY_OPTIONS} == LEGACY_OPTIONS
    with torch.no_grad():
        expected = v1_parts[0](**v1_parts[1](mixed_notes())).embedding
        got = model(**processor(mixed_notes())).embedding
    assert torch.equal(expected, got)
