"""The static HTML page of the QA report: one self-contained file, no script, no remote
resource (a Content Security Policy forbids both). Note text is untrusted: every value from
the tables goes through `html.escape`, so a title holding markup shows as text."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from notellm2_udf.report.content import NoteCard, QueryPanel, ReportData

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#eee}td.n{text-align:right}
.panel{display:flex;gap:12px;align-items:flex-start;margin:12px 0;padding:10px;
background:#fff;border:1px solid #ddd;border-radius:6px}
.card{width:120px;font-size:12px;overflow-wrap:anywhere}
.card.query{width:150px;border-right:2px solid #888;padding-right:12px}
.thumb{width:96px;height:96px;object-fit:cover;display:block;background:#eee}
.noimg{width:96px;height:96px;display:flex;align-items:center;justify-content:center;
background:#eee;color:#888}
.score{color:#555}.err{font-family:monospace;font-size:12px}
"""
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render_report(data: ReportData) -> str:
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">",
        f"<title>notellm2 related notes, dt={_e(data.day)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>notellm2 related notes, dt={_e(data.day)}</h1>",
        f"<p>model_version: {_e(', '.join(data.model_versions) or 'none')}; generated "
        f"{_e(datetime.now(UTC).isoformat(timespec='seconds'))}</p>",
        "<h2>Sample query notes and their top related notes</h2>",
        *(_panel(panel) for panel in data.panels),
        "" if data.panels else "<p>No related notes for this day.</p>",
        "<h2>Per-day counts</h2>",
        _table(data.day_counts),
        "<h2>Embedding errors</h2>",
        _table(data.error_counts) if data.error_counts else "<p>No errors.</p>",
        _table(data.error_examples, css_class="err") if data.error_examples else "",
        f"<h2>Score histogram, dt={_e(data.day)}</h2>",
        _histogram_svg(data.histogram),
        "</body></html>",
    ]
    return "\n".join(parts)


def _card(card: NoteCard, css: str = "card") -> str:
    image = (f"<img class='thumb' alt='' src='{_e(card.thumbnail)}'>" if card.thumbnail
             else "<div class='noimg'>no image</div>")
    rank = "" if card.rank is None else f"#{card.rank} "
    score = "" if card.score is None else f"<div class='score'>{rank}score {card.score:.4f}</div>"
    title = _e(card.title) if card.title else "<i>(no title)</i>"
    return (f"<div class='{css}'>{image}<div><b>{title}</b></div>"
            f"<div class='score'>{_e(card.note_id)}</div>{score}</div>")


def _panel(panel: QueryPanel) -> str:
    related = "".join(_card(card) for card in panel.related)
    return f"<div class='panel'>{_card(panel.query, 'card query')}{related}</div>"


def _table(rows: list[dict], css_class: str = "") -> str:
    if not rows:
        return "<p>No rows.</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{_e(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(_td(row.get(column), css_class) for column in columns) + "</tr>"
        for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _td(value: object, css_class: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        return f"<td class='n'>{text}</td>"
    return f"<td class='{css_class}'>{_e(value)}</td>"


def _histogram_svg(bins: list[tuple[float, float, int]], width: int = 640,
                   height: int = 200) -> str:
    if not bins:
        return "<p>No scores.</p>"
    peak = max(count for _, _, count in bins) or 1
    bar = width / len(bins)
    bars = []
    for i, (low, high, count) in enumerate(bins):
        h = (height - 20) * count / peak
        bars.append(
            f"<rect x='{i * bar:.1f}' y='{height - 20 - h:.1f}' width='{bar - 2:.1f}' "
            f"height='{h:.1f}' fill='#4a7bd0'><title>{low:.4f}..{high:.4f}: {count}</title>"
            "</rect>")
    labels = (f"<text x='0' y='{height - 4}' font-size='11'>{bins[0][0]:.4f}</text>"
              f"<text x='{width}' y='{height - 4}' font-size='11' text-anchor='end'>"
              f"{bins[-1][1]:.4f}</text>")
    total = sum(count for _, _, count in bins)
    return (f"<svg width='{width}' height='{height}' role='img' "
            f"aria-label='score histogram, {total} scores'>{''.join(bars)}{labels}</svg>"
            f"<p>{total} scores, max bin {peak}.</p>")
