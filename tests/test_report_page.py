"""The report page a manager forwards: the numbers its extra sections draw (`leadflow.audit.report_sections`, on tiny
hand-made frames), every section on the page, no two text labels of any chart overlapping (label extents estimated
from the font's advance widths, rotation included), and in headless Chromium at 1440×900 and 1280×800: no horizontal
scroll and no overlapping label boxes as the browser lays them out (screenshots in /tmp/leadflow-report-*.png)."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from leadflow.audit.charts import Series, bar_svg, hbar_svg, line_svg, plan_axis_labels, text_width
from leadflow.audit.kpi_charts import duration_unit, funnel_svg, lines_svg, stacked_hbar_svg
from leadflow.audit.kpis import KpiData
from leadflow.audit.report import SECTIONS, render_report, trend_text, write_report
from leadflow.audit.report_sections import (
    clip_window,
    owner_load,
    previous_window,
    quarantine_breakdown,
    sla_by,
    tile_trend,
)
from leadflow.routing import load_routing_config
from leadflow.store import StateStore
from tests.test_report import seed

NS = "{http://www.w3.org/2000/svg}"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SINCE = datetime(2026, 11, 10, tzinfo=UTC)
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MAP = ('flowchart TD\n  src[("CRM + MAP")]\n  st_standardize["standardize"]\n'
       '  gx_standardize{{"GX gate: leads_standardize"}}\n  st_assign["assign"]\n'
       '  gx_assign{{"GX gate: leads_assigned"}}\n  sink[("output / CRM")]\n')


def t(text: str | None) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC") if text else pd.NaT


# --- label extents -----------------------------------------------------------------------------------------------------


def _boxes(svg: str) -> list[tuple[str, list[tuple[float, float]]]]:
    """Every non-empty `<text>` of `svg` as (text, its box's four corners), the box estimated from the font's
    advance widths (`text_width`), its anchor and its rotation."""
    root = ET.fromstring(svg)
    default = float(root.get("font-size", "12"))
    out = []
    for el in root.iter(f"{NS}text"):
        text = "".join(el.itertext())
        if not text.strip():
            continue
        px = float(el.get("font-size", default))
        width = text_width(text, px, bold=el.get("font-weight") == "bold")
        x, y = float(el.get("x", 0)), float(el.get("y", 0))
        x0 = {"middle": x - width / 2, "end": x - width}.get(el.get("text-anchor", "start"), x)
        corners = [(x0, y - 0.8 * px), (x0 + width, y - 0.8 * px), (x0 + width, y + 0.2 * px), (x0, y + 0.2 * px)]
        if found := re.match(r"rotate\(([-0-9.]+) ([-0-9.]+) ([-0-9.]+)\)", el.get("transform", "")):
            angle, cx, cy = (float(v) for v in found.groups())
            c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            corners = [(cx + (px_ - cx) * c - (py - cy) * s, cy + (px_ - cx) * s + (py - cy) * c)
                       for px_, py in corners]
        out.append((text, corners))
    return out


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]], slack: float = 0.5) -> bool:
    """Whether two convex quadrilaterals overlap by more than `slack` pixels (separating axis test)."""
    for quad in (a, b):
        for i in range(2):
            ax, ay = quad[i + 1][0] - quad[i][0], quad[i + 1][1] - quad[i][1]
            norm = math.hypot(ax, ay) or 1.0
            ux, uy = ax / norm, ay / norm
            pa = [x * ux + y * uy for x, y in a]
            pb = [x * ux + y * uy for x, y in b]
            if min(max(pa), max(pb)) - max(min(pa), min(pb)) <= slack:
                return False
    return True


def overlapping_labels(svg: str) -> list[tuple[str, str]]:
    """Pairs of texts of `svg` whose estimated boxes overlap; also a text reaching outside the viewBox."""
    root = ET.fromstring(svg)
    _, _, vw, vh = (float(v) for v in root.get("viewBox", "0 0 1e9 1e9").split())
    boxes = _boxes(svg)
    found = [(text, "(outside the chart)") for text, quad in boxes
             if min(x for x, _ in quad) < -1 or max(x for x, _ in quad) > vw + 1 or max(y for _, y in quad) > vh + 1]
    for i, (ta, qa) in enumerate(boxes):
        found += [(ta, tb) for tb, qb in boxes[i + 1:] if _overlap(qa, qb)]
    return found


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


# --- the sections' numbers -------------------------------------------------------------------------------------------


def tiny() -> KpiData:
    """Five assignments: rule A (owner 005A: met, missed late, open), rule B (005B: breached untouched, no SLA)."""
    assignments = pd.DataFrame({
        "lead_key": ["s:1", "s:2", "s:3", "s:4", "s:5"],
        "owner_id": ["005A", "005A", "005A", "005B", None],
        "routing_rule": ["A", "A", "A", "B", "B"],
        "assigned_at": [t("2026-11-10T09:00Z")] * 4 + [t("2026-11-19T09:00Z")],
        "sla_due_at": [t("2026-11-10T10:00Z"), t("2026-11-10T10:00Z"), t("2026-11-21T10:00Z"),
                       t("2026-11-15T10:00Z"), t(None)],
        "first_touch_at": [t("2026-11-10T09:30Z"), t("2026-11-10T11:00Z"), t(None), t(None), t(None)],
        "breached_at": [t(None), t(None), t(None), t("2026-11-15T10:00Z"), t(None)],
    })
    leads = pd.DataFrame({"lead_key": assignments["lead_key"], "pulled_at": assignments["assigned_at"],
                          "assigned_at": assignments["assigned_at"]})
    runs = pd.DataFrame({"run_id": ["r1", "r2"], "flow": ["crm_sync", "crm_sync"],
                         "started_at": [t("2026-11-10T08:00Z"), t("2026-11-19T08:00Z")], "status": ["completed"] * 2,
                         "stats": [{"rows_in": 100, "quarantined_by_stage": {"standardize": 5, "comply": 2},
                                    "quarantined_by_expectation": {"standardize": {"email_valid": 4,
                                                                                   "country_known": 1}}},
                                   {"rows_in": 100, "quarantined_by_stage": {"standardize": 3, "enrich": 0},
                                    "quarantined_by_expectation": {"standardize": {"email_valid": 3}}}]})
    return KpiData(since=SINCE, as_of=AS_OF, leads=leads, assignments=assignments,
                   lead_state=pd.DataFrame({"lead_key": ["s:1", "s:5"]}), runs=runs)


def test_sla_by_rule_and_owner_and_owner_load() -> None:
    data = tiny()
    by_rule = {r["group"]: r for r in sla_by(data, "routing_rule")}
    assert {k: (r["with_sla"], r["met"], r["missed"], r["open"]) for k, r in by_rule.items()} == {
        "A": (3, 1, 1, 1), "B": (1, 0, 1, 0)}  # s:5 has no SLA: not counted
    assert by_rule["A"]["attainment"] == 0.5 and by_rule["B"]["attainment"] == 0.0
    by_owner = sla_by(data, "owner_id", {"005A": "Avery Chen"})
    assert [(r["group"], r["name"], r["with_sla"]) for r in by_owner] == [("005A", "Avery Chen", 3),
                                                                          ("005B", None, 1)]
    load = owner_load(data, {"005B": "Blake"})
    assert [(r["owner_id"], r["name"], r["assignments"], r["touched"], r["waiting"], r["overdue"]) for r in load] == [
        ("005A", None, 3, 2, 1, 0), ("(no owner)", None, 1, 0, 1, 0), ("005B", "Blake", 1, 0, 0, 1)]


def test_quarantine_breakdown_sums_runs_and_keeps_stages_without_detail() -> None:
    rows = quarantine_breakdown(tiny())
    assert [(r["stage"], r["expectation"], r["quarantined"]) for r in rows] == [
        ("standardize", "email_valid", 7), ("comply", None, 2), ("standardize", "country_known", 1)]
    assert rows[0]["rate"] == pytest.approx(7 / 200)


def test_previous_window_clip_and_trend() -> None:
    start, end = previous_window(SINCE, AS_OF)
    assert end == SINCE and SINCE - start == AS_OF - SINCE
    clipped = clip_window(tiny(), datetime(2026, 11, 15, tzinfo=UTC))
    assert list(clipped.assignments["lead_key"]) == ["s:1", "s:2", "s:3", "s:4"]
    assert list(clipped.leads["lead_key"]) == ["s:1", "s:2", "s:3", "s:4"]
    assert list(clipped.lead_state["lead_key"]) == ["s:1"] and list(clipped.runs["run_id"]) == ["r1"]
    now = {"leads": 10, "sla": {"attainment": 0.8}, "quality": {"quarantine_rate": 0.05},
           "speed_to_lead": {"created_to_first_touch": {"p50": {"seconds": 600.0, "text": "10 min"}}}}
    before = {"leads": 8, "sla": {"attainment": 0.5}, "quality": {"quarantine_rate": 0.02},
              "speed_to_lead": {"created_to_first_touch": {"p50": {"seconds": 1200.0, "text": "20 min"}}}}
    trend = tile_trend(now, before)
    assert trend["sla.attainment"]["verdict"] == "better" and trend["quality.quarantine_rate"]["verdict"] == "worse"
    p50 = "speed_to_lead.created_to_first_touch.p50"
    assert trend[p50]["verdict"] == "better" and trend[p50]["relative"] == -0.5
    assert trend["leads"]["verdict"] is None and trend["leads"]["relative"] == 0.25  # a volume: no verdict
    assert trend_text(p50, trend[p50]) == ("▼ 50% vs 20 min", "better")
    assert trend_text("sla.attainment", trend["sla.attainment"]) == ("▲ 30.0 pts vs 50.0%", "better")
    assert trend_text("leads", tile_trend(now, None)["leads"])[0] == "no data in the previous period"


# --- charts: labels never overlap --------------------------------------------------------------------------------------


def test_axis_labels_are_levelled_thinned_or_slanted_and_never_overlap() -> None:
    long = [f"{i * 11.6:.1f} d–{(i + 1) * 11.6:.1f} d" for i in range(14)]
    plan = plan_axis_labels(long, 30, first_x=80)
    assert plan.angle == -45 and len(plan.shown) == 14  # too wide to lie level: slanted, all kept
    days = [f"2026-{m:02d}-{d:02d}" for m in (9, 10, 11) for d in range(1, 29)]
    charts = [
        bar_svg("Histogram", long, list(range(14)), width=520),
        bar_svg("Owners", [f"owner number {i} with a long name" for i in range(40)], [1000 * i for i in range(40)],
                width=520, x_label="owner", y_label="leads assigned in the window"),
        line_svg("Rate by day", days, [i / 200 for i in range(len(days))], width=520, percent=True, y_label="rate"),
        lines_svg("Weekly", days[:12], [Series("p50", [60.0 * i for i in range(12)]),
                                        Series("p90", [3600.0 * i for i in range(12)])], width=520, seconds=True,
                  x_label="week", y_label="time"),
        hbar_svg("Owners", [f"Owner {'x' * i}" for i in range(30)], list(range(30)), width=520),
        stacked_hbar_svg("SLA", ["a rule with a very long name indeed", "b"], [Series("met", [3, 1]),
                                                                            Series("missed", [1, 9])], width=520),
        funnel_svg("Funnel", ["leads", "MQL", "SAL", "SQL"], [1000, 400, 120, 7], width=520),
    ]
    for svg in charts:
        assert overlapping_labels(svg) == [], svg[:200]
    crowded = ET.fromstring(charts[1])
    assert not [el for el in crowded.iter(f"{NS}text") if (el.text or "").replace(",", "") == "39000"]  # no room
    assert len([el for el in ET.fromstring(charts[2]).iter(f"{NS}text") if (el.text or "").startswith("2026")]) < 84


def test_duration_axis_reads_in_one_unit() -> None:
    assert duration_unit(30) == (1.0, "s") and duration_unit(600) == (60.0, "min")
    assert duration_unit(5 * 3600) == (3600.0, "h") and duration_unit(9 * 86400) == (86400.0, "d")
    ticks = [el.text for el in ET.fromstring(lines_svg("w", ["a", "b"], [Series("p50", [300.0, 5400.0])],
                                                       seconds=True)).iter(f"{NS}text")]
    assert "0 h" in ticks and "1.5 h" in ticks and "n/a" not in ticks


# --- the page ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def page_file(state_home: Path, tmp_path: Path) -> Path:
    with StateStore.open() as store:
        seed(store)
        return write_report(store, SINCE, tmp_path / "report.html", MAP, as_of=AS_OF, names={"005A": "Avery Chen"},
                            routing=load_routing_config())


def test_every_section_is_on_the_page_and_no_chart_label_overlaps(page_file: Path) -> None:
    page = page_file.read_text(encoding="utf-8")
    assert "<script" not in page
    headings = re.findall(r"<h2>([^<]*)</h2>", page)
    assert headings == list(SECTIONS)
    labels = [re.search(r'aria-label="([^"]*)"', svg)[1] for svg in svgs(page)]
    for chart in ("Speed-to-lead by week of creation", "Funnel: leads reaching each stage",
                  "First-touch SLA by routing rule", "First-touch SLA by owner", "Assignments per owner",
                  "Owner load: untouched leads", "Quarantined rows by stage and expectation", "Process map",
                  "Routing graph"):
        assert chart in labels, labels
    assert any(label.startswith("Distribution") for label in labels)
    assert 'data-tile="sla.attainment"' in page and "Avery Chen" in page
    # the window Nov 10 → 20 against Oct 31 → Nov 10: the Marketo leads are last period's
    assert "compared with the previous period" in page and "▲" in page
    for svg in svgs(page):
        assert overlapping_labels(svg) == [], re.search(r'aria-label="([^"]*)"', svg)[1]


def test_a_summary_alone_still_draws_the_page(state_home: Path) -> None:
    from leadflow.audit.kpi_report import load_summary

    with StateStore.open() as store:
        seed(store)
        page = render_report(load_summary(store, SINCE, AS_OF), MAP)
    assert re.findall(r"<h2>([^<]*)</h2>", page) == list(SECTIONS)
    assert "no routing rules in this configuration" in page


OVERLAPS_JS = """() => {
  const quads = svg => [...svg.querySelectorAll("text")].filter(t => t.textContent.trim()).map(t => {
    const b = t.getBBox(), m = t.getScreenCTM();
    const pt = (x, y) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f];
    return {text: t.textContent, q: [pt(b.x, b.y), pt(b.x + b.width, b.y), pt(b.x + b.width, b.y + b.height),
                                     pt(b.x, b.y + b.height)]};
  });
  const proj = (q, u) => { const v = q.map(p => p[0] * u[0] + p[1] * u[1]); return [Math.min(...v), Math.max(...v)]; };
  const hit = (a, b) => [a, b].every(q => [0, 1].every(i => {
    const ax = [q[i + 1][0] - q[i][0], q[i + 1][1] - q[i][1]], n = Math.hypot(...ax) || 1, u = [ax[0] / n, ax[1] / n];
    const [a0, a1] = proj(a, u), [b0, b1] = proj(b, u);
    return Math.min(a1, b1) - Math.max(a0, b0) > 0.5;
  }));
  const out = [];
  document.querySelectorAll("svg").forEach(svg => {
    const boxes = quads(svg), r = svg.getBoundingClientRect(), name = svg.getAttribute("aria-label");
    boxes.forEach((a, i) => {
      if (a.q.some(p => p[0] < r.left - 1 || p[0] > r.right + 1)) out.push([name, a.text, "(outside)"]);
      boxes.slice(i + 1).forEach(b => { if (hit(a.q, b.q)) out.push([name, a.text, b.text]); });
    });
  });
  return out;
}"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("width,height", [(1440, 900), (1280, 800)])
def test_page_in_chromium_fits_its_width_and_no_label_overlaps(page_file: Path, width: int, height: int) -> None:
    from playwright.sync_api import sync_playwright

    shot = Path(f"/tmp/leadflow-report-{width}x{height}.png")
    shot.unlink(missing_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(page_file.as_uri(), wait_until="load")
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            overlaps = page.evaluate(OVERLAPS_JS)
            columns = page.evaluate("getComputedStyle(document.querySelector('.grid')).gridTemplateColumns"
                                    ".split(' ').length")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert scroll_width <= width, f"horizontal scroll: {scroll_width} px in a {width} px window"
    assert overlaps == []
    assert columns == (3 if width >= 1440 else 2)
    assert shot.stat().st_size > 50_000
