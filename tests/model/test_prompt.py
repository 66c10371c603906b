"""The authors' prompt: their preprocessing, their template and tokenisation (checked against
an independent re-implementation of their data.py / MLlama code on LLaMA- and Qwen-style
tokenizers), and user text that never becomes a special token."""

import re

import numpy as np
import pytest
import torch

from notellm2_udf.model.compose import add_special_tokens
from notellm2_udf.model.processor import NoteLLM2Processor
from notellm2_udf.model.prompt import PromptBuilder
from notellm2_udf.model.tiny_tokenizer import build_tiny_tokenizer
from tests.support.notes import image_bytes, notes_frame
from tests.support.tokenizers import (
    llama_style_tokenizer,
    llama_style_unigram,
    qwen_style_tokenizer,
)

NQ = 16
# The authors' strings, typed from their data.py (str.format templates: doubled braces).
MICL = ('笔记：{{"图片":"<IMG>"}}，压缩为一个词：“<IMG_EMB>”。'
        '笔记：{{"标题":"{}","话题":"{}","内容":"{}"}}')
BASIC = '笔记：{{"图片":"<IMG>","标题":"{}","话题":"{}","内容":"{}"}}'
TEXT_ONLY = '笔记：{{"标题":"{}","话题":"{}","内容":"{}"}}'
SUFFIX = "，压缩为一个词：“"

SAMPLE_NOTES = [
    (" 周末 探店\n记录",
     "今天#好吃[话题]#去了\n新店#一个特别特别特别长的话题标签啊[话题]# 还有 #美食# #好吃#  "),
    ("周末咖啡", "这家店的拿铁很好喝 #咖啡# #探店#"),
    ("Autumn hike", "Red leaves everywhere #hiking# #autumn#\nsecond line"),
    ("", ""),
    ("很长的笔记" * 6, "今天去了新店，好吃美食咖啡拿铁。" * 10),
    ("龘靐齉爩" * 5, "龘靐齉爩麤" * 16),  # characters outside the vocabularies: 3 bytes each
]


def authors_preprocess(title: str, content: str) -> tuple[str, str, str]:
    """Their split_content_hashtag + NoteDataset, re-typed."""
    content = content.replace("[话题]", "")
    tags = []
    for m in re.finditer(r"#(\w+)#", content):
        m = m.group()
        if len(m) <= 16:
            tags.append(m.replace("#", ""))
            content = content.replace(m, "")
    topics = "，".join(tags[:10]).strip()
    content = content.replace("\n", "。")
    return title[:20].strip(), topics, content[:80].strip()


def authors_ids(tokenizer, template: str, title: str, content: str, has_bos: bool):
    """Their _tokenize_fn and MLlama positions: (expanded ids, n_m, n_v or None)."""
    text = template.format(*authors_preprocess(title, content))
    ids = tokenizer(text, max_length=140, truncation=True)["input_ids"]
    suffix = tokenizer(SUFFIX, max_length=140, truncation=True)["input_ids"]
    ids = ids + suffix[1 if has_bos else 0:]
    image = tokenizer.convert_tokens_to_ids("<IMG>")
    if image not in ids:
        return ids, len(ids) - 1, None
    emb = tokenizer.convert_tokens_to_ids("<IMG_EMB>")
    n_v = ids.index(emb) - 1 + NQ - 1 if emb in ids else None
    at = ids.index(image)
    return ids[:at] + [image] * NQ + ids[at + 1:], len(ids) - 1 + NQ - 1, n_v


def builder_for(tokenizer, tiny_config, fusion="micl_late", **options) -> PromptBuilder:
    token_ids = add_special_tokens(tokenizer)
    config = tiny_config.__class__(**{**tiny_config.to_dict(), **token_ids, "fusion": fusion,
                                      **options})
    return PromptBuilder(tokenizer, config)


TOKENIZERS = {"llama": (llama_style_tokenizer, True), "qwen": (qwen_style_tokenizer, False)}


def test_preprocessing_is_the_authors_on_their_worked_example(tiny_processor):
    fields = tiny_processor.prompt.prepare_fields(*SAMPLE_NOTES[0], topics=["ignored"])
    assert fields.title == "周末 探店\n记录"
    assert fields.topics == "好吃，美食，好吃"
    assert fields.content == "今天去了。新店#一个特别特别特别长的话题标签啊# 还有"
    # One token per byte: 140 would cut this note, so the cap is raised to see all of it.
    processor = tiny_processor.with_options(max_text_tokens=400)
    text = processor.tokenizer.decode(
        processor.prompt.tokenize([fields], np.asarray([True]))[0][0])
    assert text.replace("<IMG>" * 16, "<IMG>") == (
        '笔记：{"图片":"<IMG>"}，压缩为一个词：“<IMG_EMB>”。笔记：{"标题":"周末 探店\n记录",'
        '"话题":"好吃，美食，好吃","内容":"今天去了。新店#一个特别特别特别长的话题标签啊# 还有"}'
        "，压缩为一个词：“")


def test_topics_column_is_an_option(tiny_processor):
    config = tiny_processor.config
    with_column = builder_for(build_tiny_tokenizer(), config, use_topics_column=True)
    assert with_column.prepare_fields("t", "a #b# c", ["given"]).topics == "given，b"
    assert tiny_processor.prompt.prepare_fields("t", "a #b# c", ["given"]).topics == "b"


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
@pytest.mark.parametrize(("fusion", "template"), [("micl_late", MICL), ("basic_late", BASIC),
                                                  ("late_only", TEXT_ONLY)])
def test_ids_and_positions_equal_the_authors(kind, fusion, template, tiny_parts):
    make, has_bos = TOKENIZERS[kind]
    tokenizer = make()
    builder = builder_for(tokenizer, tiny_parts[0].config, fusion)
    for title, content in SAMPLE_NOTES:
        expected, n_m, n_v = authors_ids(tokenizer, template, title, content, has_bos)
        fields = builder.prepare_fields(title, content, None)
        ids, embedding_positions, visual_positions = builder.tokenize([fields], np.array([True]))
        assert ids[0].tolist() == expected, (kind, title)
        assert embedding_positions[0] == n_m
        if fusion == "micl_late":
            assert visual_positions[0] == n_v
            assert ids[0][n_v + 1] == builder.config.image_embedding_token_id
    long_note = builder.tokenize([builder.prepare_fields(*SAMPLE_NOTES[-1], None)],
                                 np.array([True]))[0][0]
    # The 140 cut applies to the note part with <IMG> as one token; the suffix comes on top.
    assert len(long_note) == builder.max_prompt_tokens
    assert long_note[-len(builder._suffix):].tolist() == builder._suffix


def test_llama_bos_comes_once_and_the_suffix_keeps_its_word_boundary(tiny_parts):
    tokenizer = llama_style_tokenizer()
    builder = builder_for(tokenizer, tiny_parts[0].config)
    ids = builder.tokenize([builder.prepare_fields("t", "c", None)], np.array([True]))[0][0]
    assert ids[0] == tokenizer.bos_token_id and (ids == tokenizer.bos_token_id).sum() == 1
    suffix_tokens = tokenizer.convert_ids_to_tokens(builder._suffix)
    assert suffix_tokens[0].startswith("▁")  # a fresh SentencePiece call, as theirs


SPECIAL_STRINGS = ["<IMG>", "<IMG_EMB>", "<s>", "</s>", "<unk>", "<pad>", "<|endoftext|>",
                   "<|im_start|>", "<|im_end|>", "[PAD]"]


@pytest.mark.parametrize("make", [llama_style_tokenizer, llama_style_unigram,
                                  qwen_style_tokenizer, build_tiny_tokenizer])
@pytest.mark.parametrize("prompt_format", ["authors", "v1"])
def test_user_text_never_becomes_a_special_token(make, prompt_format, tiny_parts):
    tokenizer = make()
    config = tiny_parts[0].config
    token_ids = add_special_tokens(tokenizer)
    config = config.__class__(**{**config.to_dict(), **token_ids, "prompt_format": prompt_format})
    processor = NoteLLM2Processor(tokenizer, tiny_parts[1].image_processor, config)
    special = set(processor.prompt.text.special_ids)
    assert {token_ids["image_token_id"], token_ids["image_embedding_token_id"]} <= special
    notes = processor.prepare_notes(notes_frame(
        [{"title": s, "content": f"a{s}b {s}", "topics": [s], "image": image_bytes(0)}
         for s in SPECIAL_STRINGS]
        + [{"title": "hello <IMG> world", "content": " ".join(SPECIAL_STRINGS)}]))
    for row, ids in enumerate(notes.input_ids):
        counts = {i: int((ids == i).sum()) for i in special}
        assert counts[config.image_token_id] == 16, row
        assert counts[config.image_embedding_token_id] == 1, row
        prefix = processor.prompt.text.prefix_ids
        allowed = {config.image_token_id, config.image_embedding_token_id}
        if prompt_format == "v1":  # its template's newline is unknown to the Unigram
            allowed.add(tokenizer.unk_token_id)
        others = [i for i in ids[len(prefix):].tolist() if i in special and i not in allowed]
        assert others == [], (row, tokenizer.convert_ids_to_tokens(others))
    text = tokenizer.decode(notes.input_ids[-1], skip_special_tokens=False)
    assert "hello <IMG> world" in text.replace("▁", " ")


def test_a_note_titled_with_the_image_token_encodes(tiny_model, tiny_processor):
    inputs = tiny_processor(notes_frame([
        {"title": "hello <IMG> world", "content": "<IMG_EMB><IMG>", "image": image_bytes(0)},
        {"title": "plain", "image": image_bytes(1)}]))
    with torch.no_grad():
        output = tiny_model(**inputs)
    assert torch.isfinite(output.embedding).all() and output.embedding.shape == (2, 64)


def test_missing_image_is_a_zero_tensor_with_the_full_prompt(tiny_processor):
    notes = tiny_processor.prepare_notes(notes_frame([
        {"title": "no image", "image": None}, {"title": "bad", "image": b"garbage"},
        {"title": "ok", "image": image_bytes(2)}]))
    assert notes.image_ok.tolist() == [False, False, True]
    assert notes.image_error[1].startswith("unknown format")
    for ids in notes.input_ids:
        assert (ids == tiny_processor.config.image_token_id).sum() == 16
    inputs = tiny_processor.collate(notes, np.arange(3))
    assert inputs["has_image"].tolist() == [True, True, True]
    assert inputs["pixel_values"][:2].eq(0).all()
    assert inputs["pixel_values"][2].equal(tiny_processor.pixels.normalize(notes.pixel_values[0]))
    # The learned-vector option leaves the image segment out.
    learned = tiny_processor.with_options(missing_image="learned_vector")
    notes = learned.prepare_notes(notes_frame([{"title": "no image", "image": None}]))
    assert (notes.input_ids[0] == tiny_processor.config.image_token_id).sum() == 0
    assert learned.collate(notes, np.arange(1))["has_image"].tolist() == [False]
