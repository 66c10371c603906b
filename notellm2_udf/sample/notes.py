"""Synthetic notes and behaviour pairs, deterministic per seed.

Half of the topics are *text-defined*: their notes share a vocabulary and hashtags, and their
images are random. The other half are *image-defined*: their notes share a visual motif
(shape, palette, background texture) while their text is made of pseudo-words that no other
note of the day uses, so two notes of such a pair share nothing in their text. A model that
ignores images cannot find those partners (the paper's "visual neglect").
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

TEXT_TOPICS: dict[str, tuple[str, ...]] = {
    "cooking": ("recipe", "garlic", "simmer", "noodles", "spicy", "bake", "dumplings",
                "sauce", "tofu", "broth", "crispy", "wok", "dough", "braised", "pepper"),
    "travel": ("itinerary", "flight", "hostel", "beach", "mountain", "passport", "train",
               "sunrise", "museum", "old-town", "ferry", "visa", "hike", "island", "map"),
    "fitness": ("squat", "deadlift", "cardio", "protein", "reps", "stretch", "plank",
                "kettlebell", "treadmill", "gains", "warmup", "sprint", "yoga", "core", "sets"),
    "skincare": ("serum", "moisturizer", "sunscreen", "toner", "retinol", "acne", "pores",
                 "hydrating", "cleanser", "spf", "glow", "mask", "niacinamide", "barrier",
                 "exfoliate"),
    "pets": ("puppy", "kitten", "leash", "vet", "treats", "litter", "grooming", "fetch",
             "purr", "collar", "kibble", "adopt", "paws", "whiskers", "walkies"),
    "gardening": ("seedlings", "compost", "tomato", "pruning", "soil", "watering", "basil",
                  "succulent", "mulch", "bloom", "trellis", "repot", "fertilizer", "sprout",
                  "greenhouse"),
}
TEXT_TOPIC_FILLER = ("today", "really", "love", "finally", "tried", "sharing", "best",
                     "guide", "my", "weekend", "notes", "tips")


@dataclass(frozen=True)
class VisualMotif:
    """What the images of one image-defined topic share."""

    shape: str  # circle | triangle | square | star | ring
    palette: tuple[tuple[int, int, int], ...]  # first colour is the background base
    texture: str  # stripes | dots | checker | gradient | grid


IMAGE_TOPICS: dict[str, VisualMotif] = {
    "sunset": VisualMotif("circle", ((70, 20, 90), (250, 140, 30), (250, 80, 60)), "gradient"),
    "ocean": VisualMotif("ring", ((10, 40, 120), (90, 200, 250), (240, 250, 255)), "stripes"),
    "forest": VisualMotif("triangle", ((90, 60, 30), (30, 140, 50), (160, 220, 90)), "grid"),
    "candy": VisualMotif("star", ((250, 245, 250), (240, 90, 170), (120, 220, 200)), "dots"),
    "chess": VisualMotif("square", ((20, 20, 20), (250, 220, 40), (240, 240, 240)), "checker"),
    "neon": VisualMotif("ring", ((5, 5, 15), (20, 250, 240), (250, 30, 200)), "grid"),
}

_SYLLABLES = [c + v for c in "bdfghjklmnprstvwz" for v in "aeiou"]
_SHAPES = ("circle", "triangle", "square", "star", "ring")
_TEXTURES = ("stripes", "dots", "checker", "gradient", "grid")
MISSING_IMAGE_SHARE = 0.08
MISSING_TEXT_SHARE = 0.08
MAX_PARTNERS = 10


@dataclass(frozen=True)
class SampleSpec:
    start_date: date
    days: int
    notes_per_day: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"days must be >= 1, got {self.days}")
        if self.notes_per_day < 2:
            raise ValueError(f"notes_per_day must be >= 2, got {self.notes_per_day}")

    @property
    def day_strings(self) -> list[str]:
        return [(self.start_date + timedelta(days=i)).isoformat() for i in range(self.days)]


def generate(spec: SampleSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All days of notes and related pairs as pandas DataFrames (contract columns)."""
    notes, pairs = zip(*(generate_day(spec, i) for i in range(spec.days)))
    return pd.concat(notes, ignore_index=True), pd.concat(pairs, ignore_index=True)


def generate_day(spec: SampleSpec, day_index: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One day's notes and pairs; depends only on (seed, day), not on other days."""
    day = spec.day_strings[day_index]
    rng = np.random.default_rng([spec.seed, spec.start_date.toordinal() + day_index])
    topics = list(TEXT_TOPICS) + list(IMAGE_TOPICS)
    note_topics = rng.choice(topics, size=spec.notes_per_day)
    used_words: set[str] = set()
    rows = []
    for i, topic in enumerate(note_topics):
        note_id = f"{day.replace('-', '')}-{i:06d}"
        if topic in TEXT_TOPICS:
            rows.append(_text_topic_note(rng, day, note_id, topic))
        else:
            rows.append(_image_topic_note(rng, day, note_id, topic, used_words))
    notes_df = pd.DataFrame(rows, columns=["dt", "note_id", "title", "content", "topics", "image"])
    pairs_df = _pairs(rng, day, notes_df["note_id"].to_numpy(), note_topics)
    return notes_df, pairs_df


def _text_topic_note(rng: np.random.Generator, day: str, note_id: str, topic: str) -> tuple:
    vocab = TEXT_TOPICS[topic]
    title = " ".join(rng.choice(vocab, size=rng.integers(2, 5), replace=False))
    body_words = rng.choice(vocab + TEXT_TOPIC_FILLER, size=rng.integers(8, 25))
    tags = [f"{topic}"] + list(rng.choice(vocab, size=rng.integers(0, 3), replace=False))
    content = " ".join(body_words) + " " + " ".join(f"#{tag}#" for tag in tags)
    image = None
    if rng.random() >= MISSING_IMAGE_SHARE:
        image = _encode(_random_image(rng), rng)
    return (day, note_id, title, content, tags, image)


def _image_topic_note(
    rng: np.random.Generator, day: str, note_id: str, topic: str, used_words: set[str]
) -> tuple:
    image = _encode(_motif_image(rng, IMAGE_TOPICS[topic]), rng)
    if rng.random() < MISSING_TEXT_SHARE:
        return (day, note_id, None, None, None, image)
    words = _fresh_pseudo_words(rng, int(rng.integers(6, 18)), used_words)
    title, body, tags = words[:2], words[2:-2], words[-2:]
    content = " ".join(body) + " " + " ".join(f"#{tag}#" for tag in tags)
    return (day, note_id, " ".join(title), content, tags, image)


def _fresh_pseudo_words(rng: np.random.Generator, count: int, used: set[str]) -> list[str]:
    """`count` pseudo-words never used before in `used` (which is updated)."""
    words: list[str] = []
    while len(words) < count:
        syllables = rng.choice(_SYLLABLES, size=rng.integers(2, 5))
        word = "".join(syllables)
        if word not in used:
            used.add(word)
            words.append(word)
    return words


def _pairs(
    rng: np.random.Generator, day: str, note_ids: np.ndarray, note_topics: np.ndarray
) -> pd.DataFrame:
    """Directed co-click pairs within each topic; scores as in the paper's [0.01, 30] range."""
    rows = []
    for topic in sorted(set(note_topics)):
        members = note_ids[note_topics == topic]
        if len(members) < 2:
            continue
        kind = "text" if topic in TEXT_TOPICS else "image"
        for query in members:
            others = members[members != query]
            count = min(len(others), int(rng.integers(1, 4)))
            for partner in rng.choice(others, size=count, replace=False):
                score = float(np.clip(rng.lognormal(mean=0.0, sigma=1.0), 0.01, 30.0))
                rows.append((query, partner, round(score, 4), day, kind))
    pairs_df = pd.DataFrame(
        rows, columns=["note_id", "related_note_id", "score", "dt", "pair_kind"]
    )
    pairs_df = pairs_df.sort_values(["note_id", "score", "related_note_id"],
                                    ascending=[True, False, True])
    return pairs_df.groupby("note_id").head(MAX_PARTNERS).reset_index(drop=True)


def _random_size(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(64, 321)), int(rng.integers(64, 321))


def _random_image(rng: np.random.Generator) -> Image.Image:
    palette = tuple(tuple(int(c) for c in rng.integers(0, 256, size=3)) for _ in range(3))
    motif = VisualMotif(str(rng.choice(_SHAPES)), palette, str(rng.choice(_TEXTURES)))
    return _draw(rng, motif, jitter=0)


def _motif_image(rng: np.random.Generator, motif: VisualMotif) -> Image.Image:
    return _draw(rng, motif, jitter=25)


def _draw(rng: np.random.Generator, motif: VisualMotif, jitter: int) -> Image.Image:
    width, height = _random_size(rng)
    colours = [_jitter(rng, colour, jitter) for colour in motif.palette]
    image = _texture(rng, motif.texture, width, height, colours[0], colours[2])
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 5))):
        _shape(draw, rng, motif.shape, width, height, colours[1])
    return image


def _jitter(rng: np.random.Generator, colour: tuple[int, ...], amount: int) -> tuple[int, ...]:
    if amount == 0:
        return colour
    shifted = np.asarray(colour) + rng.integers(-amount, amount + 1, size=3)
    return tuple(int(c) for c in np.clip(shifted, 0, 255))


def _texture(
    rng: np.random.Generator, kind: str, width: int, height: int,
    base: tuple[int, ...], accent: tuple[int, ...],
) -> Image.Image:
    ys, xs = np.mgrid[0:height, 0:width]
    period = int(rng.integers(8, 24))
    if kind == "stripes":
        mask = (ys // period) % 2 == 0
    elif kind == "dots":
        mask = ((xs % period) - period / 2) ** 2 + ((ys % period) - period / 2) ** 2 < (
            period / 4) ** 2
    elif kind == "checker":
        mask = ((xs // period) + (ys // period)) % 2 == 0
    elif kind == "grid":
        mask = (xs % period < 2) | (ys % period < 2)
    else:  # gradient
        t = (ys / max(height - 1, 1))[..., None]
        pixels = (1 - t) * np.asarray(base) + t * np.asarray(accent)
        return Image.fromarray(pixels.astype(np.uint8), "RGB")
    pixels = np.where(mask[..., None], np.asarray(accent), np.asarray(base))
    noise = rng.integers(-12, 13, size=pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def _shape(draw: ImageDraw.ImageDraw, rng: np.random.Generator, shape: str,
           width: int, height: int, colour: tuple[int, ...]) -> None:
    size = int(rng.integers(min(width, height) // 5, min(width, height) // 2 + 1))
    x0 = int(rng.integers(0, max(width - size, 1)))
    y0 = int(rng.integers(0, max(height - size, 1)))
    box = (x0, y0, x0 + size, y0 + size)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(size // 8, 2))
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(x0 + size // 2, y0), (x0, y0 + size), (x0 + size, y0 + size)], fill=colour)
    else:  # star
        cx, cy, r = x0 + size / 2, y0 + size / 2, size / 2
        angles = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, r, r / 2.5)
        draw.polygon(list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles))),
                     fill=colour)


def _encode(image: Image.Image, rng: np.random.Generator) -> bytes:
    """JPEG most of the time, PNG otherwise (some with an alpha channel)."""
    buffer = io.BytesIO()
    draw = rng.random()
    if draw < 0.7:
        image.save(buffer, format="JPEG", quality=int(rng.integers(60, 95)))
    elif draw < 0.9:
        image.save(buffer, format="PNG")
    else:
        rgba = image.convert("RGBA")
        rgba.putalpha(int(rng.integers(128, 256)))
        rgba.save(buffer, format="PNG")
    return buffer.getvalue()
