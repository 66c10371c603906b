"""The prompt of our first release (`prompt_format="v1"`), kept so that checkpoints trained
with it keep their embeddings: a spaced template whose pieces and fields are tokenised one by
one, the text segment capped at max_text_tokens, topics from the `topics` column and the
content's hashtags. prompt.py holds the authors' prompt (the default)."""

import re
from dataclasses import dataclass

import numpy as np

from notellm2_udf.model.configuration import NoteLLM2Config
from notellm2_udf.model.prompt import NoteFields, check_token_ids
from notellm2_udf.model.tokenization import PlainTextEncoder

# A topic is a `#tag#` in the content (the platform's hashtag syntax).
HASHTAG = re.compile(r"#([^#\n]+?)#")
WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class PromptPieces:
    """The fixed text around the fields; the mICL prompt reads, with <IMG> and <IMG_EMB>:
    {image_open}<IMG>{image_close}<IMG_EMB>{after_image_embedding}{text_open}TITLE{topic}TOPICS
    {content}CONTENT{text_close}   (one line per segment). `basic` joins the segments with
    {image_to_title} after the visual tokens."""

    image_open: str
    image_close: str
    after_image_embedding: str
    text_open: str
    image_to_title: str
    topic: str
    content: str
    text_close: str
    topic_separator: str


PROMPTS = {
    "en": PromptPieces(
        image_open='Note: {"image": "',
        image_close='"}, compress this note into one word: "',
        after_image_embedding='".\n',
        text_open='Note: {"title": "',
        image_to_title='", "title": "',
        topic='", "topic": "',
        content='", "content": "',
        text_close='"}, compress this note into one word: "',
        topic_separator=", ",
    ),
    # The authors' released prompts (笔记 / 图片 / 标题 / 话题 / 内容 / 压缩为一个词).
    "zh": PromptPieces(
        image_open='笔记：{"图片": "',
        image_close='"}，压缩为一个词："',
        after_image_embedding='"。\n',
        text_open='笔记：{"标题": "',
        image_to_title='", "标题": "',
        topic='", "话题": "',
        content='", "内容": "',
        text_close='"}，压缩为一个词："',
        topic_separator="，",
    ),
}


class V1PromptBuilder:
    """Token ids of notes' prompts under the v1 rules (see the module docstring)."""

    def __init__(self, tokenizer, config: NoteLLM2Config):
        self.tokenizer = tokenizer
        self.config = config
        self.pieces = PROMPTS[config.prompt_language]
        check_token_ids(config)
        self.text = PlainTextEncoder(tokenizer)
        ids = {name: self._ids(text) for name, text in vars(self.pieces).items()}
        # Whatever the tokenizer puts first on its own (BOS for LLaMA, nothing for Qwen2).
        prefix = np.asarray(self.text.prefix_ids, dtype=np.int64)
        image_slots = np.full(config.num_query_tokens, config.image_token_id, dtype=np.int64)
        if config.uses_micl:
            before_visual = [prefix, ids["image_open"], image_slots, ids["image_close"]]
            after_visual = [
                np.asarray([config.image_embedding_token_id]),
                ids["after_image_embedding"],
                ids["text_open"],
            ]
        else:  # basic: the image is the first field of the one segment
            before_visual = [prefix, ids["image_open"], image_slots, ids["image_to_title"]]
            after_visual = []
        self._head_with_image = np.concatenate(before_visual + after_visual)
        self._visual_position = sum(len(part) for part in before_visual) - 1
        self._head_without_image = np.concatenate([prefix, ids["text_open"]])
        self._topic_ids, self._content_ids = ids["topic"], ids["content"]
        self._tail_ids = ids["text_close"]
        template_tokens = len(ids["text_open"]) + len(ids["topic"]) + len(ids["content"])
        self.field_token_budget = config.max_text_tokens - template_tokens - len(self._tail_ids)
        if self.field_token_budget < 1:
            raise ValueError(
                f"max_text_tokens={config.max_text_tokens} leaves no room for the fields: the "
                f"prompt template alone takes {config.max_text_tokens - self.field_token_budget}"
            )

    def _ids(self, text: str) -> np.ndarray:
        return np.asarray(self.text.encode(text), np.int64)

    @property
    def max_prompt_tokens(self) -> int:
        """The longest prompt: the image head, the text template and a full field budget."""
        return (len(self._head_with_image) + len(self._topic_ids) + len(self._content_ids)
                + len(self._tail_ids) + self.field_token_budget)

    def prepare_fields(self, title, content, topics):
        """The authors' text preprocessing; None / NaN fields count as empty.

        Topics are the given ones followed by the `#tag#` hashtags of the content (which are
        removed from it), deduplicated, each cut to topic_max_chars, at most max_topics.
        Newlines and runs of whitespace become one space; title and content are then cut to
        title_max_chars / content_max_chars characters.
        """
        config = self.config
        content = content if isinstance(content, str) else ""
        given = [] if topics is None or not hasattr(topics, "__iter__") else list(topics)
        candidates = [t for t in given if isinstance(t, str)] + HASHTAG.findall(content)
        cleaned = (_one_line(t)[: config.topic_max_chars] for t in candidates)
        unique_topics = list(dict.fromkeys(t for t in cleaned if t))[: config.max_topics]
        title = _one_line(title if isinstance(title, str) else "")
        return NoteFields(
            title=title[: config.title_max_chars],
            topics=self.pieces.topic_separator.join(unique_topics),
            content=_one_line(HASHTAG.sub(" ", content))[: config.content_max_chars],
        )

    def tokenize(self, fields: list[NoteFields], with_image: np.ndarray):
        """Prompt token ids of each note -> (input_ids, embedding_positions, visual_positions).

        The text segment (template + fields) is capped at max_text_tokens: field tokens over
        the budget are cut from the content first, then the topics, then the title.
        """
        def batch_ids(texts: list[str]) -> list[list[int]]:
            return self.text.encode_batch(texts)

        titles = batch_ids([f.title for f in fields])
        topics = batch_ids([f.topics for f in fields])
        contents = batch_ids([f.content for f in fields])
        image_head = self._head_with_image if self.config.uses_image_tokens else None
        input_ids, visual_positions = [], []
        for title, topic, content, has_image in zip(titles, topics, contents, with_image):
            budget = self.field_token_budget
            title = title[:budget]
            topic = topic[: budget - len(title)]
            content = content[: budget - len(title) - len(topic)]
            head = image_head if has_image and image_head is not None else self._head_without_image
            input_ids.append(np.concatenate([
                head, np.asarray(title, np.int64), self._topic_ids, np.asarray(topic, np.int64),
                self._content_ids, np.asarray(content, np.int64), self._tail_ids,
            ]))
            visual_positions.append(self._visual_position if head is image_head else 0)
        lengths = np.asarray([len(ids) for ids in input_ids], dtype=np.int64)
        return input_ids, lengths - 1, np.asarray(visual_positions, dtype=np.int64)


def _one_line(text: str) -> str:
    """Newlines (and runs of spaces left by removed hashtags) become one space."""
    return WHITESPACE.sub(" ", text).strip()
