"""Inline SVG charts for leadflow's self-contained HTML pages (the run report and the backtest lift chart): no script,
no network, no plotting library.

Every chart is one function returning SVG text: `bar_svg` (vertical bars, one per label), `hbar_svg` (horizontal bars,
for long category names such as owners), `line_svg` (a line over ordered labels such as days) and `grouped_bar_svg`
(several series side by side per category, with a legend and an optional reference line, e.g. lift 1). They share
the frame (`svg_open`: `role="img"`, an `aria-label` and a `<title>` naming the chart), the value axis (`value_ticks`),
the palette (`PALETTE`) and the escaping (`esc`): every label, title and formatted value is HTML-escaped, because
labels come from lead data (owner ids, error codes, model versions) and are untrusted. A chart with nothing to show
says so (`NO_DATA`, or the caller's `empty` text) instead of drawing empty axes. Missing values (NaN, ±inf) draw no
mark and read "n/a"."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NO_DATA",
    "PALETTE",
    "Series",
    "bar_svg",
    "esc",
    "grouped_bar_svg",
    "hbar_svg",
    "line_svg",
    "nice_max",
    "shorten",
    "svg_open",
    "value_ticks",
]

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#c53030")
NO_DATA = "no data in this window"
FONT = 'font-family="sans-serif" font-size="12"'
_INK, _GRID, _MUTED = "#1a202c", "#e2e8f0", "#718096"


# --- shared pieces ---------------------------------------------------------------------------------------------------


def esc(value: Any) -> str:
    """`value` as text safe in SVG/HTML content and in a double- or single-quoted attribute."""
    return html.escape(str(value), quote=True)


def shorten(label: Any, limit: int) -> str:
    """`label` as text of at most `limit` characters, an ellipsis marking a cut (escape the result, not the input)."""
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> float:
    """`value` as a float; NaN when it is missing or not a finite number (NaN, ±inf, None, text)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return math.nan
    return result if math.isfinite(result) else math.nan


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5, 5 or 10 × 10^k at or above `value` (1.0 for a non-positive or missing value)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def value_ticks(top: float, intervals: int = 4) -> list[float]:
    """Round ticks from 0 to the first tick at or above `top`, at most `intervals` steps of a round size
    (1, 2, 2.5 or 5 × 10^k); the last tick is the axis maximum."""
    step = nice_max(top / intervals) if top > 0 and math.isfinite(top) else 0.25
    count = max(1, math.ceil(top / step - 1e-9)) if top > 0 and math.isfinite(top) else intervals
    return [round(i * step, 12) for i in range(count + 1)]


def svg_open(width: float, height: float, label: str, heading: str | None = None) -> list[str]:
    """The opening of an accessible chart: `role="img"`, `aria-label` and `<title>` = `label`, a white background
    and the visible heading (`heading`, default `label`). Close with `"</svg>"`."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{esc(label)}" {FONT}>',
        f"<title>{esc(label)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" font-size="14" font-weight="bold">'
        f"{esc(label if heading is None else heading)}</text>",
    ]


def _text_width(text: str) -> float:
    """A generous estimate of the width of `text` at the charts' 12 px sans-serif (no font metrics without a browser)."""
    return 7.0 * len(text)


def _no_data(parts: list[str], x: float, y: float, message: str) -> str:
    parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="{_MUTED}">{esc(message)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _check_lengths(labels: Sequence[Any], values: Sequence[Any], what: str = "values") -> None:
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} label(s) but {len(values)} {what}")


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart with a vertical value axis from 0 to `y_max`, and its axis drawing."""

    width: float
    height: float
    left: float = 64
    right: float = 24
    top: float = 40
    bottom: float = 52
    y_max: float = 1.0

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom

    @property
    def base(self) -> float:
        return self.top + self.plot_h

    def y(self, value: float) -> float:
        return self.base - min(max(value, 0.0), self.y_max) / self.y_max * self.plot_h

    def grid(self, ticks: Sequence[float], fmt: Any) -> list[str]:
        parts = []
        for tick in ticks:
            parts.append(f'<line x1="{self.left}" x2="{self.left + self.plot_w}" y1="{self.y(tick):.1f}" '
                         f'y2="{self.y(tick):.1f}" stroke="{_GRID}"/>')
            parts.append(f'<text x="{self.left - 6}" y="{self.y(tick) + 4:.1f}" text-anchor="end">'
                         f"{esc(fmt(tick))}</text>")
        return parts

    def axes(self, x_label: str, y_label: str) -> list[str]:
        mid = self.top + self.plot_h / 2
        parts = [
            f'<line x1="{self.left}" x2="{self.left}" y1="{self.top}" y2="{self.base}" stroke="{_INK}"/>',
            f'<line x1="{self.left}" x2="{self.left + self.plot_w}" y1="{self.base}" y2="{self.base}" '
            f'stroke="{_INK}"/>',
        ]
        if y_label:
            parts.append(f'<text x="14" y="{mid:.1f}" text-anchor="middle" transform="rotate(-90 14 {mid:.1f})">'
                         f"{esc(y_label)}</text>")
        if x_label:
            parts.append(f'<text x="{self.left + self.plot_w / 2:.1f}" y="{self.height - 10}" text-anchor="middle">'
                         f"{esc(x_label)}</text>")
        return parts

    def category_labels(self, labels: Sequence[Any], limit: int = 14) -> list[str]:
        """One label under each of `len(labels)` equal groups, cut at `limit` characters, in a smaller font when
        the longest would not fit its group at the chart's 12 px."""
        group = self.plot_w / max(len(labels), 1)
        widest = max((_text_width(shorten(label, limit)) for label in labels), default=0.0)
        size = ' font-size="10"' if widest > group else ""
        return [f'<text x="{self.left + (i + 0.5) * group:.1f}" y="{self.base + 16}" text-anchor="middle"{size}>'
                f"{esc(shorten(label, limit))}</text>" for i, label in enumerate(labels)]


def _scaled_frame(width: float, height: float, values: Sequence[float],
                  floor: float = 0.0) -> tuple[_Frame, list[float]]:
    known = [v for v in values if not math.isnan(v)]
    ticks = value_ticks(max([floor, *known]))
    return _Frame(width, height, y_max=ticks[-1]), ticks


def _fmt_value(value_fmt: str, value: float) -> str:
    return "n/a" if math.isnan(value) else value_fmt.format(value)


# --- charts ----------------------------------------------------------------------------------------------------------


def bar_svg(title: str, labels: Sequence[Any], values: Sequence[Any], *, width: int = 720, height: int = 300,
            x_label: str = "", y_label: str = "", colour: str = PALETTE[0], value_fmt: str = "{:g}",
            empty: str = NO_DATA) -> str:
    """A vertical bar chart, one bar per label, each with its value above it and `label: value` as its tooltip.
    Labels longer than 14 characters are cut on the axis (whole in the tooltip)."""
    _check_lengths(labels, values)
    parts = svg_open(width, height, title)
    if not labels:
        return _no_data(parts, width / 2, height / 2, empty)
    numbers = [_number(v) for v in values]
    frame, ticks = _scaled_frame(width, height, numbers)
    parts += frame.grid(ticks, lambda t: f"{t:g}")
    group = frame.plot_w / len(labels)
    for i, (label, v) in enumerate(zip(labels, numbers, strict=True)):
        x = frame.left + i * group + group * 0.15
        shown = _fmt_value(value_fmt, v)
        if not math.isnan(v):
            parts.append(f'<rect x="{x:.1f}" y="{frame.y(v):.1f}" width="{group * 0.7:.1f}" '
                         f'height="{frame.base - frame.y(v):.1f}" fill="{esc(colour)}">'
                         f"<title>{esc(label)}: {esc(shown)}</title></rect>")
        top = frame.base if math.isnan(v) else frame.y(v)
        parts.append(f'<text x="{x + group * 0.35:.1f}" y="{top - 4:.1f}" text-anchor="middle">{esc(shown)}</text>')
    parts += frame.category_labels(labels)
    parts += frame.axes(x_label, y_label)
    parts.append("</svg>")
    return "\n".join(parts)


def hbar_svg(title: str, labels: Sequence[Any], values: Sequence[Any], *, width: int = 720,
             colour: str = PALETTE[2], value_fmt: str = "{:g}", empty: str = NO_DATA) -> str:
    """A horizontal bar chart (one row per label, the chart as tall as its rows), for categories with long names
    such as owners; labels longer than 26 characters are cut (whole in the tooltip)."""
    _check_lengths(labels, values)
    left, right, top, row = 180, 60, 34, 22
    height = top + max(len(labels), 1) * row + 16
    plot_w = width - left - right
    parts = svg_open(width, height, title)
    if not labels:
        return _no_data(parts, width / 2, top + 14, empty)
    numbers = [_number(v) for v in values]
    scale = max([0.0, *(v for v in numbers if not math.isnan(v))]) or 1.0
    for i, (label, v) in enumerate(zip(labels, numbers, strict=True)):
        y = top + i * row
        w = 0.0 if math.isnan(v) else max(v, 0.0) / scale * plot_w
        shown = _fmt_value(value_fmt, v)
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{esc(shorten(label, 26))}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{esc(colour)}">'
                     f"<title>{esc(label)}: {esc(shown)}</title></rect>")
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 15}">{esc(shown)}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - 16}" stroke="{_INK}"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def line_svg(title: str, labels: Sequence[Any], values: Sequence[Any], *, width: int = 720, height: int = 280,
             x_label: str = "", y_label: str = "", percent: bool = False, colour: str = PALETTE[4],
             empty: str = NO_DATA) -> str:
    """A line over ordered labels (e.g. days), each point marked with `label: value` as its tooltip; `percent`
    formats the axis and the values as percentages. A missing value breaks the line. At most ~10 axis labels."""
    _check_lengths(labels, values)
    parts = svg_open(width, height, title)
    if not labels:
        return _no_data(parts, width / 2, height / 2, empty)
    numbers = [_number(v) for v in values]
    frame, ticks = _scaled_frame(width, height, numbers)

    def x(i: int) -> float:
        return frame.left + (frame.plot_w / 2 if len(labels) == 1 else i * frame.plot_w / (len(labels) - 1))

    def fmt(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{v:.1%}" if percent else f"{v:g}"

    parts += frame.grid(ticks, fmt)
    segment: list[str] = []
    for i, v in enumerate([*numbers, math.nan]):
        if not math.isnan(v):
            segment.append(f"{x(i):.1f},{frame.y(v):.1f}")
        elif segment:
            parts.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{esc(colour)}" '
                         'stroke-width="2"/>')
            segment = []
    every = max(1, math.ceil(len(labels) / 10))
    for i, (label, v) in enumerate(zip(labels, numbers, strict=True)):
        if not math.isnan(v):
            parts.append(f'<circle cx="{x(i):.1f}" cy="{frame.y(v):.1f}" r="3.5" fill="{esc(colour)}">'
                         f"<title>{esc(label)}: {esc(fmt(v))}</title></circle>")
        if i % every == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{frame.base + 16}" text-anchor="middle">'
                         f"{esc(shorten(label, 14))}</text>")
    parts += frame.axes(x_label, y_label)
    parts.append("</svg>")
    return "\n".join(parts)


@dataclass(frozen=True)
class Series:
    """One series of a grouped bar chart: `name` in each bar's tooltip, `legend` (default `name`) in the legend,
    one value per category (NaN: no bar)."""

    name: str
    values: Sequence[Any]
    legend: str | None = None


def grouped_bar_svg(title: str, categories: Sequence[Any], series: Sequence[Series], *, heading: str | None = None,
                    width: int = 720, height: int = 360, x_label: str = "", y_label: str = "",
                    category_name: str = "", value_name: str = "", value_fmt: str = "{:.2f}",
                    reference: float | None = None, empty: str = NO_DATA) -> str:
    """Bars side by side per category, one colour per series, a legend at the top right and, if `reference` is
    given, a dashed line at that value (the axis always reaches it). Tooltips read
    `<series>, <category_name> <category>: <value_name> <value>`."""
    for s in series:
        _check_lengths(categories, s.values, f"values in series {s.name!r}")
    parts = svg_open(width, height, title, heading)
    if not categories or not series:
        return _no_data(parts, width / 2, height / 2, empty)
    numbers = [[_number(v) for v in s.values] for s in series]
    line_at = math.nan if reference is None else _number(reference)
    floor = 0.0 if math.isnan(line_at) else line_at
    frame, ticks = _scaled_frame(width, height, [v for row in numbers for v in row], floor)
    parts += frame.grid(ticks, lambda t: f"{t:g}")
    group = frame.plot_w / len(categories)
    bar = group * 0.8 / len(series)
    for s, (one, row) in enumerate(zip(series, numbers, strict=True)):
        colour = PALETTE[s % len(PALETTE)]
        for g, (category, v) in enumerate(zip(categories, row, strict=True)):
            if math.isnan(v):
                continue
            x = frame.left + g * group + group * 0.1 + s * bar
            where = f"{category_name} {category}" if category_name else str(category)
            what = f"{value_name} {value_fmt.format(v)}" if value_name else value_fmt.format(v)
            parts.append(f'<rect x="{x:.1f}" y="{frame.y(v):.1f}" width="{bar:.1f}" '
                         f'height="{frame.base - frame.y(v):.1f}" fill="{colour}">'
                         f"<title>{esc(f'{one.name}, {where}: {what}')}</title></rect>")
    parts += frame.category_labels(categories)
    if not math.isnan(line_at):
        parts.append(f'<line x1="{frame.left}" x2="{frame.left + frame.plot_w}" y1="{frame.y(line_at):.1f}" '
                     f'y2="{frame.y(line_at):.1f}" stroke="{_INK}" stroke-dasharray="4 3"/>')
    parts += frame.axes(x_label, y_label)
    legend_w = 18 + max(_text_width(one.legend or one.name) for one in series)
    lx = max(frame.left + 8, frame.left + frame.plot_w - max(legend_w, 200))
    for s, one in enumerate(series):
        ly = frame.top + 4 + s * 18
        parts.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{PALETTE[s % len(PALETTE)]}"/>')
        parts.append(f'<text x="{lx + 18}" y="{ly + 10}">{esc(one.legend or one.name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
