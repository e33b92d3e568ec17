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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

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
        f'<text x="{width / 2:.2f}" y="18" text-anchor="middle" font-size="14" font-weight="bold">'
        f"{esc(label if heading is None else heading)}</text>",
    ]


# Advance widths (em) of Liberation Sans / Arial as Chromium draws them; other characters count 1 em. `text_width`
# adds 12 % (20 % bold) so DejaVu Sans, the usual fallback sans-serif, fits too.
_WIDTHS: Final[dict[float, str]] = {
    0.19: "'", 0.22: "ijl’", 0.26: "|", 0.28: " !,./:;I[\\]ft·", 0.33: "()-`r{}", 0.35: '"', 0.39: "*",
    0.47: "^", 0.5: "Jcksvxyz", 0.55: "≥≤", 0.56: "0123456789#$?L_abdeghnopqu–é", 0.58: "+<=>~×", 0.61: "FTZ",
    0.67: "&ABEKPSVXY", 0.72: "CDHNRUw", 0.78: "GOQ", 0.83: "Mm", 0.89: "%", 0.94: "W", 1.02: "@",
}
_EM: Final[dict[str, float]] = {ch: em for em, chars in _WIDTHS.items() for ch in chars}


def text_width(text: str, px: float = 12, *, bold: bool = False) -> float:
    """A generous width in pixels of `text` in a `px` sans-serif (no font metrics without a browser)."""
    return sum(_EM.get(ch, 1.0) for ch in str(text)) * px * (1.2 if bold else 1.12)


def fit_text(text: str, limit: float, px: float = 12) -> str:
    """`text` cut (with an ellipsis) to at most `limit` pixels wide at `px`; "" when not even "…" fits."""
    text = str(text)
    if text_width(text, px) <= limit:
        return text
    while text and text_width(text + "…", px) > limit:
        text = text[:-1]
    return text + "…" if text_width("…", px) <= limit else ""



@dataclass(frozen=True)
class AxisLabels:
    """How category labels sit under an axis: which are shown (index, text), at what angle (0 or -45 degrees,
    anchored at their end under the slot's centre) and how deep below the axis they reach."""

    shown: tuple[tuple[int, str], ...]
    angle: int
    depth: float
    px: float = 11.0


_SIN45 = math.sqrt(0.5)


def plan_axis_labels(labels: Sequence[Any], slot: float, *, first_x: float, px: float = 11.0,
                     max_depth: float = 96.0) -> AxisLabels:
    """Labels for `len(labels)` slots `slot` pixels apart (the first centred at `first_x`) that never overlap:
    level when each fits its slot; else every k-th level when that keeps at least as many as slanting would; else
    slanted at 45 degrees (every k-th when the slots are closer than a line), each cut to `max_depth`."""
    texts = [str(label) for label in labels]
    if not texts:
        return AxisLabels((), 0, 0.0, px)
    widest = max(text_width(t, px) for t in texts)
    level_every = max(1, math.ceil((widest + 6) / slot)) if slot > 0 else len(texts)
    line = px * 1.3
    slant_every = max(1, math.ceil(line / (slot * _SIN45))) if slot > 0 else len(texts)
    if level_every == 1 or level_every <= slant_every:
        shown = tuple((i, t) for i, t in enumerate(texts) if i % level_every == 0)
        return AxisLabels(shown, 0, px + 8, px)
    room = (max_depth - px) / _SIN45
    shown_list = []
    for i, t in enumerate(texts):
        if i % slant_every:
            continue
        reach = (first_x + i * slot) / _SIN45 - 4  # a slanted label must not leave the chart on the left
        shown_list.append((i, fit_text(t, min(room, reach), px)))
    deepest = max(text_width(t, px) for _, t in shown_list)
    return AxisLabels(tuple(shown_list), -45, deepest * _SIN45 + px + 12, px)


def axis_label_svg(plan: AxisLabels, centres: Sequence[float], base: float) -> list[str]:
    """The `<text>` elements of `plan` under an axis at y = `base`, one per shown label at its slot's centre."""
    parts = []
    for i, text in plan.shown:
        x = centres[i]
        if plan.angle:  # the label's end a little right of and below its tick: clear of the value axis' labels
            x, y = x + 4, base + 14
            parts.append(f'<text x="{x:.2f}" y="{y:.2f}" text-anchor="end" font-size="{plan.px:g}" '
                         f'transform="rotate({plan.angle} {x:.2f} {y:.2f})">{esc(text)}</text>')
        else:
            parts.append(f'<text x="{x:.2f}" y="{base + plan.px + 4:.2f}" text-anchor="middle" '
                         f'font-size="{plan.px:g}">{esc(text)}</text>')
    return parts


def _no_data(parts: list[str], x: float, y: float, message: str) -> str:
    parts.append(f'<text x="{x:.2f}" y="{y:.2f}" text-anchor="middle" fill="{_MUTED}">{esc(message)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _check_lengths(labels: Sequence[Any], values: Sequence[Any], what: str = "values") -> None:
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} label(s) but {len(values)} {what}")


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart with a vertical value axis from 0 to `y_max`, and its axis drawing. Margins are
    measured: the left one holds the widest tick label (and the axis title), the bottom one the category labels."""

    width: float
    height: float
    left: float = 64
    right: float = 24
    top: float = 40
    bottom: float = 52
    y_max: float = 1.0
    labels: AxisLabels | None = None

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
            parts.append(f'<line x1="{self.left}" x2="{self.left + self.plot_w}" y1="{self.y(tick):.2f}" '
                         f'y2="{self.y(tick):.2f}" stroke="{_GRID}"/>')
            parts.append(f'<text x="{self.left - 6}" y="{self.y(tick) + 4:.2f}" text-anchor="end">'
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
            shown = fit_text(y_label, self.plot_h)
            parts.append(f'<text x="14" y="{mid:.2f}" text-anchor="middle" transform="rotate(-90 14 {mid:.2f})">'
                         f"{esc(shown)}</text>")
        if x_label:
            parts.append(f'<text x="{self.left + self.plot_w / 2:.2f}" y="{self.height - 8}" text-anchor="middle">'
                         f"{esc(fit_text(x_label, self.plot_w))}</text>")
        return parts

    def centres(self, count: int, *, points: bool = False) -> list[float]:
        """The x of each of `count` categories: centres of equal groups, or (`points`) the ends and evenly between."""
        if points:
            if count == 1:
                return [self.left + self.plot_w / 2]
            return [self.left + i * self.plot_w / (count - 1) for i in range(count)]
        group = self.plot_w / max(count, 1)
        return [self.left + (i + 0.5) * group for i in range(count)]

    def category_labels(self, labels: Sequence[Any], *, points: bool = False) -> list[str]:
        """The category labels (`self.labels`, planned by `_scaled_frame`) under the axis."""
        plan = self.labels or AxisLabels((), 0, 0.0)
        return axis_label_svg(plan, self.centres(len(labels), points=points), self.base)


def _scaled_frame(width: float, height: float, values: Sequence[float], floor: float = 0.0, *,
                  labels: Sequence[Any] = (), tick_fmt: Any = lambda t: f"{t:g}", y_label: str = "",
                  x_label: str = "", points: bool = False, top: float = 40) -> tuple[_Frame, list[float]]:
    """A frame whose value axis reaches the largest of `values` (and `floor`), its margins measured to fit the tick
    labels and the planned category labels (`plan_axis_labels`), and the ticks."""
    known = [v for v in values if not math.isnan(v)]
    ticks = value_ticks(max([floor, *known]))
    left = math.ceil((26 if y_label else 8) + max(text_width(tick_fmt(t)) for t in ticks) + 8)
    right = 24.0
    count = max(len(labels), 1)
    plot_w = width - left - right
    slot = plot_w / (count - 1) if points and count > 1 else plot_w / count
    first = left if points and count > 1 else left + slot / 2
    plan = plan_axis_labels(labels, slot, first_x=first, max_depth=min(110.0, height * 0.3))
    bottom = math.ceil(plan.depth + (22 if x_label else 6))
    return _Frame(width, height, left=left, right=right, top=top, bottom=bottom, y_max=ticks[-1],
                  labels=plan), ticks


def _fmt_value(value_fmt: str, value: float) -> str:
    return "n/a" if math.isnan(value) else value_fmt.format(value)


def _legend(series: Sequence[tuple[str, str]], x0: float, x1: float, y: float) -> tuple[list[str], float]:
    """Legend items (name, colour) laid out in rows from `x0` to `x1` starting at baseline `y`; the y below it."""
    parts, x = [], x0
    for name, colour in series:
        item = 18 + text_width(name) + 14
        if x > x0 and x + item > x1:
            x, y = x0, y + 18
        parts.append(f'<rect x="{x:.2f}" y="{y - 10:.2f}" width="12" height="12" fill="{esc(colour)}"/>')
        parts.append(f'<text x="{x + 18:.2f}" y="{y:.2f}">{esc(fit_text(name, x1 - x - 18))}</text>')
        x += item
    return parts, y + 8


# --- charts ----------------------------------------------------------------------------------------------------------


def bar_svg(title: str, labels: Sequence[Any], values: Sequence[Any], *, width: int = 720, height: int = 300,
            x_label: str = "", y_label: str = "", colour: str = PALETTE[0], value_fmt: str = "{:g}",
            empty: str = NO_DATA) -> str:
    """A vertical bar chart, one bar per label, each with `label: value` as its tooltip and its value above it when
    every value fits its bar's width. Labels are cut to 14 characters, then level, thinned or slanted so none
    overlaps (`plan_axis_labels`); whole in the tooltip."""
    _check_lengths(labels, values)
    parts = svg_open(width, height, title)
    if not labels:
        return _no_data(parts, width / 2, height / 2, empty)
    numbers = [_number(v) for v in values]
    frame, ticks = _scaled_frame(width, height, numbers, labels=[shorten(label, 14) for label in labels],
                                 x_label=x_label, y_label=y_label)
    parts += frame.grid(ticks, lambda t: f"{t:g}")
    group = frame.plot_w / len(labels)
    shown = [_fmt_value(value_fmt, v) for v in numbers]
    values_fit = max(text_width(text) for text in shown) <= group - 2
    for i, (label, v) in enumerate(zip(labels, numbers, strict=True)):
        x = frame.left + i * group + group * 0.15
        if not math.isnan(v):
            parts.append(f'<rect x="{x:.2f}" y="{frame.y(v):.2f}" width="{group * 0.7:.2f}" '
                         f'height="{frame.base - frame.y(v):.2f}" fill="{esc(colour)}">'
                         f"<title>{esc(label)}: {esc(shown[i])}</title></rect>")
        if values_fit:
            top = frame.base if math.isnan(v) else frame.y(v)
            parts.append(f'<text x="{x + group * 0.35:.2f}" y="{top - 4:.2f}" text-anchor="middle">'
                         f"{esc(shown[i])}</text>")
    parts += frame.category_labels(labels)
    parts += frame.axes(x_label, y_label)
    parts.append("</svg>")
    return "\n".join(parts)


def hbar_svg(title: str, labels: Sequence[Any], values: Sequence[Any], *, width: int = 720,
             colour: str = PALETTE[2], value_fmt: str = "{:g}", empty: str = NO_DATA) -> str:
    """A horizontal bar chart (one row per label, the chart as tall as its rows), for categories with long names
    such as owners; labels are cut at 26 characters and to the label column (at most 40 % of the width; whole in
    the tooltip)."""
    _check_lengths(labels, values)
    numbers = [_number(v) for v in values]
    shown = [_fmt_value(value_fmt, v) for v in numbers]
    names = [shorten(label, 26) for label in labels]
    left = math.ceil(min(max([40.0, *(text_width(n) for n in names)]) + 14, width * 0.4))
    right = math.ceil(max([24.0, *(text_width(t) for t in shown)]) + 10)
    top, row = 34, 22
    height = top + max(len(labels), 1) * row + 16
    plot_w = width - left - right
    parts = svg_open(width, height, title)
    if not labels:
        return _no_data(parts, width / 2, top + 14, empty)
    scale = max([0.0, *(v for v in numbers if not math.isnan(v))]) or 1.0
    for i, (label, v) in enumerate(zip(labels, numbers, strict=True)):
        y = top + i * row
        w = 0.0 if math.isnan(v) else max(v, 0.0) / scale * plot_w
        parts.append(f'<text x="{left - 6:.2f}" y="{y + 15}" text-anchor="end">'
                     f"{esc(fit_text(names[i], left - 10))}</text>")
        parts.append(f'<rect x="{left:.2f}" y="{y + 3}" width="{w:.2f}" height="{row - 6}" fill="{esc(colour)}">'
                     f"<title>{esc(label)}: {esc(shown[i])}</title></rect>")
        parts.append(f'<text x="{left + w + 4:.2f}" y="{y + 15}">{esc(shown[i])}</text>')
    parts.append(f'<line x1="{left:.2f}" x2="{left:.2f}" y1="{top}" y2="{height - 16}" stroke="{_INK}"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def line_marks(frame: Any, xs: Sequence[float], values: Sequence[float], colour: str,
               title: Callable[[int, float], str]) -> list[str]:
    """One series on a line chart: a polyline through each run of known values (NaN breaks the line) and a dot per
    known value whose tooltip is `title(i, value)`."""
    parts: list[str] = []
    segment: list[str] = []
    for i, v in enumerate([*values, math.nan]):
        if not math.isnan(v):
            segment.append(f"{xs[i]:.2f},{frame.y(v):.2f}")
        elif segment:
            parts.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{esc(colour)}" '
                         'stroke-width="2"/>')
            segment = []
    for i, v in enumerate(values):
        if not math.isnan(v):
            parts.append(f'<circle cx="{xs[i]:.2f}" cy="{frame.y(v):.2f}" r="3.5" fill="{esc(colour)}">'
                         f"<title>{esc(title(i, v))}</title></circle>")
    return parts


def line_svg(title: str, labels: Sequence[Any], values: Sequence[Any], *, width: int = 720, height: int = 280,
             x_label: str = "", y_label: str = "", percent: bool = False, colour: str = PALETTE[4],
             empty: str = NO_DATA) -> str:
    """A line over ordered labels (e.g. days), each point marked with `label: value` as its tooltip; `percent`
    formats the axis and the values as percentages. A missing value breaks the line. Axis labels are thinned or
    slanted so none overlaps (`plan_axis_labels`)."""
    _check_lengths(labels, values)
    parts = svg_open(width, height, title)
    if not labels:
        return _no_data(parts, width / 2, height / 2, empty)
    numbers = [_number(v) for v in values]

    def fmt(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{v:.1%}" if percent else f"{v:g}"

    frame, ticks = _scaled_frame(width, height, numbers, labels=[shorten(label, 14) for label in labels],
                                 tick_fmt=fmt, x_label=x_label, y_label=y_label, points=True)
    xs = frame.centres(len(labels), points=True)
    parts += frame.grid(ticks, fmt)
    parts += line_marks(frame, xs, numbers, colour, lambda i, v: f"{labels[i]}: {fmt(v)}")
    parts += frame.category_labels(labels, points=True)
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
    """Bars side by side per category, one colour per series, a legend under the heading and, if `reference` is
    given, a dashed line at that value (the axis always reaches it). Tooltips read
    `<series>, <category_name> <category>: <value_name> <value>`."""
    for s in series:
        _check_lengths(categories, s.values, f"values in series {s.name!r}")
    parts = svg_open(width, height, title, heading)
    if not categories or not series:
        return _no_data(parts, width / 2, height / 2, empty)
    legend, below = _legend([(one.legend or one.name, PALETTE[s % len(PALETTE)]) for s, one in enumerate(series)],
                            16, width - 16, 40)
    numbers = [[_number(v) for v in s.values] for s in series]
    line_at = math.nan if reference is None else _number(reference)
    floor = 0.0 if math.isnan(line_at) else line_at
    frame, ticks = _scaled_frame(width, height, [v for row in numbers for v in row], floor,
                                 labels=[shorten(c, 14) for c in categories], x_label=x_label, y_label=y_label,
                                 top=below + 8)
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
            parts.append(f'<rect x="{x:.2f}" y="{frame.y(v):.2f}" width="{bar:.2f}" '
                         f'height="{frame.base - frame.y(v):.2f}" fill="{colour}">'
                         f"<title>{esc(f'{one.name}, {where}: {what}')}</title></rect>")
    parts += frame.category_labels(categories)
    if not math.isnan(line_at):
        parts.append(f'<line x1="{frame.left}" x2="{frame.left + frame.plot_w}" y1="{frame.y(line_at):.2f}" '
                     f'y2="{frame.y(line_at):.2f}" stroke="{_INK}" stroke-dasharray="4 3"/>')
    parts += frame.axes(x_label, y_label)
    parts += legend
    parts.append("</svg>")
    return "\n".join(parts)
