"""The contrastive loss against hand computations, and that training lowers it."""

import math

import numpy as np
import pytest
import torch

from notellm2_udf.training.loss import (
    CLIP_MAX_TEMPERATURE,
    Temperature,
    infonce_loss,
    pair_partners,
    training_loss,
)
from notellm2_udf.training.plan import learning_rate
from notellm2_udf.training.settings import TrainSettings

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
    three_to_one = training_loss(E, visual, has_image, pair_partners(2), SCALE, use_micl=True,
                                 weights=(3.0, 1.0))
    assert float(three_to_one["loss"]) == pytest.approx((3 * multimodal + visual_loss) / 4,
                                                        rel=1e-6)


def test_temperature_starts_at_3_unclamped_and_the_clip_cap_is_an_option():
    temperature = Temperature()
    assert float(temperature.scale()) == pytest.approx(math.exp(3.0))
    with torch.no_grad():
        temperature.value.fill_(10.0)
    assert float(temperature.scale()) == pytest.approx(math.exp(10.0))
    capped = Temperature(cap=CLIP_MAX_TEMPERATURE)
    with torch.no_grad():
        capped.value.fill_(10.0)
    assert float(capped.scale()) == pytest.approx(100.0)


def test_learning_rate_is_deepspeeds_warmup_decay_with_log_warmup():
    """T = 30 steps, Ws = max(2, ceil(3)) = 3; step 0 at lr (their scheduler starts at -1)."""
    settings = TrainSettings("m", "o", lr=1.0, warmup_ratio=0.1)
    rates = [learning_rate(step, 30, settings) for step in range(30)]
    expected = [1.0, 0.0, math.log(2) / math.log(3), math.log(3) / math.log(3)]
    assert rates[:4] == pytest.approx(expected)
    assert rates[4] == pytest.approx((30 - 3) / 27)
    assert rates[-1] == pytest.approx((30 - 28) / 27)  # the last step: 2 lr / (T - Ws)
    assert all(a >= b for a, b in zip(rates[3:], rates[4:]))


def test_learning_rate_linear_option_warms_up_linearly_then_decays_to_zero():
    settings = TrainSettings("m", "o", lr=1.0, warmup_ratio=0.1, lr_schedule="linear")
    rates = [learning_rate(step, 20, settings) for step in range(20)]
    assert rates[:3] == pytest.approx([0.5, 1.0, 1.0 * 18 / 18])
    assert rates[-1] == pytest.approx(1.0 / 18)
    assert all(a >= b for a, b in zip(rates[1:], rates[2:]))


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tiny_checkpoint):
    from notellm2_udf.model.checkpoint import load_checkpoint
    from notellm2_udf.sample.notes import generate
    from tests.support.training_data import SAMPLE

    torch.manual_seed(0)
    model, processor = load_checkpoint(str(tiny_checkpoint))  # eval mode: no dropout noise
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


def _fixed_batch(processor, pairs: int):
    from notellm2_udf.sample.notes import generate
    from tests.support.training_data import SAMPLE

    notes_pdf, pairs_pdf = generate(SAMPLE)
    pairs_pdf = pairs_pdf.drop_duplicates("note_id").drop_duplicates("related_note_id")
    pairs_pdf = pairs_pdf[~pairs_pdf["note_id"].isin(pairs_pdf["related_note_id"])].head(pairs)
    by_id = notes_pdf.set_index("note_id")
    batch_pdf = by_id.loc[list(pairs_pdf["note_id"]) + list(pairs_pdf["related_note_id"])]
    return processor(batch_pdf.reset_index())


def _chunked_with_graph(model, inputs, temperature, pairs, chunk_pairs):
    """Reference: the same sub-batches forwarded WITH a graph in the same order (so dropout
    draws what GradCache's first pass draws), one loss, one backward."""
    from notellm2_udf.training.step import sub_batch

    notes = 2 * pairs
    outputs = [model(**sub_batch(inputs, torch.arange(start, min(start + 2 * chunk_pairs, notes))))
               for start in range(0, notes, 2 * chunk_pairs)]
    losses = training_loss(torch.cat([o.embedding for o in outputs]),
                           torch.cat([o.visual_embedding for o in outputs]), inputs["has_image"],
                           pair_partners(pairs), temperature.scale(), use_micl=True)
    losses["loss"].backward()
    return losses


@pytest.mark.parametrize("dropout", [False, True])
def test_grad_cache_gives_the_loss_and_gradients_of_a_full_graph(tiny_checkpoint, dropout):
    """GradCache (sub-batches of 2 pairs) against the same computation with the whole graph
    kept: without dropout the reference is the plain one-pass step; with dropout it is the
    same sub-batches forwarded with a graph (dropout masks depend on how the RNG stream is
    cut into forward passes, so only the chunked order can match exactly). What differs is
    float summation order, in fp32: elementwise 1e-4 relative, or, for entries near zero
    (sums that cancel), 1e-5 of the largest gradient entry of the whole model. Why the whole
    model's: an entry's rounding error grows with the magnitudes of the terms summed into it,
    not with its own value, and those terms are products of the upstream gradients, whose
    scale the largest gradient gives; a tensor whose every entry cancels to ~1e-11 (seen: a
    Q-Former query weight) has only rounding noise to compare (reordering ~100 fp32 terms,
    eps 1.2e-7, stays under 1e-5). Any real fault (a mask not replayed, a mis-assigned
    chunk) changes the gradients it touches by more than 1e-2 of that scale."""
    import copy

    from notellm2_udf.model.checkpoint import load_checkpoint
    from notellm2_udf.training.step import step_gradients

    model, processor = load_checkpoint(str(tiny_checkpoint))
    model.train(dropout)
    model.vision_tower.eval()
    inputs = _fixed_batch(processor, 8)

    def run(step):
        copied, temperature = copy.deepcopy(model), Temperature()
        torch.manual_seed(5)
        losses = step(copied, temperature)
        grads = {n: p.grad.clone() for n, p in copied.named_parameters() if p.grad is not None}
        return float(losses["loss"]), grads, temperature.value.grad.clone()

    settings = TrainSettings("m", "o", batch_pairs=8, sub_batch_pairs=2)
    cached = run(lambda m, t: step_gradients(m, inputs, t, settings, processes=1))
    if dropout:
        expected = run(lambda m, t: _chunked_with_graph(m, inputs, t, 8, 2))
    else:
        one_pass = TrainSettings("m", "o", batch_pairs=8, sub_batch_pairs=0)
        expected = run(lambda m, t: step_gradients(m, inputs, t, one_pass, processes=1))
    assert cached[0] == pytest.approx(expected[0], rel=1e-6)
    assert cached[1].keys() == expected[1].keys() and len(expected[1]) > 20
    scale = max(float(grad.abs().max()) for grad in expected[1].values())
    for name, grad in expected[1].items():
        torch.testing.assert_close(cached[1][name], grad, rtol=1e-4, atol=1e-5 * scale,
                                   msg=lambda m, name=name: f"{name}: {m}")
    torch.testing.assert_close(cached[2], expected[2], rtol=1e-4, atol=1e-7)
    assert any(p.abs().max() > 0 for p in cached[1].values())
