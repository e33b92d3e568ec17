"""The report's KPI charts, in the style and with the pieces of `leadflow.audit.charts` (frame, measured labels,
escaping, no script): `lines_svg` (several series over ordered labels, e.g. p50 and p90 per week, on a duration axis
in the unit a person reads), `stacked_hbar_svg` (one row per category split into parts, e.g. an owner's leads
touched / waiting / overdue) and `funnel_svg` (leads → MQL → SAL → SQL with each step's conversion)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from leadflow.audit.charts import (
    NO_DATA,
    PALETTE,
    Series,
    _check_lengths,
    _legend,
    _no_data,
    _number,
    _scaled_frame,
    esc,
    fit_text,
    line_marks,
    shorten,
    svg_open,
    text_width,
)

__all__ = ["duration_unit", "funnel_svg", "lines_svg", "stacked_hbar_svg"]

_UNITS: Final[tuple[tuple[float, str], ...]] = ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s"))
_INK, _MUTED = "#1a202c", "#4a5568"


def duration_unit(top_seconds: float) -> tuple[float, str]:
    """(seconds per unit, unit) for an axis reaching `top_seconds`: the largest of d / h / min / s that it spans
    at least 1.5 of (s below 90 s)."""
    for per, unit in _UNITS:
        if top_seconds >= 1.5 * per:
            return per, unit
    return 1.0, "s"


def _duration_text(seconds: float, per: float, unit: str) -> str:
    amount = seconds / per
    return f"{amount:,.1f}".removesuffix(".0") + f" {unit}"


def lines_svg(title: str, labels: Sequence[Any], series: Sequence[Series], *, width: int = 720, height: int = 300,
              seconds: bool = False, y_label: str = "", x_label: str = "", empty: str = NO_DATA) -> str:
    """A line per series over ordered `labels`, a legend under the heading, each point's tooltip
    `<series>, <label>: <value>`; with `seconds`, values are durations in seconds and the axis reads in one unit
    (s / min / h / d). A missing value breaks its line."""
    for one in series:
        _check_lengths(labels, one.values, f"values in series {one.name!r}")
    parts = svg_open(width, height, title)
    if not labels or not series:
        return _no_data(parts, width / 2, height / 2, empty)
    numbers = [[_number(v) for v in one.values] for one in series]
    known = [v for row in numbers for v in row if not math.isnan(v)]
    per, unit = duration_unit(max(known, default=0.0)) if seconds else (1.0, "")
    scaled = [[v / per for v in row] for row in numbers]

    def fmt(v: float) -> str:
        return "n/a" if math.isnan(v) else _duration_text(v * per, per, unit) if seconds else f"{v:,g}"

    legend, below = _legend([(one.legend or one.name, PALETTE[s % len(PALETTE)]) for s, one in enumerate(series)],
                            16, width - 16, 40)
    frame, ticks = _scaled_frame(width, height, [v for row in scaled for v in row],
                                 labels=[shorten(label, 14) for label in labels], tick_fmt=fmt, y_label=y_label,
                                 x_label=x_label, points=True, top=below + 8)
    xs = frame.centres(len(labels), points=True)
    parts += frame.grid(ticks, fmt)
    for s, (one, row) in enumerate(zip(series, scaled, strict=True)):
        parts += line_marks(frame, xs, row, PALETTE[s % len(PALETTE)],
                            lambda i, v, name=one.name: f"{name}, {labels[i]}: {fmt(v)}")
    parts += frame.category_labels(labels, points=True)
    parts += frame.axes(x_label, y_label)
    parts += legend
    parts.append("</svg>")
    return "\n".join(parts)


def stacked_hbar_svg(title: str, labels: Sequence[Any], series: Sequence[Series], *, width: int = 720,
                     total_fmt: str = "{:,g}", colours: Sequence[str] = PALETTE, empty: str = NO_DATA) -> str:
    """One row per label, its bar split into the series' parts (same scale for every row), the row's total at the
    bar's end and a legend under the heading, one of `colours` per series; each part's tooltip reads
    `<label>: <series> <value>`. Labels are cut to the label column (at most 35 % of the width)."""
    for one in series:
        _check_lengths(labels, one.values, f"values in series {one.name!r}")
    if not labels or not series:
        return _no_data(svg_open(width, 80, title), width / 2, 52, empty)
    legend, below = _legend([(one.legend or one.name, colours[s % len(colours)]) for s, one in enumerate(series)],
                            16, width - 16, 40)
    numbers = [[max(_number(v), 0.0) if not math.isnan(_number(v)) else 0.0 for v in one.values] for one in series]
    totals = [sum(row[i] for row in numbers) for i in range(len(labels))]
    shown = [total_fmt.format(t) for t in totals]
    names = [shorten(label, 32) for label in labels]
    left = math.ceil(min(max([40.0, *(text_width(n) for n in names)]) + 14, width * 0.35))
    right = math.ceil(max(text_width(t) for t in shown) + 12)
    top, row = below + 6, 22
    height = math.ceil(top + len(labels) * row + 10)
    parts = svg_open(width, height, title)
    plot_w = width - left - right
    scale = max([*totals, 0.0]) or 1.0
    for i, label in enumerate(labels):
        y = top + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{esc(fit_text(names[i], left - 10))}'
                     "</text>")
        x = float(left)
        for s, one in enumerate(series):
            w = numbers[s][i] / scale * plot_w
            if w > 0:
                parts.append(f'<rect x="{x:.2f}" y="{y + 3}" width="{w:.2f}" height="{row - 6}" '
                             f'fill="{esc(colours[s % len(colours)])}"><title>'
                             f"{esc(f'{label}: {one.name} {numbers[s][i]:,g}')}</title></rect>")
            x += w
        parts.append(f'<text x="{x + 4:.2f}" y="{y + 15}">{esc(shown[i])}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - 10}" stroke="{_INK}"/>')
    parts += legend
    parts.append("</svg>")
    return "\n".join(parts)


def funnel_svg(title: str, stages: Sequence[str], counts: Sequence[Any], *, width: int = 720,
               empty: str = NO_DATA) -> str:
    """A funnel: one centred bar per stage as wide as its count (relative to the first), the stage name on the
    left and, on the right, the count and the conversion from the stage before (`n/a` from 0)."""
    _check_lengths(stages, counts, "counts")
    numbers = [_number(c) for c in counts]
    if not stages or not numbers or math.isnan(numbers[0]) or numbers[0] <= 0:
        return _no_data(svg_open(width, 80, title), width / 2, 52, empty)
    notes = []
    for i, n in enumerate(numbers):
        count = "n/a" if math.isnan(n) else f"{n:,.0f}"
        before = numbers[i - 1] if i else math.nan
        if i == 0:
            notes.append(count)
        elif math.isnan(before) or before <= 0 or math.isnan(n):
            notes.append(f"{count} · n/a of {stages[i - 1]}")
        else:
            notes.append(f"{count} · {n / before:.1%} of {stages[i - 1]}")
    left = math.ceil(max(text_width(s) for s in stages) + 16)
    right = math.ceil(max(text_width(t) for t in notes) + 16)
    top, row = 34, 34
    height = top + len(stages) * row + 8
    parts = svg_open(width, height, title)
    plot_w = width - left - right
    centre = left + plot_w / 2
    for i, (stage, n) in enumerate(zip(stages, numbers, strict=True)):
        y = top + i * row
        w = 0.0 if math.isnan(n) else max(n, 0.0) / numbers[0] * plot_w
        parts.append(f'<text x="{left - 8}" y="{y + row / 2 + 4:.2f}" text-anchor="end">'
                     f"{esc(fit_text(stage, left - 12))}</text>")
        parts.append(f'<rect x="{centre - w / 2:.2f}" y="{y + 3}" width="{max(w, 1.0):.2f}" height="{row - 6}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"><title>{esc(f"{stage}: {notes[i]}")}</title></rect>')
        parts.append(f'<text x="{left + plot_w + 8:.2f}" y="{y + row / 2 + 4:.2f}" fill="{_MUTED}">'
                     f"{esc(notes[i])}</text>")
    parts.append("</svg>")
    return "\n".join(parts)
