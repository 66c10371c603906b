"""notellm2 report: escaping, thumbnails, histogram, the data collected from the tables, and
the page as headless Chromium renders it."""

from __future__ import annotations

import base64
import io
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from notellm2_udf.report.collect import collect_report_data, score_histogram
from notellm2_udf.report.content import (
    NoteCard,
    QueryPanel,
    ReportData,
    thumbnail_data_uri,
)
from notellm2_udf.report.html import render_report
from tests.support.related_world import (
    BAD_IMAGE_ID,
    DAYS,
    HOSTILE_ID,
    HOSTILE_TITLE,
    MODEL_VERSION,
    NO_CONTENT_ID,
    TOP_K,
    image_bytes,
    shared_world,
)

CHROMIUM = Path("/usr/bin/chromium")
DAY = DAYS[1]


def _decode_uri(uri: str) -> Image.Image:
    assert uri.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_thumbnails_are_small_jpegs_and_bad_images_have_none():
    big = io.BytesIO()
    Image.new("RGBA", (640, 320), (10, 20, 30, 128)).save(big, format="PNG")
    thumb = _decode_uri(thumbnail_data_uri(big.getvalue(), 96))
    assert thumb.format == "JPEG" and thumb.size == (96, 48)
    assert _decode_uri(thumbnail_data_uri(image_bytes(1, "JPEG"), 96)).size == (56, 40)
    assert thumbnail_data_uri(None, 96) is None
    assert thumbnail_data_uri(b"\x89PNG not really", 96) is None


def test_histogram_bins_cover_every_score_once(spark):
    def histogram(scores, bins):
        return score_histogram(spark.createDataFrame([(s,) for s in scores], "score float"),
                               bins)

    bins = histogram([0.1, 0.2, 0.2, 0.9, 0.5, None], bins=4)
    assert [count for *_, count in bins] == [3, 0, 1, 1]
    assert bins[0][0] == pytest.approx(0.1) and bins[-1][1] == pytest.approx(0.9)
    assert histogram([0.5, 0.5], bins=2) == [(0.5, 1.5, 2), (1.5, 2.5, 0)]
    assert histogram([], bins=2) == []


def _hostile_data() -> ReportData:
    card = NoteCard(HOSTILE_ID, HOSTILE_TITLE, thumbnail_data_uri(image_bytes(0), 96))
    related = [NoteCard(f"x{i}", f"<b>title {i}</b>", None, i, 0.9 - i / 10) for i in (1, 2)]
    return ReportData(day=DAY, model_versions=["<v1>"],
                      day_counts=[{"dt": DAY, "notes": 6, "note": "<i>x</i>"}],
                      error_counts=[{"dt": DAY, "stage": "image", "errors": 1}],
                      error_examples=[{"note_id": "n", "error": "<script>alert(2)</script>"}],
                      histogram=[(0.5, 0.7, 1), (0.7, 0.9, 2)],
                      panels=[QueryPanel(card, related)])


def test_note_text_is_escaped_everywhere():
    page = render_report(_hostile_data())
    assert "<script>" not in page and "<b>title" not in page and "<i>x</i>" not in page
    assert "&lt;script&gt;document.body.setAttribute(&#x27;data-pwned&#x27;" in page
    assert "onerror=&quot;document.title=&#x27;pwned&#x27;&quot;" in page
    assert "&lt;v1&gt;" in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


@pytest.fixture(scope="module")
def report_data(spark, tmp_path_factory) -> ReportData:
    shared_world(spark, tmp_path_factory)
    return collect_report_data(spark, "notellm2", DAY, samples=4, top=TOP_K, seed=0)


def test_report_data_from_the_tables(report_data):
    assert report_data.model_versions == [MODEL_VERSION]
    counts = {row["dt"]: row for row in report_data.day_counts}
    assert list(counts) == list(DAYS)
    assert {key: counts[DAY][key] for key in ("notes", "embedded", "with_image", "errors",
                                              "queries", "related_rows")} == {
        "notes": 6, "embedded": 5, "with_image": 4, "errors": 2, "queries": 11,
        "related_rows": 11 * TOP_K}
    assert [(r["dt"], r["stage"], r["errors"]) for r in report_data.error_counts] == [
        (DAY, "image", 1), (DAY, "input", 1)]
    assert sum(count for *_, count in report_data.histogram) == 11 * TOP_K
    assert len(report_data.panels) == 4
    for panel in report_data.panels:
        assert [card.rank for card in panel.related] == list(range(1, TOP_K + 1))
        scores = [card.score for card in panel.related]
        assert scores == sorted(scores, reverse=True)
        for card in [panel.query, *panel.related]:
            has_image = card.note_id not in (NO_CONTENT_ID, BAD_IMAGE_ID)
            assert (card.thumbnail is not None) == has_image, card.note_id
            assert card.title is not None or card.note_id == NO_CONTENT_ID


def _chromium(*args: str, home: Path) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.fail("headless Chromium is required for the report rendering test and "
                    f"{CHROMIUM} is missing: apt-get install -y chromium")
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={home / 'profile'}", "--window-size=1280,1600", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HOME": str(home)})


def test_report_renders_in_headless_chromium(report_data, tmp_path):
    data = report_data
    data.panels = [*data.panels, *_hostile_data().panels]  # a hostile title on the page too
    page = tmp_path / "report.html"
    page.write_text(render_report(data), encoding="utf-8")

    shot = tmp_path / "report.png"
    result = _chromium(f"--screenshot={shot}", page.as_uri(), home=tmp_path)
    assert shot.exists(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 1600)
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # text, thumbnails, bars: not blank

    dom = _chromium("--dump-dom", page.as_uri(), home=tmp_path).stdout
    assert "<body>" in dom and "data-pwned" not in dom.split("</head>")[1].split(">")[0]
    assert "<title>notellm2 related notes" in dom
    # the hostile title is a text node: Chromium serialises it escaped, no element from it
    assert "&lt;script&gt;document.body.setAttribute('data-pwned','1')&lt;/script&gt;" in dom
    assert dom.count("<img") == sum(
        1 for panel in data.panels for card in [panel.query, *panel.related] if card.thumbnail)
