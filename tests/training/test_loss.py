"""The contrastive loss against hand computations, and that training lowers it."""

import math

import numpy as np
import pytest
import torch

from notellm2_udf.training.loop import TrainSettings, learning_rate
from notellm2_udf.training.loss import Temperature, infonce_loss, pair_partners, training_loss

# Two pairs laid out [a0, a1, b0, b1]: (a0, b0) and (a1, b1).
E = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]])
SCALE = torch.tensor(2.0)


def _row_loss(positive: float, others: list[float]) -> float:
    """-log softmax of the partner's logit among the row's logits (diagonal excluded)."""
    return -positive + math.log(sum(math.exp(x) for x in [positive, *others]))


def test_pair_partners_layout():
    assert pair_partners(3).tolist() == [3, 4, 5, 0, 1, 2]


def test_infonce_matches_hand_computation():
    # Row logits are 2 x dot products with the three other rows.
    expected = np.mean([
        _row_loss(2 * 0.6, [2 * 0.0, 2 * 0.8]),   # a0 -> b0; negatives a1, b1
        _row_loss(2 * 0.6, [2 * 0.0, 2 * 0.8]),   # a1 -> b1; negatives a0, b0
        _row_loss(2 * 0.6, [2 * 0.8, 2 * 0.96]),  # b0 -> a0; negatives a1, b1
        _row_loss(2 * 0.6, [2 * 0.8, 2 * 0.96]),  # b1 -> a1; negatives a0, b0
    ])
    assert float(infonce_loss(E, pair_partners(2), SCALE)) == pytest.approx(expected, rel=1e-6)


def test_invalid_notes_are_neither_anchors_nor_candidates():
    valid = torch.tensor([True, False, True, True])  # a1 has no image
    # Anchors left: a0 (candidates b0, b1) and b0 (candidates a0, b1); b1's partner is invalid.
    expected = np.mean([_row_loss(2 * 0.6, [2 * 0.8]), _row_loss(2 * 0.6, [2 * 0.96])])
    loss = infonce_loss(E, pair_partners(2), SCALE, valid=valid)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_no_valid_anchor_gives_zero_attached_to_the_graph():
    embeddings = E.clone().requires_grad_()
    loss = infonce_loss(embeddings, pair_partners(2), SCALE, valid=torch.zeros(4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and embeddings.grad is not None


def test_micl_mixes_nine_to_one_and_basic_trains_the_multimodal_loss_only():
    visual = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    has_image = torch.ones(4, dtype=torch.bool)
    multimodal = float(infonce_loss(E, pair_partners(2), SCALE))
    visual_loss = float(infonce_loss(visual, pair_partners(2), SCALE))
    micl = training_loss(E, visual, has_image, pair_partners(2), SCALE, use_micl=True)
    assert float(micl["loss"]) == pytest.approx((9 * multimodal + visual_loss) / 10, rel=1e-6)
    basic = training_loss(E, visual, has_image, pair_partners(2), SCALE, use_micl=False)
    assert float(basic["loss"]) == pytest.approx(multimodal, rel=1e-6)
    assert float(basic["visual"]) == pytest.approx(visual_loss, rel=1e-6)
    assert not basic["visual"].requires_grad


def test_temperature_starts_at_3_and_is_capped_at_scale_100():
    temperature = Temperature()
    assert float(temperature.scale()) == pytest.approx(math.exp(3.0))
    with torch.no_grad():
        temperature.value.fill_(10.0)
    assert float(temperature.scale()) == pytest.approx(100.0)


def test_learning_rate_warms_up_linearly_then_decays_to_zero():
    settings = TrainSettings("m", "o", lr=1.0, warmup_ratio=0.1)
    rates = [learning_rate(step, 20, settings) for step in range(20)]
    assert rates[:3] == pytest.approx([0.5, 1.0, 1.0 * 18 / 18])
    assert rates[-1] == pytest.approx(1.0 / 18)
    assert all(a >= b for a, b in zip(rates[1:], rates[2:]))


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tiny_model_dir):
    from notellm2_udf.model.checkpoint import load_checkpoint
    from notellm2_udf.sample.notes import generate
    from tests.training.fixtures import SAMPLE

    torch.manual_seed(0)
    model, processor = load_checkpoint(tiny_model_dir)  # eval mode: no dropout noise
    notes_pdf, pairs_pdf = generate(SAMPLE)
    pairs_pdf = pairs_pdf.drop_duplicates("note_id").drop_duplicates("related_note_id").head(6)
    by_id = notes_pdf.set_index("note_id")
    batch_pdf = by_id.loc[list(pairs_pdf["note_id"]) + list(pairs_pdf["related_note_id"])]
    inputs = processor(batch_pdf.reset_index())
    temperature = Temperature()
    optimizer = torch.optim.AdamW([*model.parameters(), temperature.value], lr=1e-3)

    def loss() -> torch.Tensor:
        output = model(**inputs)
        return training_loss(output.embedding, output.visual_embedding, inputs["has_image"],
                             pair_partners(6), temperature.scale(), use_micl=True)["loss"]

    losses = []
    for _ in range(12):
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(float(value))
    assert float(loss()) < 0.6 * losses[0], losses
