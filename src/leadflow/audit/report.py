"""`leadflow report`: the lead-flow KPIs as one self-contained HTML page (inline SVG charts, no script, no network),
drawn from the summary dict `leadflow.audit.kpi_report.report_summary` computes (what `leadflow kpis --json` prints)
and the numbers `leadflow.audit.report_sections` adds (trend against the previous period, SLA by rule and owner, owner
load, quarantine by stage and expectation); this module only draws them. Sections are cards in a CSS grid (3 columns
at 1440 px, 2 at 1280 px); the stage map (from the stage declarations) and the routing graph (`leadflow.routing.graph`,
from the run config's rules) are drawn as SVG. The charts come from `leadflow.audit.charts` and
`leadflow.audit.kpi_charts` (`bar_svg`, `hbar_svg`, `line_svg` are re-exported here)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from leadflow.audit.charts import NO_DATA, PALETTE, Series, bar_svg, esc, hbar_svg, line_svg, svg_open
from leadflow.audit.durations import human_duration
from leadflow.audit.kpi_charts import funnel_svg, lines_svg, stacked_hbar_svg
from leadflow.audit.kpi_report import report_summary
from leadflow.audit.kpis import KpiData, kpi_summary, load_kpi_data
from leadflow.audit.report_sections import clip_window, previous_window, report_sections

if TYPE_CHECKING:
    from leadflow.routing.model import RoutingConfig
    from leadflow.store import StateStore

__all__ = ["bar_svg", "hbar_svg", "kpi_summary", "line_svg", "process_map_svg", "render_report",
           "report_summary", "tile_values", "write_report"]

SECTIONS = ("Summary", "Speed-to-lead", "Funnel", "SLA by rule and owner", "Owner distribution", "Data quality",
            "Process map")


# --- formatting ------------------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (float, np.floating)):
        return "n/a" if math.isnan(float(value)) else f"{float(value):,.{digits}f}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):,}"
    return str(value)


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(float(value))):
        return "n/a"
    return f"{float(value):.1%}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = NO_DATA) -> str:
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- chart data and the process map (the charts themselves: leadflow.audit.charts) ------------------------------------------


_NODE = re.compile(r'^\s*st_(?P<name>[A-Za-z0-9_]+)\[')
_GATE = re.compile(r'^\s*gx_(?P<name>[A-Za-z0-9_]+)\{\{"GX gate: (?P<suite>[^"]*)"\}\}')
_ENDPOINT = re.compile(r'^\s*(?P<id>src|sink)\[\("(?P<label>[^"]*)"\)\]')


def process_map_svg(mermaid: str, *, width: int = 720) -> str:
    """A box-and-arrow drawing of the stage sequence in a `leadflow map` flowchart: source, each stage and its GX
    gate (failing rows dashed to quarantine), sink. Mermaid's own renderer needs JavaScript; this needs nothing."""
    stages: list[str] = []
    gates: dict[str, str] = {}
    ends = {"src": "lead source", "sink": "output / CRM"}
    for line in mermaid.splitlines():
        if m := _NODE.match(line):
            stages.append(m["name"])
        elif m := _GATE.match(line):
            gates[m["name"]] = m["suite"]
        elif m := _ENDPOINT.match(line):
            ends[m["id"]] = m["label"]
    row, box_h = 56, 34
    height = 40 + (len(stages) + 2) * row
    stage_x, stage_w = 40, 200
    gate_x, gate_w = 300, 220
    q_x, q_w = width - 130, 110
    parts = svg_open(width, height, "Process map")
    parts.append('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
                 'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#4a5568"/></marker></defs>')

    def box(x: float, y: float, w: float, label: str, fill: str, rx: int = 4) -> None:
        parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{box_h}" rx="{rx}" fill="{fill}" stroke="#2d3748"/>')
        parts.append(f'<text x="{x + w / 2:.1f}" y="{y + box_h / 2 + 4:.1f}" text-anchor="middle">'
                     f"{esc(label)}</text>")

    def arrow(x1: float, y1: float, x2: float, y2: float, dashed: bool = False) -> None:
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#4a5568"'
                     f'{dash} marker-end="url(#arrow)"/>')

    y0 = 32
    box(stage_x, y0, stage_w, ends["src"], "#e2e8f0", rx=16)
    q_y = 32 + row * (len(stages) + 1) / 2
    if stages:
        box(q_x, q_y, q_w, "quarantine", "#fed7d7", rx=16)
    prev_x, prev_y = stage_x + stage_w / 2, y0 + box_h
    for i, name in enumerate(stages):
        y = 32 + (i + 1) * row
        arrow(prev_x, prev_y, stage_x + stage_w / 2, y)
        box(stage_x, y, stage_w, name, "#bee3f8")
        arrow(stage_x + stage_w, y + box_h / 2, gate_x, y + box_h / 2)
        box(gate_x, y, gate_w, f"GX gate: {gates.get(name, 'leads_' + name)}", "#fefcbf", rx=12)
        arrow(gate_x + gate_w, y + box_h / 2, q_x, q_y + box_h / 2, dashed=True)
        prev_x, prev_y = gate_x + gate_w / 2, y + box_h
    sink_y = 32 + (len(stages) + 1) * row
    arrow(prev_x, prev_y, stage_x + stage_w / 2, sink_y)
    box(stage_x, sink_y, stage_w, ends["sink"], "#c6f6d5", rx=16)
    parts.append("</svg>")
    return "\n".join(parts)


# --- page ------------------------------------------------------------------------------------------------------------


def tile_values(summary: dict[str, Any]) -> dict[str, str]:
    """The headline tiles as the page shows them (key → text): the numbers `leadflow kpis --json` prints, formatted."""
    speed, sla, cohort = summary["speed_to_lead"], summary["sla"], summary["funnel"]["cohort"]
    touch = summary["first_touch"]
    return {
        "leads": _fmt(summary["leads"]),
        "assignments": _fmt(summary["assignments"]),
        "speed_to_lead.created_to_first_touch.p50": speed["created_to_first_touch"]["p50"]["text"],
        "speed_to_lead.created_to_first_touch.p90": speed["created_to_first_touch"]["p90"]["text"],
        "speed_to_lead.created_to_assigned.p50": speed["created_to_assigned"]["p50"]["text"],
        "speed_to_lead.speed_to_lead.p50": speed["speed_to_lead"]["p50"]["text"],
        "first_touch.fallback_share": _pct(touch["fallback_share"]),
        "sla.attainment": _pct(sla["attainment"]),
        "sla.met": _fmt(sla["met"]),
        "sla.missed": _fmt(sla["missed"]),
        "sla.open": _fmt(sla["open"]),
        "funnel.cohort.new_to_mql": _pct(cohort["new_to_mql"]),
        "funnel.cohort.mql_to_sal": _pct(cohort["mql_to_sal"]),
        "funnel.cohort.sal_to_sql": _pct(cohort["sal_to_sql"]),
        "quality.quarantine_rate": _pct(summary["quality"]["quarantine_rate"]),
        "sync_errors.dead_letters": _fmt(summary["sync_errors"]["dead_letters"]),
    }


_TILE_LABELS = {
    "leads": "leads first seen", "assignments": "assignments",
    "speed_to_lead.created_to_first_touch.p50": "speed-to-lead p50 (created → first touch)",
    "speed_to_lead.created_to_first_touch.p90": "speed-to-lead p90 (created → first touch)",
    "speed_to_lead.created_to_assigned.p50": "created → assigned p50",
    "speed_to_lead.speed_to_lead.p50": "created → written back p50",
    "first_touch.fallback_share": "first touches from the pull fallback",
    "sla.attainment": "SLA attainment (met / decided)", "sla.met": "SLA met", "sla.missed": "SLA missed",
    "sla.open": "SLA open, not yet due (apart)", "funnel.cohort.new_to_mql": "new → MQL (cohort)",
    "funnel.cohort.mql_to_sal": "MQL → SAL (cohort)", "funnel.cohort.sal_to_sql": "SAL → SQL (cohort)",
    "quality.quarantine_rate": "quarantine rate", "sync_errors.dead_letters": "dead letters",
}


_STEP_LABELS = {"new_to_mql": "created → MQL", "mql_to_sal": "MQL → SAL", "sal_to_sql": "SAL → SQL"}


def _tiles(summary: dict[str, Any], trend: dict[str, Any] | None = None) -> str:
    """Every headline number (`tile_values`) in a table, with its comparison with the previous period."""
    rows = "".join(f"<tr><td>{esc(_TILE_LABELS[key])}</td><td data-kpi=\"{esc(key)}\">{esc(text)}</td>"
                   f"<td>{esc(trend_text(key, (trend or {}).get(key))[0])}</td></tr>"
                   for key, text in tile_values(summary).items())
    return (f"<table><thead><tr><th>KPI</th><th>value</th><th>previous period</th></tr></thead><tbody>{rows}"
            "</tbody></table>")


def _stat_cells(stats: dict[str, Any]) -> list[Any]:
    return [stats["n"], stats["p50"]["text"], stats["p90"]["text"], stats["p95"]["text"], stats["skew_clamped"]]


def _owner_label(owner_id: str, name: str | None) -> str:
    return f"{name} ({owner_id})" if name else owner_id


_CSS = (
    "*{box-sizing:border-box}body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#1a202c;"
    "background:#f4f6f9;font-size:14px}main{max-width:1800px;margin:0 auto;padding:20px 28px 40px}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 10px;padding-bottom:4px;"
    "border-bottom:2px solid #cbd5e0}h3{font-size:14px;margin:0 0 8px;color:#2d3748}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,400px),1fr));gap:16px;"
    "align-items:start}.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:14px 16px;"
    "min-width:0}.wide{grid-column:1/-1}.card svg{display:block;width:100%;height:auto;margin:4px 0}"
    ".fig{margin:0 auto}.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}"
    "@media(min-width:1360px){.tiles{grid-template-columns:repeat(8,1fr)}}"
    "@media(max-width:640px){.tiles{grid-template-columns:repeat(2,1fr)}}"
    "@media(min-width:900px){.span2{grid-column:span 2}}"
    ".tile{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:12px 14px}"
    ".tile .label{color:#2d3748;font-size:13px;font-weight:600}.tile .sub{color:#718096;font-size:12px}"
    ".tile .value{font-size:28px;font-weight:600;margin:4px 0}"
    ".tile .trend{font-size:13px;color:#718096}.trend.better{color:#276749}.trend.worse{color:#c53030}"
    ".scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}"
    ".tall{max-height:460px;overflow-y:auto}th,td{border:1px solid #e2e8f0;padding:3px 6px;text-align:right;white-space:nowrap}th{background:#edf2f7;white-space:normal;vertical-align:bottom}"
    "td:first-child,th:first-child{text-align:left}details{margin:10px 0}summary{cursor:pointer;color:#2b6cb0}"
    "pre{background:#f7fafc;border:1px solid #cbd5e0;padding:8px;overflow-x:auto;font-size:11px}"
    ".empty{color:#718096}.note{color:#4a5568;font-size:13px;margin:4px 0 8px}"
)
"""The page's style: a CSS grid of cards (as many 400 px columns as fit: 3 at 1440 px, 2 at 1280 px), charts as wide
as their card (SVG viewBox, width 100 %), wide tables scrolling inside their card, never the page."""

_HEADLINE = ("leads", "assignments", "speed_to_lead.created_to_first_touch.p50",
             "speed_to_lead.created_to_first_touch.p90", "sla.attainment", "funnel.cohort.new_to_mql",
             "quality.quarantine_rate", "sync_errors.dead_letters")
"""The KPI tiles at the top of the page (every headline number is in the table under them)."""
_TILE_SHORT = {"leads": ("leads", "first seen in the window"), "assignments": ("assignments", "made in the window"),
               "speed_to_lead.created_to_first_touch.p50": ("speed-to-lead p50", "created → first touch"),
               "speed_to_lead.created_to_first_touch.p90": ("speed-to-lead p90", "created → first touch"),
               "sla.attainment": ("SLA attainment", "first touch, met / decided"),
               "funnel.cohort.new_to_mql": ("new → MQL", "of the leads created"),
               "quality.quarantine_rate": ("quarantine rate", "rows held back by the gates"),
               "sync_errors.dead_letters": ("dead letters", "write-backs that failed")}
CHART_ROWS = 15
"""At most this many rows in a per-owner chart (the busiest; every owner is in the table beside it)."""
_RATE_KEYS = ("first_touch.fallback_share", "sla.attainment", "funnel.cohort.new_to_mql", "funnel.cohort.mql_to_sal",
              "funnel.cohort.sal_to_sql", "quality.quarantine_rate")
CHART_W, WIDE_W = 520, 1040
"""viewBox widths of a card's chart and of a wide card's chart (px at scale 1)."""


def _scroll(html_table: str) -> str:
    return f'<div class="scroll">{html_table}</div>'


def _card(title: str, *body: str, wide: bool = False) -> str:
    heading = f"<h3>{esc(title)}</h3>" if title else ""
    return f'<div class="card{" wide" if wide else ""}">{heading}{"".join(body)}</div>'


def _figure(svg: str) -> str:
    """An SVG drawn at its own size, never wider than its card (`max-width` its natural width)."""
    found = re.search(r'width="([0-9.]+)"', svg)
    return f'<div class="fig" style="max-width:{found[1] if found else WIDE_W}px">{svg}</div>'


def _previous_text(key: str, previous: float) -> str:
    if key.startswith("speed_to_lead."):
        return human_duration(previous)
    return _pct(previous) if key in _RATE_KEYS else f"{previous:,.0f}"


def trend_text(key: str, trend: dict[str, Any] | None) -> tuple[str, str]:
    """(text, css class) of a tile's comparison with the previous period: "▲ 12% vs 2.1 h" (rates: the change in
    percentage points), class "better" / "worse" / "" (a volume, or unchanged)."""
    if not trend or trend.get("previous") is None:
        return "no data in the previous period", ""
    change, previous = trend["change"], trend["previous"]
    if change is None:
        return f"previous: {_previous_text(key, previous)}", ""
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    if key in _RATE_KEYS:
        amount = f"{abs(change) * 100:.1f} pts"
    elif trend.get("relative") is not None:
        amount = f"{abs(trend['relative']):.0%}"
    else:
        amount = f"{abs(change):,.0f}"
    text = f"= vs {_previous_text(key, previous)}" if arrow == "=" else \
        f"{arrow} {amount} vs {_previous_text(key, previous)}"
    return text, trend.get("verdict") if trend.get("verdict") in ("better", "worse") else ""


def _tile_cards(summary: dict[str, Any], trend: dict[str, Any]) -> str:
    values = tile_values(summary)
    cards = []
    for key in _HEADLINE:
        text, verdict = trend_text(key, trend.get(key))
        name, sub = _TILE_SHORT[key]
        cards.append(f'<div class="tile" data-tile="{esc(key)}" title="{esc(_TILE_LABELS[key])}">'
                     f'<div class="label">{esc(name)}</div><div class="sub">{esc(sub)}</div>'
                     f'<div class="value">{esc(values[key])}</div><div class="trend {verdict}">{esc(text)}</div>'
                     "</div>")
    return f'<div class="tiles">{"".join(cards)}</div>'


def _window_text(window: dict[str, Any] | None) -> str:
    if not window or not window.get("since"):
        return "n/a"
    start, end = (pd.Timestamp(window[k]) for k in ("since", "as_of"))
    return f"{start:%d %b %Y %H:%M} – {end:%d %b %Y %H:%M} UTC"


def _speed_section(summary: dict[str, Any], sections: dict[str, Any]) -> list[str]:
    speed, sla, touch = summary["speed_to_lead"], summary["sla"], summary["first_touch"]
    dist = speed["distribution"]
    stat_header = ["measure", "n", "p50", "p90", "p95", "skew"]
    weeks = speed["weekly"]
    lines = [Series("first touch p50", [w["created_to_first_touch"]["p50"]["seconds"] for w in weeks],
                    "created → first touch p50"),
             Series("first touch p90", [w["created_to_first_touch"]["p90"]["seconds"] for w in weeks], "p90"),
             Series("assigned p50", [w["created_to_assigned"]["p50"]["seconds"] for w in weeks],
                    "created → assigned p50")]
    trend = lines_svg("Speed-to-lead by week of creation", [w["week"] for w in weeks],
                      [one for one in lines if any(v is not None for v in one.values)], width=CHART_W,
                      seconds=True, x_label="week starting", y_label="time")
    group_header = ["group", "leads", *(f"{m.replace('_', ' ')} {c}" for m in ("created_to_first_touch",
                                                                                "created_to_assigned")
                                          for c in ("n", "p50", "p90", "p95"))]

    def group_rows(rows: list[dict[str, Any]], label: str) -> list[list[Any]]:
        return [[row[label], row["leads"], *(cell for m in ("created_to_first_touch", "created_to_assigned")
                                             for cell in _stat_cells(row[m])[:4])] for row in rows]

    owners = [[_owner_label(r["owner_id"], r["owner_name"]), *row[1:]]
              for r, row in zip(speed["by_owner"], group_rows(speed["by_owner"], "owner_id"), strict=True)]
    return [
        "<h2>Speed-to-lead</h2>",
        '<p class="note">created (canonical created_at; the earliest of the same person\'s records) → first touch (the '
        "CRM's task, event or status change; else the pull that saw the lead worked) · → pulled → assigned → written "
        "back. A duration whose end was recorded before its start (clock skew) counts as 0 and is counted.</p>",
        '<div class="grid">',
        _card("", bar_svg(f"Distribution ({dist['measure'].replace('_', ' ')})", dist["labels"], dist["counts"],
                          width=CHART_W, x_label="time", y_label="leads")),
        _card("", trend),
        _card("Measures, all leads", _scroll(_table(stat_header, [
            [m.replace("_", " "), *_stat_cells(speed[m])] for m in speed
            if isinstance(speed[m], dict) and "p50" in speed[m]]))),
        _card("First touch and SLA", _scroll(_table(
            ["first touch from", "leads"], [*([name, n] for name, n in touch["by_source"].items()),
                                             ["all touched", touch["touched"]],
                                             ["share from the pull fallback", _pct(touch["fallback_share"])]])),
            _scroll(_table(["with SLA", "met", "missed", "attainment", "open (apart)"],
                           [[sla["with_sla"], sla["met"], sla["missed"], _pct(sla["attainment"]), sla["open"]]]))),
        _card("Breakdowns", *(f"<details><summary>{esc(name)}</summary>{_scroll(_table(header, rows))}</details>"
                              for name, header, rows in (
                                  ("Per source", group_header, group_rows(speed["by_source"], "group")),
                                  ("Per lead source", group_header, group_rows(speed["by_lead_source"], "group")),
                                  ("Per owner", ["owner", *group_header[1:]], owners),
                                  ("By week of creation", ["week", *group_header[1:]], group_rows(weeks, "week"))))),
        "</div>",
    ]


def _funnel_section(summary: dict[str, Any]) -> list[str]:
    funnel = summary["funnel"]
    cohort = funnel["cohort"]
    conv_header = ["group", "leads", "MQL", "SAL", "SQL", "skipped MQL", "skipped SAL", "new → MQL", "MQL → SAL",
                   "SAL → SQL"]

    def conv_rows(rows: list[dict[str, Any]], label: str) -> list[list[Any]]:
        return [[r[label], r["leads"], r["mql"], r["sal"], r["sql"], r["skipped_mql"], r["skipped_sal"],
                 _pct(r["new_to_mql"]), _pct(r["mql_to_sal"]), _pct(r["sal_to_sql"])] for r in rows]

    stat_header = ["step", "n", "p50", "p90", "p95", "skew"]
    return [
        "<h2>Funnel</h2>",
        '<p class="note">Cohorts: of the leads created in the window, how many reached each stage; a later stage\'s '
        "stamp means the earlier ones were passed (counted as skipped when their own stamp is missing).</p>",
        '<div class="grid">',
        _card("", funnel_svg("Funnel: leads reaching each stage", ["leads", "MQL", "SAL", "SQL"],
                             [cohort["leads"], cohort["mql"], cohort["sal"], cohort["sql"]], width=CHART_W)),
        _card("Stage velocity", _scroll(_table(stat_header, [[_STEP_LABELS.get(step, step), *_stat_cells(stats)]
                                                             for step, stats in funnel["velocity"].items()])),
              "<h3>Leads per current lifecycle stage</h3>",
              _scroll(_table(list(funnel["current_stage"]), [list(funnel["current_stage"].values())]))),
        _card("Conversion", _scroll(_table(conv_header, conv_rows([{"group": "all", **cohort}], "group"))),
              *(f"<details><summary>{esc(name)}</summary>{_scroll(_table([first, *conv_header[1:]], rows))}</details>"
                for name, first, rows in (
                    ("By month of creation", "month", conv_rows(funnel["by_month"], "month")),
                    ("By week of creation", "week", conv_rows(funnel["by_week"], "week")),
                    ("By lead source", "lead source", conv_rows(funnel["by_lead_source"], "lead_source")))),
              "<details><summary>Lead source values not in the picklist</summary>",
              _table(["value", "leads"], [[k, v] for k, v in summary["lead_sources"]["unknown"].items()],
                     empty="every lead source value is known"), "</details>"),
        "</div>",
    ]


_SLA_COLOURS = ("#38a169", "#c53030", "#a0aec0")
"""met, missed, open."""


def _sla_card(title: str, rows: list[dict[str, Any]], first: str) -> str:
    def label(row: dict[str, Any]) -> str:
        return row.get("name") or row["group"]

    shown = rows[:CHART_ROWS]
    chart = stacked_hbar_svg(title, [label(r) for r in shown], [
        Series("met", [r["met"] for r in shown]), Series("missed", [r["missed"] for r in shown]),
        Series("open, not yet due", [r["open"] for r in shown])], width=CHART_W, colours=_SLA_COLOURS,
        empty="no assignment with an SLA")
    table = _table([first, "with SLA", "met", "missed", "open", "attainment"],
                   [[label(r), r["with_sla"], r["met"], r["missed"], r["open"], _pct(r["attainment"])] for r in rows],
                   empty="no assignment with an SLA")
    more = f'<p class="note">the {CHART_ROWS} with the most; all {len(rows)} in the table</p>' \
        if len(rows) > CHART_ROWS else ""
    return _card("", chart, more, f"<details><summary>Table</summary>{_scroll(table)}</details>")


def _owner_table(load: list[dict[str, Any]]) -> str:
    """Every owner's leads of the window by state; the owner's id in the row's tooltip."""
    if not load:
        return f'<p class="empty">{esc(NO_DATA)}</p>'
    rows = "".join(f'<tr title="{esc(r["owner_id"])}"><td>{esc(r.get("name") or r["owner_id"])}</td>'
                   + "".join(f"<td>{r[k]}</td>" for k in ("assignments", "touched", "waiting", "overdue")) + "</tr>"
                   for r in load)
    return ("<table><thead><tr><th>owner</th><th>assigned</th><th>touched</th><th>waiting</th><th>overdue</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def _owner_section(summary: dict[str, Any], sections: dict[str, Any]) -> list[str]:
    owners, load = summary["owners"], sections.get("owner_load", [])
    busiest = sorted((r for r in load if r["waiting"] + r["overdue"]),
                     key=lambda r: (-(r["waiting"] + r["overdue"]), -r["overdue"], r["owner_id"]))[:CHART_ROWS]
    top = owners[:CHART_ROWS]
    cut = f'<p class="note">the {CHART_ROWS} busiest of {len(owners)} owners; all in the table</p>' \
        if len(owners) > CHART_ROWS else ""
    return [
        "<h2>Owner distribution</h2>",
        '<div class="grid">',
        _card("", hbar_svg("Assignments per owner", [r["owner_name"] or r["owner_id"] for r in top],
                           [r["assignments"] for r in top], width=CHART_W), cut),
        _card("", stacked_hbar_svg("Owner load: untouched leads", [r.get("name") or r["owner_id"] for r in busiest], [
            Series("overdue", [r["overdue"] for r in busiest], "overdue (past its SLA)"),
            Series("waiting", [r["waiting"] for r in busiest], "waiting (not yet due)")], width=CHART_W,
            colours=("#c53030", "#d69e2e"), empty="every lead assigned in the window has been touched"),
            '<p class="note">Of the leads assigned in the window, those not touched yet, per owner (the most first).'
            "</p>"),
        _card("Owners", f'<div class="scroll tall">{_owner_table(load)}</div>'),
        "</div>",
    ]


def _quality_section(summary: dict[str, Any], sections: dict[str, Any]) -> list[str]:
    quality, errors = summary["quality"], summary["sync_errors"]
    breakdown = sections.get("quarantine", [])
    return [
        "<h2>Data quality</h2>",
        '<div class="grid">',
        _card("", hbar_svg("Quarantined rows by stage and expectation",
                           [f"{r['stage']} · {r['expectation'] or '(all)'}" for r in breakdown],
                           [r["quarantined"] for r in breakdown], width=CHART_W, colour=PALETTE[4],
                           empty="no row quarantined in this window")),
        _card("", line_svg("Quarantine rate by day", [r["day"] for r in quality["by_day"]],
                           [r["rate"] if r["rate"] is not None else math.nan for r in quality["by_day"]],
                           width=CHART_W, y_label="quarantined / rows in", percent=True)),
        _card("Sync errors (dead letters by error code)", _scroll(_table(
            ["error code", "count", "pending", "permanent", "resolved"],
            [[r["error_code"], r["count"], r["pending"], r["permanent"], r["resolved"]] for r in errors["by_code"]]))),
        _card("Quarantine details",
              _scroll(_table(["stage", "expectation", "rows", "share"],
                             [[r["stage"], r["expectation"] or "(all)", r["quarantined"], _pct(r["rate"])]
                              for r in breakdown])),
              "<details><summary>By day</summary>", _scroll(_table(
                  ["day", "rows in", "quarantined", "rate"],
                  [[r["day"], r["rows_in"], r["quarantined"], _pct(r["rate"])] for r in quality["by_day"]])),
              "</details><details><summary>Per run, stage and expectation</summary>", _scroll(_table(
                  ["run", "flow", "started", "stage", "expectation", "rows in", "quarantined", "rate"],
                  [[r["run_id"][:8], r["flow"], (r["started_at"] or "")[:16].replace("T", " "), r["stage"],
                    r["expectation"] or "(all)", r["rows_in"], r["quarantined"], _pct(r["rate"])]
                   for r in quality["by_run"]])), "</details>"),
        "</div>",
    ]


def _maps_section(process_map_mermaid: str, routing: RoutingConfig | None) -> list[str]:
    from leadflow.routing.graph import build_routing_graph, routing_graph_svg

    stage_map = _figure(process_map_svg(process_map_mermaid)) if process_map_mermaid else \
        '<p class="empty">no process map</p>'
    graph = _figure(routing_graph_svg(build_routing_graph(routing))) if routing is not None else \
        '<p class="empty">no routing rules in this configuration</p>'
    return [
        "<h2>Process map</h2>",
        '<p class="note">The stage map is generated from the stage declarations (<code>leadflow map</code>); the '
        "routing graph from the run configuration's routing rules (<code>leadflow routing graph</code>).</p>",
        '<div class="grid">',
        f'<div class="card span2"><h3>Stage map</h3>{stage_map}</div>',
        _card("Stage map: Mermaid source", f"<details><summary>Mermaid source</summary><pre>"
              f"{esc(process_map_mermaid)}</pre></details>"),
        _card("Routing graph", graph, wide=True),
        "</div>",
    ]


def render_report(data: KpiData | dict[str, Any], process_map_mermaid: str = "",
                  names: dict[str, str] | None = None, *, sections: dict[str, Any] | None = None,
                  routing: RoutingConfig | None = None) -> str:
    """The report page as HTML text, drawn from `report_summary` (given, or computed from `data` with `names`) and
    `report_sections` (given, or computed from `data`; a summary alone draws those cards empty, no trend)."""
    if isinstance(data, dict):
        summary, sections = data, sections or {}
    else:
        summary = report_summary(data, names)
        sections = sections or report_sections(data, names, current_summary=summary)
    trend = sections.get("trend", {})
    previous = sections.get("previous_window")
    compared = f" · compared with the previous period, {_window_text(previous)}" if previous else ""
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>leadflow report</title><style>{_CSS}</style></head><body><main>",
        "<h1>leadflow report</h1>",
        f'<p class="note">Window: {esc(_window_text(summary["window"]))}{esc(compared)} · the same numbers as '
        "<code>leadflow kpis --json</code></p>",
        "<h2>Summary</h2>",
        _tile_cards(summary, trend),
        f"<details><summary>All headline numbers</summary>{_scroll(_tiles(summary, trend))}</details>",
        *_speed_section(summary, sections),
        *_funnel_section(summary),
        "<h2>SLA by rule and owner</h2>",
        '<p class="note">First-touch SLA of the assignments made in the window: attainment = met / (met + missed); '
        "open (untouched, not yet due) is shown apart.</p>",
        '<div class="grid">',
        _sla_card("First-touch SLA by routing rule", sections.get("sla_by_rule", []), "routing rule"),
        _sla_card("First-touch SLA by owner", sections.get("sla_by_owner", []), "owner"),
        _card("By routing rule", _scroll(_table(
            ["rule", "with SLA", "met", "missed", "open", "attainment"],
            [[r["group"], r["with_sla"], r["met"], r["missed"], r["open"], _pct(r["attainment"])]
             for r in sections.get("sla_by_rule", [])], empty="no assignment with an SLA"))),
        "</div>",
        *_owner_section(summary, sections),
        *_quality_section(summary, sections),
        *_maps_section(process_map_mermaid, routing),
        "</main></body></html>",
    ]
    return "\n".join(out)


def write_report(store: StateStore, since: datetime, out_path: Path | str, process_map_mermaid: str = "",
                 as_of: datetime | None = None, names: dict[str, str] | None = None,
                 routing: RoutingConfig | None = None) -> Path:
    """Compute the KPI summary for the window from `since` (`report_summary`: what `leadflow kpis --json` prints),
    the same summary for the previous window of equal length (the tiles' trend) and `report_sections`, and write the
    self-contained HTML report to `out_path`; `routing` (the run config's rules) is drawn as the routing graph."""
    from leadflow.pipeline.io import _atomic_write

    from leadflow.pipeline import progress

    as_of = as_of or datetime.now(UTC)
    since = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    data = load_kpi_data(store, since, as_of=as_of)
    summary = report_summary(data, names)
    start, end = previous_window(since, as_of)
    previous = report_summary(clip_window(load_kpi_data(store, start, as_of=end), end), names)
    sections = report_sections(data, names, previous, summary)
    progress.step("KPIs read", unit="report")
    page = render_report(summary, process_map_mermaid, sections=sections, routing=routing)
    progress.step("charts drawn", unit="report")
    path = Path(out_path)
    _atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    progress.step("written", unit="report")
    return path
