"""The shared SVG charts (leadflow.audit.charts): per kind, hostile labels come out as text (the SVG parses as XML and holds
the label verbatim, no element of its own), empty data says so, values scale; then the report and the backtest page
with hostile owner ids, error codes and model versions."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from leadflow.audit.charts import (
    NO_DATA,
    Series,
    bar_svg,
    esc,
    grouped_bar_svg,
    hbar_svg,
    line_svg,
    nice_max,
    value_ticks,
)

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>\'"><img src=x onerror=alert(1)>&amp;'
SHAPES = {"rect", "circle", "polyline", "line", "text", "title", "svg"}  # everything a chart may contain


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # a label that broke out of its text or attribute would make this fail or add elements
    assert root.tag == f"{NS}svg"
    tags = {el.tag.removeprefix(NS) for el in root.iter()}
    assert tags <= SHAPES, tags - SHAPES
    return root


def texts(root: ET.Element, tag: str) -> list[str]:
    return [el.text or "" for el in root.iter(f"{NS}{tag}")]


def marks(root: ET.Element, tag: str = "rect") -> list[ET.Element]:
    """Data marks: the shapes that carry a tooltip (`<title>` child)."""
    return [el for el in root.iter(f"{NS}{tag}") if el.find(f"{NS}title") is not None]


def accessible(root: ET.Element, label: str) -> None:
    assert root.get("role") == "img" and root.get("aria-label") == label
    assert root[0].tag == f"{NS}title" and root[0].text == label  # the chart's name, first child


def height(el: ET.Element) -> float:
    return float(el.get("height", "nan"))


# --- per kind --------------------------------------------------------------------------------------------------------


def test_bar_escapes_every_label_and_scales_values() -> None:
    svg = bar_svg(f"Owners {HOSTILE}", ["small", HOSTILE, "big"], [2, 4, 8], x_label=HOSTILE, y_label=HOSTILE)
    root = parse(svg)
    accessible(root, f"Owners {HOSTILE}")
    assert "<script" not in svg and "<img" not in svg
    assert f"{HOSTILE}: 4" in texts(root, "title")  # the whole label in the tooltip, verbatim once parsed
    assert texts(root, "text").count(HOSTILE) == 1  # the x axis title; the y axis title is cut to the plot's height
    assert any(t.endswith("…") and HOSTILE.startswith(t[:-1]) for t in texts(root, "text"))
    assert HOSTILE[:13] + "…" in texts(root, "text")  # the long category label is cut on the axis
    bars = marks(root)
    assert [b.find(f"{NS}title").text for b in bars] == ["small: 2", f"{HOSTILE}: 4", "big: 8"]
    assert height(bars[1]) == pytest.approx(2 * height(bars[0]), abs=0.1)
    assert height(bars[2]) == pytest.approx(4 * height(bars[0]), abs=0.1)
    ticks = [float(t) for t in texts(root, "text") if t.replace(".", "").isdigit()]
    assert max(ticks) >= 8  # the axis reaches the largest bar


def test_bar_empty_and_missing_values() -> None:
    root = parse(bar_svg("Nothing", [], []))
    accessible(root, "Nothing")
    assert NO_DATA in texts(root, "text") and not marks(root)
    assert "no leads yet" in texts(parse(bar_svg("Nothing", [], [], empty="no leads yet")), "text")
    root = parse(bar_svg("Gaps", ["a", "b", "c"], [3, math.nan, math.inf]))
    assert [b.find(f"{NS}title").text for b in marks(root)] == ["a: 3"]  # no bar for an unknown value
    assert texts(root, "text").count("n/a") == 2
    with pytest.raises(ValueError, match="2 label"):
        bar_svg("Mismatch", ["a", "b"], [1])


def test_hbar_escapes_labels_and_scales_widths() -> None:
    svg = hbar_svg(HOSTILE, ["005A", HOSTILE, "x" * 40], [3, 6, 1.5], colour='red" onload="alert(1)')
    root = parse(svg)
    accessible(root, HOSTILE)
    assert "<script" not in svg
    assert not [el for el in root.iter() if any(name.startswith("on") for name in el.attrib)]
    bars = marks(root)
    assert {b.get("fill") for b in bars} == {'red" onload="alert(1)'}  # the colour stayed one attribute's value
    assert [b.find(f"{NS}title").text for b in bars] == ["005A: 3", f"{HOSTILE}: 6", f"{'x' * 40}: 1.5"]
    widths = [float(b.get("width")) for b in bars]
    assert widths[1] == pytest.approx(2 * widths[0], abs=0.1) and widths[0] == pytest.approx(2 * widths[2], abs=0.1)
    assert "x" * 25 + "…" in texts(root, "text")  # long names cut at 26 characters on the axis
    empty = parse(hbar_svg("Assignments per owner", [], []))
    assert NO_DATA in texts(empty, "text") and not marks(empty)


def test_line_escapes_labels_scales_points_and_breaks_at_gaps() -> None:
    root = parse(line_svg(HOSTILE, ["d1", HOSTILE, "d3", "d4"], [0.1, 0.2, math.nan, 0.05], y_label=HOSTILE,
                          percent=True))
    accessible(root, HOSTILE)
    points = marks(root, "circle")
    assert [p.find(f"{NS}title").text for p in points] == ["d1: 10.0%", f"{HOSTILE}: 20.0%", "d4: 5.0%"]
    base = max(float(el.get("y1")) for el in root.iter(f"{NS}line"))  # the x axis is the lowest line
    rise = [base - float(p.get("cy")) for p in points]
    assert rise[1] == pytest.approx(2 * rise[0], abs=0.1) and rise[0] == pytest.approx(2 * rise[2], abs=0.1)
    assert len(list(root.iter(f"{NS}polyline"))) == 2  # the unknown day breaks the line
    assert any(t.endswith("%") for t in texts(root, "text"))  # percent axis
    empty = parse(line_svg("Quarantine rate by day", [], []))
    assert NO_DATA in texts(empty, "text") and not marks(empty, "circle")


def test_grouped_bars_escape_series_names_scale_and_draw_the_reference() -> None:
    series = [Series(HOSTILE, [2.0, 1.0, math.nan], legend=f"{HOSTILE} (AUC 0.800)"), Series("v1", [1.5, 0.5, 0.25])]
    svg = grouped_bar_svg("Lift", [1, 2, 3], series, heading=f"Lift {HOSTILE}", category_name="decile",
                          value_name="lift", reference=1.0, x_label="score decile", y_label="lift")
    root = parse(svg)
    accessible(root, "Lift")
    assert f"Lift {HOSTILE}" in texts(root, "text") and f"{HOSTILE} (AUC 0.800)" in texts(root, "text")
    bars = marks(root)
    assert [b.find(f"{NS}title").text for b in bars] == [
        f"{HOSTILE}, decile 1: lift 2.00", f"{HOSTILE}, decile 2: lift 1.00",
        "v1, decile 1: lift 1.50", "v1, decile 2: lift 0.50", "v1, decile 3: lift 0.25",
    ]
    assert height(bars[0]) == pytest.approx(2 * height(bars[1]), abs=0.1)
    assert height(bars[2]) == pytest.approx(6 * height(bars[4]), abs=0.1)
    assert len({b.get("fill") for b in bars}) == 2  # one colour per series
    dashed = [el for el in root.iter(f"{NS}line") if el.get("stroke-dasharray")]
    assert len(dashed) == 1 and float(dashed[0].get("y1")) == pytest.approx(float(bars[1].get("y")), abs=0.1)
    low = parse(grouped_bar_svg("Lift", [1], [Series("v", [0.2])], reference=1.0))
    assert max(float(t) for t in texts(low, "text") if t.replace(".", "").isdigit()) >= 1  # axis reaches lift 1
    for empty in (grouped_bar_svg("Lift", [], []), grouped_bar_svg("Lift", [1], [])):
        assert NO_DATA in texts(parse(empty), "text")
    with pytest.raises(ValueError, match="series 'v'"):
        grouped_bar_svg("Lift", [1, 2], [Series("v", [1.0])])


def test_axis_ticks_are_round_and_cover_the_top() -> None:
    assert [nice_max(v) for v in (0, -1, math.nan, 0.7, 3, 12.5, 26)] == [1, 1, 1, 1, 5, 20, 50]
    assert value_ticks(8) == [0, 2, 4, 6, 8]
    assert value_ticks(12.5) == [0, 5, 10, 15]
    assert value_ticks(0.08) == [0, 0.02, 0.04, 0.06, 0.08]
    assert value_ticks(0) == value_ticks(math.nan) == [0, 0.25, 0.5, 0.75, 1]
    for top in (0.3, 1.82, 3, 7, 99, 1234):
        ticks = value_ticks(top)
        assert ticks[-1] >= top and ticks[-2] < top and len(ticks) <= 5


def test_esc_quotes_for_attributes() -> None:
    assert esc('<a href="x">\'&') == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"


# --- the pages that use them -----------------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        assert not any(name.startswith("on") for name, _ in attrs), (tag, attrs)

    def handle_data(self, data: str) -> None:
        self.data.append(data)


def _page(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    assert "script" not in parser.tags and "img" not in parser.tags
    return parser


def test_report_escapes_hostile_owners_error_codes_and_map_labels(state_home: Path) -> None:
    from leadflow.audit.kpis import load_kpi_data
    from leadflow.audit.report import render_report
    from leadflow.store import StateStore

    at = pd.Timestamp("2026-11-10T09:00:00Z")
    with StateStore.open() as store:
        run = store.start_run("crm_sync", {})
        with store.routing_session(run) as session:
            session.record(pd.DataFrame({
                "lead_key": ["salesforce:L1", "salesforce:L2"], "owner_id": [HOSTILE, "005A"],
                "routing_rule": ["territory", "territory"], "routing_reason": ["EMEA", "EMEA"],
                "assigned_at": [at, at], "sla_due_at": [at, at],
            }))
        store.finish_run(run, "completed", {"rows_in": 10, "rows_out": 9, "rows_quarantined": 1})
        store.add_dead_letters(run, "salesforce", "Lead", pd.DataFrame({
            "record_id": ["00Q1"], "error_code": [HOSTILE], "message": ["bad"], "retryable": [False],
            "payload": [{"OwnerId": "005A"}],
        }))
        data = load_kpi_data(store, datetime(2026, 11, 1, tzinfo=UTC), as_of=datetime(2026, 11, 20, tzinfo=UTC))
    page = render_report(data, f'flowchart TD\n  src[("{HOSTILE}")]\n  st_standardize["standardize"]\n')
    seen = _page(page)
    assert HOSTILE in "".join(seen.data)  # shown as text (owner table, error table, map, Mermaid source)
    start = page.rindex("<svg", 0, page.index('aria-label="Assignments per owner"'))
    owners = parse(page[start:page.index("</svg>", start) + len("</svg>")])
    assert f"{HOSTILE}: 1" in texts(owners, "title")


def test_backtest_page_escapes_a_hostile_model_version(tmp_path: Path) -> None:
    from leadflow.scoring.backtest import BacktestResult, lift_svg, report_for, write_plot

    def report(version: str, scores: list[float]) -> object:
        scored = pd.DataFrame({"score": pd.array(scores, dtype="Float64"), "grade": ["A"] * len(scores)})
        return report_for(scored, pd.Series([1, 1, 0, 1, 0, 0, 1, 0, 0, 0]), version=version, threshold=0.5)

    new = report(HOSTILE, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    current = report("v1", [0.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.05])
    chart = parse(lift_svg([new, current]))
    accessible(chart, "Lift by score decile")
    assert f"{HOSTILE}, decile 1: lift 2.50" in texts(chart, "title")
    assert "Lift by score decile (1 = highest scores)" in texts(chart, "text")
    page = write_plot(BacktestResult(report=new, current=current, diff=new.compare(current)), tmp_path / "lift.html")
    assert HOSTILE in "".join(_page(page.read_text(encoding="utf-8")).data)
