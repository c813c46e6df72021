"""Small server-side SVG charts: no JavaScript, crisp at any size, printable.

Every label goes through `escape`; numbers are formatted by the caller's `fmt`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

PALETTE = {
    "blue": "#2a5bd7",
    "green": "#1f8a4c",
    "red": "#c53030",
    "amber": "#d69e2e",
    "grey": "#cbd2dc",
    "ink": "#1c2430",
    "muted": "#6b7585",
    "line": "#e3e6eb",
}
AGING_COLOURS = ("#7ea6f6", "#f6c453", "#ed8936", "#e05d44", "#b42323")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent: float = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def column_chart(
    items: Sequence[tuple[str, float]],
    fmt: Callable[[float], str],
    *,
    colours: Sequence[str] | None = None,
    width: int = 560,
    height: int = 220,
    title: str = "",
    show_values: bool = True,
) -> Markup:
    """Vertical bars with a light grid; values printed above the bars."""
    left, right, top, bottom = 8, 8, 22, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((v for _, v in items), default=0))
    n = max(len(items), 1)
    slot = plot_w / n
    bar = min(slot * 0.62, 64)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(5):
        y = top + plot_h * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{PALETTE["line"]}" stroke-width="1"/>'
        )
    for i, (label, value) in enumerate(items):
        h = plot_h * (value / peak) if peak else 0
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h - h
        colour = colours[i % len(colours)] if colours else PALETTE["blue"]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0):.1f}" rx="3" '
            f'fill="{colour}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
        )
        if show_values and value:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 6:.1f}" text-anchor="middle" font-size="11" '
                f'fill="{PALETTE["ink"]}">{escape(fmt(value))}</text>'
            )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="11" fill="{PALETTE["muted"]}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def progress_bars(
    items: Sequence[tuple[str, int, int]], *, width: int = 360, title: str = ""
) -> Markup:
    """One row per item: a grey track for the total, a blue bar for the part, and 'part/total'."""
    row_h, label_w, right = 34, 92, 92
    height = max(len(items), 1) * row_h + 8
    track_w = width - label_w - right
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    if not items:
        parts.append(
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="12" '
            f'fill="{PALETTE["muted"]}">No reminders sent in this period.</text>'
        )
    for i, (label, part, total) in enumerate(items):
        y = 4 + i * row_h
        share = part / total if total else 0
        parts.append(
            f'<text x="0" y="{y + 18}" font-size="12" fill="{PALETTE["ink"]}">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 6}" width="{track_w}" height="16" rx="8" '
            f'fill="{PALETTE["line"]}"/>'
            f'<rect x="{label_w}" y="{y + 6}" width="{track_w * share:.1f}" height="16" rx="8" '
            f'fill="{PALETTE["blue"]}"><title>{escape(label)}: {part} of {total}</title></rect>'
            f'<text x="{width - right + 10}" y="{y + 18}" font-size="12" '
            f'fill="{PALETTE["ink"]}">{share:.0%} · {part}/{total}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def donut(
    segments: Sequence[tuple[str, float, str]],
    *,
    centre: str,
    caption: str = "",
    size: int = 180,
    title: str = "",
) -> Markup:
    """A ring split into (label, value, colour) segments with a big number in the middle."""
    r, stroke = size / 2 - 14, 22
    cx = cy = size / 2
    circumference = 2 * math.pi * r
    total = sum(v for _, v, _ in segments)
    parts = [
        f'<svg viewBox="0 0 {size} {size}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{PALETTE["line"]}" '
        f'stroke-width="{stroke}"/>',
    ]
    offset = 0.0
    if total:
        for label, value, colour in segments:
            length = circumference * value / total
            if length <= 0:
                continue
            parts.append(
                f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{colour}" '
                f'stroke-width="{stroke}" stroke-dasharray="{length:.2f} {circumference:.2f}" '
                f'stroke-dashoffset="{-offset:.2f}" transform="rotate(-90 {cx} {cy})">'
                f"<title>{escape(label)}: {value:g}</title></circle>"
            )
            offset += length
    parts.append(
        f'<text x="{cx}" y="{cy + 2}" text-anchor="middle" font-size="26" font-weight="700" '
        f'fill="{PALETTE["ink"]}">{escape(centre)}</text>'
        f'<text x="{cx}" y="{cy + 22}" text-anchor="middle" font-size="11" '
        f'fill="{PALETTE["muted"]}">{escape(caption)}</text></svg>'
    )
    return Markup("".join(parts))


SERIES_COLOURS = ("#6b7585", "#2a5bd7", "#1f8a4c", "#d69e2e", "#c53030", "#805ad5")


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    fmt: Callable[[float], str],
    *,
    width: int = 640,
    height: int = 220,
    title: str = "",
) -> Markup:
    """One polyline per named series over the same x labels; a None value leaves a gap."""
    left, right, top, bottom = 44, 120, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, points in series for v in points if v is not None]
    peak = _nice_max(max(values, default=0))
    n = max(len(labels), 2)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(5):
        y = top + plot_h * i / 4
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{PALETTE["line"]}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="{PALETTE["muted"]}">{escape(fmt(peak * (4 - i) / 4))}</text>'
        )
    for i in (0, len(labels) - 1) if labels else ():
        x = left + plot_w * i / (n - 1)
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" font-size="10" '
            f'fill="{PALETTE["muted"]}">{escape(labels[i])}</text>'
        )
    for k, (name, points) in enumerate(series):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        coords = [
            f"{left + plot_w * i / (n - 1):.1f},{top + plot_h * (1 - v / peak):.1f}"
            for i, v in enumerate(points)
            if v is not None
        ]
        if coords:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(coords)}"><title>{escape(name)}</title></polyline>'
            )
        parts.append(
            f'<text x="{left + plot_w + 10}" y="{top + 14 + 16 * k}" font-size="11" '
            f'fill="{colour}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
