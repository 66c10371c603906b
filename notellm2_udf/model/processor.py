"""From raw note fields (title, content, topics, image bytes) to NoteLLM2Model inputs."""

import re
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer

from notellm2_udf.model.configuration import NoteLLM2Config
from notellm2_udf.model.images import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image

IMAGE_TOKEN = "<IMG>"
IMAGE_EMBEDDING_TOKEN = "<IMG_EMB>"
PAD_TOKEN = "<pad>"

# A topic is a `#tag#` in the content (the platform's hashtag syntax).
HASHTAG = re.compile(r"#([^#\n]+?)#")
WHITESPACE = re.compile(r"\s+")
# Images resized per executor task: large enough to amortise the image processor's
# per-call overhead, small enough to spread a chunk over many threads.
IMAGES_PER_TASK = 32


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


@dataclass(frozen=True)
class NoteFields:
    """A note's text after the authors' preprocessing."""

    title: str
    topics: str
    content: str

    @property
    def is_empty(self) -> bool:
        return not (self.title or self.topics or self.content)


@dataclass
class PreparedNotes:
    """n notes ready for batching.

    input_ids: n int64 arrays (unpadded prompts). lengths, embedding_positions,
    visual_positions: [n] int64. image_ok, text_ok: [n] bool. image_error: n reasons (None
    unless an image was present but refused). pixel_values: [image_ok.sum(), 3, H, W] uint8,
    resized, in row order (`collate` normalises them); image_index: [n] int64 row -> index
    into pixel_values (-1 without an image).
    """

    input_ids: list[np.ndarray]
    lengths: np.ndarray
    embedding_positions: np.ndarray
    visual_positions: np.ndarray
    image_ok: np.ndarray
    text_ok: np.ndarray
    image_error: list[str | None]
    pixel_values: torch.Tensor
    image_index: np.ndarray

    @property
    def has_content(self) -> np.ndarray:
        return self.image_ok | self.text_ok


class NoteLLM2Processor:
    """Tokenizer + image processor + the prompt rules of a NoteLLM2Config."""

    def __init__(self, tokenizer, image_processor, config: NoteLLM2Config):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.config = config
        self.pieces = PROMPTS[config.prompt_language]
        for name in ("image_token_id", "image_embedding_token_id", "pad_token_id"):
            if getattr(config, name) is None:
                raise ValueError(f"config.{name} is not set: compose the model with init_model")
        ids = {name: self._ids(text) for name, text in vars(self.pieces).items()}
        # Whatever the tokenizer puts first on its own (BOS for LLaMA, nothing for Qwen2).
        prefix = np.asarray(tokenizer("")["input_ids"], dtype=np.int64)
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
        return np.asarray(self.tokenizer(text, add_special_tokens=False)["input_ids"], np.int64)

    # -- text --------------------------------------------------------------------------

    def prepare_fields(self, title, content, topics) -> NoteFields:
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
            return self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

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

    # -- images ------------------------------------------------------------------------

    @property
    def image_size(self) -> int:
        size = self.config.vision_config.image_size
        return size if isinstance(size, int) else max(size)

    def preprocess_images(
        self, images: list[Image.Image], executor: Executor | None = None
    ) -> torch.Tensor:
        """RGB images -> [n, 3, image_size, image_size] uint8, resized and cropped by the image
        processor but not yet rescaled or normalised (`normalize_pixels` does that).

        Why uint8: a quarter of the memory per prepared chunk and of the bytes copied to the
        GPU, and no float work on the host, whose CPUs are busy decoding. With an executor,
        groups of images are processed in its threads.
        """
        if not images:
            return torch.zeros(0, 3, self.image_size, self.image_size, dtype=torch.uint8)
        groups = [images[i:i + IMAGES_PER_TASK] for i in range(0, len(images), IMAGES_PER_TASK)]
        pixels = (executor.map if executor is not None else map)(self._resized_pixels, groups)
        return torch.cat(list(pixels))

    def _resized_pixels(self, images: list[Image.Image]) -> torch.Tensor:
        return self.image_processor(images=images, return_tensors="pt", do_rescale=False,
                                    do_normalize=False)["pixel_values"]

    def normalize_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Resized pixels -> float32 pixel_values for the vision tower, on the tensor's device.

        The same arithmetic as the image processor's own rescale and normalise (rescale in
        float64, then float32 (x - mean) / std), so the values are identical to its output.
        """
        image_processor = self.image_processor
        values = pixels.to(torch.float64)
        if image_processor.do_rescale:
            values = values * image_processor.rescale_factor
        values = values.to(torch.float32)
        if image_processor.do_normalize:
            def channels(stats) -> torch.Tensor:
                return torch.tensor(stats, dtype=torch.float32, device=values.device).view(-1, 1, 1)

            values = (values - channels(image_processor.image_mean)) / channels(
                image_processor.image_std)
        return values

    # -- notes -------------------------------------------------------------------------

    def prepare_notes(
        self,
        notes_pdf: pd.DataFrame,
        *,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        executor: Executor | None = None,
    ) -> PreparedNotes:
        """`notes` contract columns (title, content, topics, image) -> PreparedNotes.

        A missing or refused image leaves the image segment out of the prompt; empty text
        leaves the fields as empty strings. Neither ever raises. With an executor, images are
        decoded and preprocessed in its threads (the result does not depend on it).
        """
        n = len(notes_pdf)
        images, image_error = [], [None] * n
        image_index = np.full(n, -1, dtype=np.int64)

        def decode(data) -> Image.Image | ImageDecodeError | None:
            if data is None or (isinstance(data, float) and np.isnan(data)):
                return None
            try:
                return decode_image(bytes(data), max_pixels=max_image_pixels,
                                    draft_size=self.image_size)
            except ImageDecodeError as err:
                return err

        decoded = (executor.map if executor is not None else map)(
            decode, _column(notes_pdf, "image", n))
        for row, image in enumerate(decoded):
            if isinstance(image, ImageDecodeError):
                image_error[row] = image.reason
            elif image is not None:
                image_index[row] = len(images)
                images.append(image)
        image_ok = image_index >= 0
        fields = [
            self.prepare_fields(title, content, topics)
            for title, content, topics in zip(
                _column(notes_pdf, "title", n), _column(notes_pdf, "content", n),
                _column(notes_pdf, "topics", n),
            )
        ]
        input_ids, embedding_positions, visual_positions = self.tokenize(fields, image_ok)
        return PreparedNotes(
            input_ids=input_ids,
            lengths=embedding_positions + 1,
            embedding_positions=embedding_positions,
            visual_positions=visual_positions,
            image_ok=image_ok,
            text_ok=np.asarray([not f.is_empty for f in fields], dtype=bool),
            image_error=image_error,
            pixel_values=self.preprocess_images(images, executor),
            image_index=image_index,
        )

    def collate(
        self, notes: PreparedNotes, rows: np.ndarray, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        """Model inputs for `rows` of `notes`, right-padded to the longest of them, on `device`
        (default: the CPU); pixels are normalised there."""
        lengths = notes.lengths[rows]
        input_ids = np.full((len(rows), int(lengths.max())), self.config.pad_token_id, np.int64)
        for out_row, row in enumerate(rows):
            input_ids[out_row, : lengths[out_row]] = notes.input_ids[row]
        image_rows = notes.image_index[rows]
        pixels = notes.pixel_values[torch.from_numpy(image_rows[image_rows >= 0])]
        inputs = {
            "input_ids": torch.from_numpy(input_ids),
            "embedding_positions": torch.from_numpy(notes.embedding_positions[rows]),
            "visual_positions": torch.from_numpy(notes.visual_positions[rows]),
            "has_image": torch.from_numpy(image_rows >= 0),
        }
        inputs = {name: tensor.to(device) for name, tensor in inputs.items()}
        inputs["pixel_values"] = self.normalize_pixels(pixels.to(device))
        return inputs

    def __call__(self, notes_pdf: pd.DataFrame, **kwargs) -> dict[str, torch.Tensor]:
        """All notes as one batch of model inputs (tests, small inputs)."""
        notes = self.prepare_notes(notes_pdf, **kwargs)
        return self.collate(notes, np.arange(len(notes_pdf)))

    # -- files -------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> None:
        """Tokenizer and image-processor files (JSON); the prompt rules live in config.json."""
        self.tokenizer.save_pretrained(directory)
        self.image_processor.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, config: NoteLLM2Config | None = None):
        config = config or NoteLLM2Config.from_pretrained(directory)
        # Given our config, AutoTokenizer takes the class from tokenizer_config.json instead of
        # reading config.json itself (and warning about the "notellm2" model type).
        tokenizer = AutoTokenizer.from_pretrained(directory, config=config)
        # The PIL backend on every machine, so that CPU and GPU hosts preprocess identically.
        image_processor = AutoImageProcessor.from_pretrained(directory, backend="pil")
        return cls(tokenizer, image_processor, config)


def _one_line(text: str) -> str:
    """Newlines (and runs of spaces left by removed hashtags) become one space."""
    return WHITESPACE.sub(" ", text).strip()


def _column(notes_pdf: pd.DataFrame, name: str, n: int):
    """A column's values, or n Nones when the frame lacks it."""
    return notes_pdf[name].tolist() if name in notes_pdf.columns else [None] * n
