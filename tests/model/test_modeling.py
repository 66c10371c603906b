import pytest
import torch
from torch.nn.functional import normalize

from notellm2_udf.model.compose import compose_tiny_random
from tests.support.notes import image_bytes, mixed_notes, notes_frame
from tests.support.tolerances import SAME_BATCH_ATOL


def run(model, processor, notes_pdf):
    with torch.no_grad():
        return model(**processor(notes_pdf))


def test_outputs_are_unit_norm_64d_float32(tiny_model, tiny_processor):
    output = run(tiny_model, tiny_processor, mixed_notes())
    for embedding in (output.embedding, output.visual_embedding):
        assert embedding.shape == (8, 64) and embedding.dtype == torch.float32
        torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(8))
    assert output.multimodal_hidden_state.shape == (8, 32)


def test_visual_embedding_sees_only_the_image(tiny_model, tiny_processor):
    """The causal property of mICL: n_v comes before the text segment."""
    image = image_bytes(7)
    notes = notes_frame([
        {"title": "Mountains", "content": "A long walk #hiking#", "image": image},
        {"title": "完全不同的标题", "content": "and other content entirely", "topics": ["x"],
         "image": image},
        {"title": "Mountains", "content": "A long walk #hiking#", "image": image_bytes(8)},
    ])
    output = run(tiny_model, tiny_processor, notes)
    torch.testing.assert_close(output.visual_embedding[0], output.visual_embedding[1],
                               rtol=0, atol=SAME_BATCH_ATOL)
    assert (output.visual_embedding[0] - output.visual_embedding[2]).abs().max() > 1e-3
    assert (output.embedding[0] - output.embedding[1]).abs().max() > 1e-3
    assert (output.embedding[0] - output.embedding[2]).abs().max() > 1e-3


def test_late_fusion_matches_a_hand_computation(tiny_model, tiny_processor):
    fusion = tiny_model.late_fusion
    torch.manual_seed(1)
    h, cls = torch.randn(3, 32), torch.randn(3, 32)
    v = cls @ fusion.vision_proj.weight.T
    z = torch.sigmoid(torch.cat([h, v], dim=-1) @ fusion.gate.weight.T)
    expected = z * h + (1 - z) * v
    torch.testing.assert_close(fusion(h, fusion.project_image(cls)), expected)
    # And inside the model: e = proj(gate(n_m, W_v CLS)), normalised.
    notes = notes_frame([{"title": "a", "content": "b", "image": image_bytes(3)}])
    inputs = tiny_processor(notes)
    with torch.no_grad():
        output = tiny_model(**inputs)
        # The authors' input: the last layer's CLS before the post-layernorm.
        cls = tiny_model.vision_tower(pixel_values=inputs["pixel_values"]).last_hidden_state[:, 0]
        v = cls @ fusion.vision_proj.weight.T
        h = output.multimodal_hidden_state
        z = torch.sigmoid(torch.cat([h, v], dim=-1) @ fusion.gate.weight.T)
        expected = normalize((z * h + (1 - z) * v) @ tiny_model.embedding_projection.weight.T,
                             dim=-1)
    torch.testing.assert_close(output.embedding, expected)


def test_new_parameters_are_initialised(tiny_model):
    weight = tiny_model.late_fusion.gate.weight  # [32, 64]: xavier std = sqrt(2 / (64 + 32))
    assert abs(weight.std().item() - (2 / 96) ** 0.5) < 0.03
    assert tiny_model.connector.query_tokens.eq(0).all()  # the authors' zeros
    assert tiny_model.no_image_embedding is None  # zero images instead
    assert isinstance(tiny_model.connector.vision_layernorm, torch.nn.Identity)


def test_v1_options_keep_the_first_release_modules(v1_parts):
    model = v1_parts[0]
    assert 0.01 < model.no_image_embedding.std().item() < 0.03
    assert isinstance(model.connector.vision_layernorm, torch.nn.LayerNorm)


def test_v1_rows_without_image_use_the_learned_no_image_vector(v1_parts):
    import copy

    tiny_model, tiny_processor = copy.deepcopy(v1_parts[0]), v1_parts[1]
    notes = notes_frame([
        {"title": "one", "content": "first note"},
        {"title": "two", "content": "something else"},
    ])
    output = run(tiny_model, tiny_processor, notes)
    expected = normalize(tiny_model.embedding_projection(tiny_model.no_image_embedding), dim=-1)
    torch.testing.assert_close(output.visual_embedding, expected.detach().expand(2, -1))
    with torch.no_grad():
        tiny_model.no_image_embedding.mul_(-1)
    changed = run(tiny_model, tiny_processor, notes)
    assert (changed.embedding - output.embedding).abs().max() > 1e-3  # v enters the late fusion


def test_empty_text_with_image_and_text_without_image_both_encode(tiny_model, tiny_processor):
    notes = notes_frame([{"title": "", "content": "", "image": image_bytes(1)},
                         {"title": "only text"}])
    output = run(tiny_model, tiny_processor, notes)
    assert torch.isfinite(output.embedding).all() and torch.isfinite(output.visual_embedding).all()


def test_vision_tower_is_frozen(tiny_model):
    assert not any(p.requires_grad for p in tiny_model.vision_tower.parameters())
    assert all(p.requires_grad for p in tiny_model.connector.parameters())


def test_image_slots_must_match_the_images(tiny_model, tiny_processor):
    inputs = tiny_processor(notes_frame([{"title": "a", "image": image_bytes(1)}]))
    inputs["pixel_values"] = inputs["pixel_values"].repeat(2, 1, 1, 1)
    with pytest.raises(ValueError, match="16 <IMG> slots in input_ids but 2 images"):
        tiny_model(**inputs)


@pytest.mark.parametrize("fusion", ["basic", "micl", "late_only", "basic_late"])
def test_ablation_variants(fusion):
    model, processor = compose_tiny_random(fusion, seed=0)
    image = image_bytes(5)
    notes = notes_frame([
        {"title": "same image", "content": "text one", "image": image},
        {"title": "other words", "content": "text two", "image": image},
        {"title": "no image", "content": "text three"},
    ])
    output = run(model, processor, notes)
    torch.testing.assert_close(output.embedding.norm(dim=-1), torch.ones(3))
    # In every variant the visual embedding depends on the image only.
    torch.testing.assert_close(output.visual_embedding[0], output.visual_embedding[1],
                               rtol=0, atol=SAME_BATCH_ATOL)
    assert hasattr(model, "late_fusion") == (fusion in ("late_only", "basic_late"))
    assert hasattr(model, "connector") == (fusion != "late_only")
    if fusion == "late_only":  # the LLM never sees the image: v = W_v CLS
        v = output.visual_hidden_state[0]
        with torch.no_grad():
            cls = model.vision_tower(
                pixel_values=processor(notes)["pixel_values"][:1]).last_hidden_state[:, 0]
        torch.testing.assert_close(v, model.late_fusion.project_image(cls)[0])


def test_qformer_width_and_query_count_are_independent_of_the_vit():
    """A Q-Former wider than the ViT (as ViT-bigG 1664 with a 1536 Q-Former) and 8 queries."""
    model, processor = compose_tiny_random(num_query_tokens=8, qformer_hidden_size=48)
    assert model.connector.query_tokens.shape == (1, 8, 48)
    assert model.config.vision_config.hidden_size == 32
    inputs = processor(mixed_notes())
    assert int((inputs["input_ids"][0] == model.config.image_token_id).sum()) == 8
    output = run(model, processor, mixed_notes())
    torch.testing.assert_close(output.embedding.norm(dim=-1), torch.ones(8))
