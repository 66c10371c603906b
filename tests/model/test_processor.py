from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch

from notellm2_udf.model.compose import compose_tiny_random
from notellm2_udf.model.images import decode_image
from notellm2_udf.model.processor import NoteLLM2Processor
from tests.support.notes import image_bytes, mixed_notes, notes_frame


def decode(processor, ids) -> str:
    return processor.tokenizer.decode(ids)


@pytest.fixture
def v1_processor(v1_parts):
    return v1_parts[1]


def test_v1_fields_follow_our_first_preprocessing(v1_processor):
    fields = v1_processor.prompt.prepare_fields(
        title="A title that is longer than twenty characters",
        content="Line one\nline two #travel# and #a tag far longer than sixteen chars# end "
        + "x" * 100,
        topics=["given", "travel"],
    )
    assert fields.title == "A title that is long"
    assert fields.topics == "given, travel, a tag far longer"
    assert fields.content == ("Line one line two and end " + "x" * 100)[:80]
    assert "#" not in fields.content and "\n" not in fields.content


def test_at_most_ten_topics_and_missing_fields_are_empty(v1_processor):
    content = " ".join(f"#t{i}#" for i in range(15))
    fields = v1_processor.prompt.prepare_fields(title=None, content=content, topics=None)
    assert fields.topics.split(", ") == [f"t{i}" for i in range(10)]
    assert fields.title == "" and fields.content == ""
    assert v1_processor.prompt.prepare_fields(float("nan"), None, np.array([])).is_empty


def test_v1_micl_prompt_layout_and_positions(v1_processor):
    notes = v1_processor.prepare_notes(notes_frame([
        {"title": "Cat", "content": "A cat #pets#", "image": image_bytes(0)},
        {"title": "Dog", "content": "No image here", "image": None},
    ]))
    config = v1_processor.config
    with_image, without_image = notes.input_ids
    assert (with_image == config.image_token_id).sum() == 16
    # n_v is the opening quote right before <IMG_EMB>; n_m is the last token.
    assert with_image[notes.visual_positions[0] + 1] == config.image_embedding_token_id
    assert decode(v1_processor, with_image[: notes.visual_positions[0] + 1]).endswith(
        'compress this note into one word: "')
    assert decode(v1_processor, with_image[notes.visual_positions[0] + 1:]) == (
        '<IMG_EMB>".\nNote: {"title": "Cat", "topic": "pets", "content": "A cat"}, '
        'compress this note into one word: "')
    # Without an image the image segment is left out.
    assert decode(v1_processor, without_image) == (
        'Note: {"title": "Dog", "topic": "", "content": "No image here"}, '
        'compress this note into one word: "')
    assert notes.embedding_positions.tolist() == [len(with_image) - 1, len(without_image) - 1]
    assert notes.image_ok.tolist() == [True, False]
    assert notes.image_index.tolist() == [0, -1]
    assert notes.pixel_values.shape == (1, 3, 32, 32)


def test_v1_text_segment_is_capped_at_140_tokens_keeping_the_template(v1_processor):
    notes = v1_processor.prepare_notes(notes_frame([
        {"title": "T" * 20, "content": "c" * 80, "topics": [f"topic{i}" for i in range(10)]},
    ]))
    ids = notes.input_ids[0]
    assert len(ids) == 140  # byte tokenizer: 204 field bytes do not fit in the budget
    assert decode(v1_processor, ids).startswith(
        'Note: {"title": "' + "T" * 20 + '", "topic": "topic0')
    assert decode(v1_processor, ids).endswith(
        '", "content": ""}, compress this note into one word: "')


def test_refused_and_missing_images_are_flagged_not_raised(tiny_processor):
    notes = tiny_processor.prepare_notes(notes_frame([
        {"title": "a", "image": b"garbage"},
        {"title": "", "content": "", "image": None},
        {"title": "b", "image": image_bytes(1, size=(100, 100))},
    ]), max_image_pixels=5000)
    assert notes.image_ok.tolist() == [False, False, False]
    assert notes.image_error[0].startswith("unknown format")
    assert notes.image_error[1] is None
    assert notes.image_error[2] == "too many pixels: 100x100 > 5000"
    assert notes.text_ok.tolist() == [True, False, True]
    assert notes.has_content.tolist() == [True, False, True]
    assert notes.pixel_values.shape[0] == 0


@pytest.mark.parametrize(
    ("fusion", "language", "expected"),
    [
        ("basic", "en", ('Note: {"image": "<IMG>*", "title": "Cat", "topic": "", "content": ""}, '
                        'compress this note into one word: "')),
        ("late_only", "en", ('Note: {"title": "Cat", "topic": "", "content": ""}, '
                            'compress this note into one word: "')),
        ("micl_late", "zh", ('笔记：{"图片": "<IMG>*"}，压缩为一个词："<IMG_EMB>"。\n'
                            '笔记：{"标题": "Cat", "话题": "", "内容": ""}，压缩为一个词："')),
    ],
)
def test_v1_prompt_of_each_fusion_and_language(v1_parts, fusion, language, expected):
    model, processor = v1_parts
    config = model.config.__class__(**{**model.config.to_dict(), "fusion": fusion,
                                       "prompt_language": language})
    processor = NoteLLM2Processor(processor.tokenizer, processor.image_processor, config)
    notes = processor.prepare_notes(notes_frame([{"title": "Cat", "image": image_bytes(0)}]))
    text = decode(processor, notes.input_ids[0]).replace("<IMG>" * 16, "<IMG>*")
    assert text == expected
    if fusion == "basic":
        assert decode(processor, notes.input_ids[0][: notes.visual_positions[0] + 1]).endswith(
            '<IMG>", "title": "')


def test_collate_right_pads_and_keeps_row_order(v1_processor):
    notes = v1_processor.prepare_notes(notes_frame([
        {"title": "short", "image": None},
        {"title": "a much longer title", "content": "with content", "image": image_bytes(0)},
        {"title": "x", "image": image_bytes(1)},
    ]))
    inputs = v1_processor.collate(notes, np.array([2, 0]))
    assert inputs["input_ids"].shape == (2, notes.lengths[2])
    assert inputs["input_ids"][1, notes.lengths[0]:].eq(v1_processor.config.pad_token_id).all()
    assert inputs["has_image"].tolist() == [True, False]
    assert inputs["pixel_values"].shape[0] == 1
    assert inputs["pixel_values"][0].equal(v1_processor.pixels.normalize(notes.pixel_values[1]))


def test_processor_needs_the_special_token_ids(tiny_processor):
    config = tiny_processor.config.__class__(**{**tiny_processor.config.to_dict(),
                                                "image_token_id": None})
    with pytest.raises(ValueError, match="image_token_id is not set"):
        NoteLLM2Processor(tiny_processor.tokenizer, tiny_processor.image_processor, config)


def test_compose_is_reproducible_with_the_seed():
    first, _ = compose_tiny_random(seed=3)
    second, _ = compose_tiny_random(seed=3)
    third, _ = compose_tiny_random(seed=4)
    assert first.embedding_projection.weight.equal(second.embedding_projection.weight)
    assert not first.embedding_projection.weight.equal(third.embedding_projection.weight)


def test_decoding_in_threads_gives_the_same_notes(tiny_processor):
    notes_pdf = pd.concat([mixed_notes(), notes_frame([
        {"title": "broken", "image": image_bytes(9, size=(64, 64))[:200]},
        {"title": "huge", "image": image_bytes(3, size=(400, 300))},
    ])] * 5, ignore_index=True)
    alone = tiny_processor.prepare_notes(notes_pdf, max_image_pixels=100_000)
    with ThreadPoolExecutor(4) as executor:
        threaded = tiny_processor.prepare_notes(notes_pdf, max_image_pixels=100_000,
                                                executor=executor)
    assert torch.equal(threaded.pixel_values, alone.pixel_values)
    assert threaded.pixel_values.shape[0] == 30  # 6 decodable images of 10, five times
    assert threaded.image_error == alone.image_error
    assert threaded.image_error[8].startswith("corrupt or truncated image")
    assert threaded.image_error[9] == "too many pixels: 400x300 > 100000"
    assert np.array_equal(threaded.image_index, alone.image_index)
    assert all(np.array_equal(a, b) for a, b in zip(threaded.input_ids, alone.input_ids))


def test_pixels_stay_uint8_until_collate_normalises_them_like_the_image_processor(
        tiny_processor):
    images = [decode_image(image_bytes(i, size=(60 + 7 * i, 45 + 3 * i), fmt=fmt))
              for i, fmt in enumerate(["PNG", "JPEG", "GIF", "WEBP"])]
    resized = torch.stack([tiny_processor.pixels.resize(image) for image in images])
    assert resized.dtype == torch.uint8 and resized.shape == (4, 3, 32, 32)
    expected = tiny_processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    # The same float64 rescale and float32 normalisation: identical values, not just close.
    assert torch.equal(tiny_processor.pixels.normalize(resized), expected)
    notes = tiny_processor.prepare_notes(notes_frame([
        {"title": "a", "image": image_bytes(1)},
        {"title": "b"},
        {"title": "c", "image": image_bytes(2)},
    ]))
    inputs = tiny_processor.collate(notes, np.array([2, 1, 0]))
    assert inputs["pixel_values"].dtype == torch.float32
    normalised = tiny_processor.pixels.normalize(notes.pixel_values[[1, 0]])
    # The note without an image gets the authors' zero tensor, in its row.
    assert torch.equal(inputs["pixel_values"],
                       torch.stack([normalised[0], torch.zeros_like(normalised[0]), normalised[1]]))


def test_each_image_is_resized_right_after_its_decoding(tiny_processor, monkeypatch):
    """Originals are freed as soon as they are resized: preparing a batch holds one decoded
    original per decoding thread, never the batch's (what lets a day of large screenshots
    embed under a worker memory limit; the slow spark-submit test shows that end to end)."""
    import weakref

    from notellm2_udf.model import processor as processor_module

    live, most_live = set(), [0]

    def tracked_decode(*args, **kwargs):
        image = decode_image(*args, **kwargs)
        live.add(id(image))
        weakref.finalize(image, live.discard, id(image))
        most_live[0] = max(most_live[0], len(live))
        return image

    monkeypatch.setattr(processor_module, "decode_image", tracked_decode)
    notes_pdf = notes_frame([{"title": f"shot {i}", "image": image_bytes(i, size=(600, 800))}
                             for i in range(8)])
    prepared = tiny_processor.prepare_notes(notes_pdf)
    assert prepared.image_ok.all() and most_live[0] == 1
    size = tiny_processor.image_size
    assert tuple(prepared.pixel_values.shape) == (8, 3, size, size)
