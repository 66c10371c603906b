"""The converter from the authors' parameter naming, on a random state dict with their key
names and shapes (spec: ../shared/NOTELLM2.md; their MLlama as zero_to_fp32.py saves it)."""

import pytest
import torch
from safetensors.torch import save_file
from transformers import (
    Blip2QFormerConfig,
    Blip2QFormerModel,
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaModel,
)

from notellm2_udf.cli.main import main as notellm2
from notellm2_udf.model.authors_checkpoint import convert_authors_state_dict
from notellm2_udf.model.checkpoint import load_checkpoint, save_checkpoint
from notellm2_udf.model.compose import add_special_tokens
from notellm2_udf.model.configuration import NoteLLM2Config
from notellm2_udf.model.modeling import NoteLLM2Model
from notellm2_udf.model.processor import NoteLLM2Processor
from notellm2_udf.model.tiny_tokenizer import build_tiny_tokenizer
from tests.support.notes import mixed_notes

H, DV, DQ, NQ = 32, 32, 32, 16


def _tiny_llama_parts():
    tokenizer = build_tiny_tokenizer()
    token_ids = add_special_tokens(tokenizer)
    config = NoteLLM2Config(
        vision_config=CLIPVisionConfig(hidden_size=DV, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, image_size=32, patch_size=8),
        qformer_config=Blip2QFormerConfig(hidden_size=DQ, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=4),
        text_config=LlamaConfig(hidden_size=H, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=4, vocab_size=len(tokenizer)),
        **token_ids)
    model = NoteLLM2Model._from_config(config, attn_implementation="sdpa").eval()
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32},
                                           crop_size={"height": 32, "width": 32})
    return model, NoteLLM2Processor(tokenizer, image_processor, config)


def _their_state_dict(config: NoteLLM2Config) -> dict[str, torch.Tensor]:
    """Their names: HF modules' own keys under their prefixes, plus their own modules."""
    generator = torch.Generator().manual_seed(7)
    theirs = {}
    llm = LlamaModel(config.text_config)
    theirs.update({f"model.{k}": v for k, v in llm.state_dict().items()})
    head_dim = H // 4
    for layer in range(2):  # a persistent buffer in transformers 4.28
        theirs[f"model.layers.{layer}.self_attn.rotary_emb.inv_freq"] = torch.ones(head_dim // 2)
    vit = CLIPVisionModel(config.vision_config)
    prefix = "vision_tower.vision_tower.vision_model."
    theirs.update({prefix + k.removeprefix("vision_model."): v
                   for k, v in vit.state_dict().items()})
    theirs[prefix + "embeddings.position_ids"] = torch.arange(17)[None]
    qformer = Blip2QFormerModel(config.qformer_config)
    theirs.update({f"qformer.{k}": v for k, v in qformer.state_dict().items()})
    theirs.update({
        "query_tokens": torch.zeros(1, NQ, DV),
        "mm_projector.0.weight": torch.empty(H, DQ), "mm_projector.0.bias": torch.empty(H),
        "mm_projector.2.weight": torch.empty(H, H), "mm_projector.2.bias": torch.empty(H),
        "mm_projector_latefusion.weight": torch.empty(H, DV),
        "gate.trans_all.weight": torch.empty(H, 2 * H),
        "linear.weight": torch.empty(64, H),
        "temperature": torch.tensor([3.5]),
    })
    return {k: torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
            for k, v in theirs.items()}


def test_their_state_dict_maps_onto_ours_key_for_key():
    model, _ = _tiny_llama_parts()
    theirs = _their_state_dict(model.config)
    ours, temperature = convert_authors_state_dict(theirs)
    assert float(temperature) == pytest.approx(float(theirs["temperature"][0]))
    assert set(ours) == set(model.state_dict())  # nothing missing, nothing extra
    model.load_state_dict(ours, strict=True)
    state = model.state_dict()
    pairs = {"gate.trans_all.weight": "late_fusion.gate.weight",
             "mm_projector.0.weight": "projector.linear_1.weight",
             "mm_projector_latefusion.weight": "late_fusion.vision_proj.weight",
             "linear.weight": "embedding_projection.weight",
             "query_tokens": "connector.query_tokens",
             "model.layers.1.mlp.down_proj.weight": "language_model.layers.1.mlp.down_proj.weight",
             "vision_tower.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight":
                 "vision_tower.encoder.layers.0.mlp.fc1.weight",
             "qformer.encoder.layer.0.crossattention.attention.key.weight":
                 "connector.qformer.encoder.layer.0.crossattention.attention.key.weight"}
    for their_name, our_name in pairs.items():
        assert torch.equal(state[our_name], theirs[their_name]), our_name


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="does not know"):
        convert_authors_state_dict({"mystery.weight": torch.zeros(1)})


def test_qwen_fused_attention_is_split_into_q_k_v():
    c_attn = torch.arange(12.0).reshape(6, 2)
    ours, _ = convert_authors_state_dict({"transformer.h.0.attn.c_attn.weight": c_attn,
                                          "transformer.h.0.mlp.w2.weight": torch.ones(2)})
    assert torch.equal(ours["language_model.layers.0.self_attn.k_proj.weight"], c_attn[2:4])
    assert "language_model.layers.0.mlp.gate_proj.weight" in ours


def test_convert_command_writes_a_checkpoint_that_encodes(tmp_path, capsys):
    model, processor = _tiny_llama_parts()
    save_checkpoint(model, processor, tmp_path / "init")
    theirs = _their_state_dict(model.config)
    save_file(theirs, tmp_path / "theirs.safetensors")
    assert notellm2(["convert-authors-checkpoint",
                     "--weights", str(tmp_path / "theirs.safetensors"),
                     "--init-model", str(tmp_path / "init"), "--out", str(tmp_path / "out")]) == 0
    temperature = float(theirs["temperature"][0])
    assert f"temperature={temperature}" in capsys.readouterr().out
    converted, converted_processor = load_checkpoint(tmp_path / "out")
    assert torch.equal(converted.late_fusion.gate.weight, theirs["gate.trans_all.weight"])
    with torch.no_grad():
        output = converted(**converted_processor(mixed_notes()))
    assert torch.isfinite(output.embedding).all()
