"""Synthetic notes: deterministic per seed, images decodable, pairs defined by one modality."""

from __future__ import annotations

import io
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from notellm2_udf.sample.notes import IMAGE_TOPICS, SampleSpec, generate

SPEC = SampleSpec(start_date=date(2026, 11, 24), days=2, notes_per_day=150, seed=7)


@pytest.fixture(scope="module")
def sample():
    return generate(SPEC)


def _words(row: pd.Series) -> set[str]:
    text = " ".join(str(part) for part in (row.title, row.content) if part)
    return set(re.findall(r"[\w-]+", text))


def test_same_seed_same_bytes_other_seed_other_notes(sample):
    notes_df, pairs_df = sample
    again_notes, again_pairs = generate(SPEC)
    pd.testing.assert_frame_equal(notes_df, again_notes)
    pd.testing.assert_frame_equal(pairs_df, again_pairs)
    other_notes, _ = generate(SampleSpec(SPEC.start_date, 2, 150, seed=8))
    assert not notes_df["content"].equals(other_notes["content"])


def test_days_ids_and_missing_modalities(sample):
    notes_df, _ = sample
    assert notes_df.groupby("dt").size().to_dict() == {"2026-11-24": 150, "2026-11-25": 150}
    assert notes_df["note_id"].is_unique
    assert notes_df["note_id"].iloc[0] == "20261124-000000"
    assert 0 < notes_df["image"].isna().sum() < 40
    assert 0 < notes_df["content"].isna().sum() < 40
    assert not (notes_df["image"].isna() & notes_df["content"].isna()).any()


def test_hashtags_in_content_match_topics(sample):
    notes_df, _ = sample
    with_text = notes_df.dropna(subset=["content"])
    for row in with_text.itertuples():
        assert re.findall(r"#([^#\s]+)#", row.content) == list(row.topics)


def test_images_decode_in_varied_sizes_and_formats(sample):
    notes_df, _ = sample
    images = [Image.open(io.BytesIO(data)) for data in notes_df["image"].dropna()]
    assert {image.format for image in images} == {"JPEG", "PNG"}
    assert {image.mode for image in images} >= {"RGB", "RGBA"}
    sizes = {image.size for image in images}
    assert len(sizes) > len(images) // 2
    assert all(64 <= w <= 320 and 64 <= h <= 320 for w, h in sizes)
    for image in images[:20]:
        image.load()


def test_pairs_are_well_formed(sample):
    notes_df, pairs_df = sample
    note_day = notes_df.set_index("note_id")["dt"]
    assert (pairs_df["note_id"] != pairs_df["related_note_id"]).all()
    assert pairs_df["score"].between(0.01, 30).all()
    assert pairs_df.groupby("note_id").size().max() <= 10
    assert (note_day[pairs_df["note_id"]].to_numpy() == pairs_df["dt"].to_numpy()).all()
    assert (note_day[pairs_df["related_note_id"]].to_numpy() == pairs_df["dt"].to_numpy()).all()
    assert set(pairs_df["pair_kind"]) == {"text", "image"}


def test_image_defined_pairs_share_no_text(sample):
    notes_df, pairs_df = sample
    by_id = notes_df.set_index("note_id")
    image_pairs = pairs_df[pairs_df["pair_kind"] == "image"]
    assert len(image_pairs) > 50
    for pair in image_pairs.itertuples():
        assert not _words(by_id.loc[pair.note_id]) & _words(by_id.loc[pair.related_note_id])


def test_text_defined_pairs_share_their_topic_hashtag(sample):
    notes_df, pairs_df = sample
    topics = notes_df.set_index("note_id")["topics"]
    for pair in pairs_df[pairs_df["pair_kind"] == "text"].itertuples():
        assert topics[pair.note_id][0] == topics[pair.related_note_id][0]


def _colour_signature(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data)).convert("RGB").resize((16, 16))
    histogram = np.concatenate(
        [np.histogram(np.asarray(image)[..., c], bins=8, range=(0, 256))[0] for c in range(3)])
    return histogram / histogram.sum()


def test_image_defined_partners_look_alike(sample):
    """Partners of an image-defined pair are far closer in colour than random notes."""
    notes_df, pairs_df = sample
    images = notes_df.set_index("note_id")["image"]
    image_pairs = pairs_df[pairs_df["pair_kind"] == "image"]
    partner = [np.abs(_colour_signature(images[a]) - _colour_signature(images[b])).sum()
               for a, b in zip(image_pairs["note_id"], image_pairs["related_note_id"])]
    rng = np.random.default_rng(0)
    with_image = images.dropna()
    random_pairs = rng.choice(len(with_image), size=(len(partner), 2))
    unrelated = [np.abs(_colour_signature(with_image.iloc[a])
                        - _colour_signature(with_image.iloc[b])).sum() for a, b in random_pairs]
    assert np.median(partner) < 0.5 * np.median(unrelated)
    assert len(IMAGE_TOPICS) >= 4


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="days must be >= 1"):
        SampleSpec(date(2026, 11, 24), 0, 10)
    with pytest.raises(ValueError, match="notes_per_day must be >= 2"):
        SampleSpec(date(2026, 11, 24), 1, 1)
