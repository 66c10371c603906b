"""The authors' mICL prompt (`prompt_format="authors"`, the default): their text
preprocessing, their template character for character, and their tokenisation.

How a note becomes ids, as in the authors' `_tokenize_fn` (../shared/NOTELLM2.md and the
issue-14 spec, section 1):
1. The note part (template + fields, everything but the suffix) is one string, tokenised in
   one call with the tokenizer's own BOS; `<IMG>` and `<IMG_EMB>` are single added tokens
   that split it. It is cut from the right to max_text_tokens (140) tokens, counting `<IMG>`
   as one token, before anything else.
2. The suffix `，压缩为一个词：“` is tokenised in a second call; its leading special tokens
   (LLaMA's BOS) are dropped, a Metaspace word-boundary `▁` is kept, as theirs.
3. `<IMG>` is then expanded to num_query_tokens slots (the model writes the Q-Former tokens
   there). n_m = the last token; n_v = the token before `<IMG_EMB>`.
Here the note part is tokenised as its pieces between the added tokens (PlainTextEncoder
reproduces one call's ids, see tokenization.py) so that user text never becomes a special
token: a title `hello <IMG> world` is plain characters.
"""

import re
from dataclasses import dataclass

import numpy as np

from notellm2_udf.model.configuration import NoteLLM2Config
from notellm2_udf.model.tokenization import PlainTextEncoder

IMAGE_TOKEN = "<IMG>"
IMAGE_EMBEDDING_TOKEN = "<IMG_EMB>"
PAD_TOKEN = "<pad>"

# The authors' topic: `#tag#` with word characters only (Unicode \w: CJK, letters, digits, _).
HASHTAG = re.compile(r"#(\w+)#")
PLATFORM_TOPIC_MARK = "[话题]"  # `#tag[话题]#` is the platform's spelling of `#tag#`


@dataclass(frozen=True)
class PromptTemplate:
    """The fixed text of the prompt. mICL note part:
    {image_open}<IMG>{image_close}<IMG_EMB>{after_image_embedding}{text_open}TITLE{topic}TOPICS
    {content}CONTENT{text_close}; basic: {image_open}<IMG>{image_to_title}TITLE...; text only:
    {text_open}TITLE...; then {suffix} in every case."""

    image_open: str
    image_close: str
    after_image_embedding: str
    text_open: str
    image_to_title: str
    topic: str
    content: str
    text_close: str
    suffix: str
    topic_separator: str
    newline: str  # what a newline of the content becomes


TEMPLATES = {
    # The authors' characters: `：` U+FF1A, `，` U+FF0C, `“` U+201C, `”` U+201D, `。` U+3002;
    # no spaces, no newlines.
    "zh": PromptTemplate(
        image_open='笔记：{"图片":"',
        image_close='"}，压缩为一个词：“',
        after_image_embedding="”。",
        text_open='笔记：{"标题":"',
        image_to_title='","标题":"',
        topic='","话题":"',
        content='","内容":"',
        text_close='"}',
        suffix="，压缩为一个词：“",
        topic_separator="，",
        newline="。",
    ),
    # Our translation, same layout (an option for English-language notes).
    "en": PromptTemplate(
        image_open='Note:{"image":"',
        image_close='"}, compress this note into one word:"',
        after_image_embedding='". ',
        text_open='Note:{"title":"',
        image_to_title='","title":"',
        topic='","topic":"',
        content='","content":"',
        text_close='"}',
        suffix=', compress this note into one word:"',
        topic_separator=", ",
        newline=". ",
    ),
}


@dataclass(frozen=True)
class NoteFields:
    """A note's text after preprocessing."""

    title: str
    topics: str
    content: str

    @property
    def is_empty(self) -> bool:
        return not (self.title or self.topics or self.content)


def check_token_ids(config: NoteLLM2Config) -> None:
    for name in ("image_token_id", "image_embedding_token_id", "pad_token_id"):
        if getattr(config, name) is None:
            raise ValueError(f"config.{name} is not set: compose the model with init_model")


def authors_fields(title, content, topics, config: NoteLLM2Config,
                   template: PromptTemplate) -> NoteFields:
    """The authors' preprocessing (data.py of their repository), in their order:
    remove `[话题]`; each `#tag#` match (\\w+ only) of at most topic_max_chars characters,
    `#`s included, becomes a topic and every occurrence of it leaves the content (longer
    ones stay); no de-duplication; the first max_topics; newlines of the content become
    `。`; content cut to content_max_chars then stripped, title cut to title_max_chars then
    stripped. None / NaN fields are empty. With use_topics_column, the `topics` column's
    tags come before the content's.
    """
    title = title if isinstance(title, str) else ""
    content = content if isinstance(content, str) else ""
    content = content.replace(PLATFORM_TOPIC_MARK, "")
    tags = []
    if config.use_topics_column and topics is not None and hasattr(topics, "__iter__"):
        tags = [t for t in topics if isinstance(t, str) and t]
    for match in HASHTAG.finditer(content):  # over the string before removals, as theirs
        whole = match.group(0)
        if len(whole) <= config.topic_max_chars:
            tags.append(match.group(1))
            content = content.replace(whole, "")
    content = content.replace("\n", template.newline)
    return NoteFields(
        title=title[: config.title_max_chars].strip(),
        topics=template.topic_separator.join(tags[: config.max_topics]).strip(),
        content=content[: config.content_max_chars].strip(),
    )


class PromptBuilder:
    """Token ids of notes' prompts under the authors' rules (see the module docstring)."""

    def __init__(self, tokenizer, config: NoteLLM2Config):
        check_token_ids(config)
        self.tokenizer = tokenizer
        self.config = config
        self.template = template = TEMPLATES[config.prompt_language]
        self.text = text = PlainTextEncoder(tokenizer)
        self.cap = config.max_text_tokens - len(text.end_ids)
        prefix = list(text.prefix_ids)
        # The note part before the user text: constant, and always inside the cap.
        self._head = prefix + text.encode(template.image_open) + [config.image_token_id]
        self._slot = len(self._head) - 1
        nq = config.num_query_tokens
        if config.uses_micl:
            self._head += (text.encode(template.image_close, starts_input=False)
                           + [config.image_embedding_token_id])
            # The token before <IMG_EMB>, once <IMG> is expanded to nq slots.
            self._visual_position = len(self._head) - 2 + nq - 1
            self._fields_open = template.after_image_embedding + template.text_open
        else:  # basic, basic_late: the image is the first field of the one segment
            # The last visual token: by causality it has seen only the image.
            self._visual_position = self._slot + nq - 1
            self._fields_open = template.image_to_title
        if len(self._head) >= self.cap:
            raise ValueError(f"max_text_tokens={config.max_text_tokens} leaves no room after "
                             f"the image segment ({len(self._head)} tokens)")
        suffix = text.encode_with_specials(template.suffix)
        # Their rule drops index 0 for LLaMA (the BOS) and nothing for Qwen: the prefix.
        self._suffix = suffix[len(prefix):] if suffix[:len(prefix)] == prefix else suffix
        empty = self.tokenize([NoteFields("", "", "")], np.asarray([True]))[0][0]
        self.max_prompt_tokens = config.max_text_tokens + len(self._suffix) + (
            config.num_query_tokens - 1 if config.uses_image_tokens else 0)
        # Tokens left for the fields of a note with an image (before the cut).
        self.field_token_budget = self.max_prompt_tokens - len(empty)

    def prepare_fields(self, title, content, topics) -> NoteFields:
        return authors_fields(title, content, topics, self.config, self.template)

    def fields_text(self, fields: NoteFields) -> str:
        """The fields with their template, as the note part holds them after the image."""
        t = self.template
        return f"{fields.title}{t.topic}{fields.topics}{t.content}{fields.content}{t.text_close}"

    def tokenize(self, fields: list[NoteFields], with_image: np.ndarray):
        """Prompt token ids of each note -> (input_ids, embedding_positions, visual_positions).

        with_image: [n] bool, whether the note's prompt has the image segment (fusions
        without image tokens never have one).
        """
        config, text = self.config, self.text
        with_segment = np.asarray(with_image, bool) & config.uses_image_tokens
        rows_with = np.flatnonzero(with_segment)
        rows_without = np.flatnonzero(~with_segment)
        pieces: list[list[int]] = [[] for _ in fields]
        after_image = text.encode_batch(
            [self._fields_open + self.fields_text(fields[i]) for i in rows_with],
            starts_input=False)
        for row, ids in zip(rows_with, after_image):
            pieces[row] = self._head + ids
        text_only = text.encode_batch(
            [self.template.text_open + self.fields_text(fields[i]) for i in rows_without])
        for row, ids in zip(rows_without, text_only):
            pieces[row] = list(text.prefix_ids) + ids

        slots = [config.image_token_id] * (config.num_query_tokens - 1)
        input_ids = []
        for row, note in enumerate(pieces):
            note = note[: self.cap] + list(text.end_ids) + self._suffix
            if with_segment[row]:
                note[self._slot:self._slot] = slots
            input_ids.append(np.asarray(note, dtype=np.int64))
        visual_positions = np.where(with_segment, self._visual_position, 0).astype(np.int64)
        lengths = np.asarray([len(ids) for ids in input_ids], dtype=np.int64)
        return input_ids, lengths - 1, visual_positions
