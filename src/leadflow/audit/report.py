"""`leadflow report`: the lead-flow KPIs as one self-contained HTML page (inline SVG charts, no script, no network),
with the process map generated from the stage declarations (Mermaid source, and an SVG drawing of it). The charts are
drawn by `leadflow.audit.charts` (`bar_svg`, `hbar_svg`, `line_svg` are re-exported here)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from leadflow.audit.charts import NO_DATA, PALETTE, bar_svg, esc, hbar_svg, line_svg, nice_max, svg_open
from leadflow.audit.kpis import (
    SPEED_MEASURES,
    KpiData,
    conversion,
    funnel_counts,
    kpi_summary,
    load_kpi_data,
    mql_by_month,
    owner_distribution,
    quarantine_rates,
    quarantine_trend,
    sla_attainment,
    speed_frame,
    speed_percentiles,
    stage_velocity,
    sync_errors,
)

if TYPE_CHECKING:
    from leadflow.store import StateStore

__all__ = ["bar_svg", "hbar_svg", "histogram", "kpi_summary", "line_svg", "process_map_svg", "render_report",
           "write_report"]

SECTIONS = ("Summary", "Speed-to-lead", "Funnel", "Data quality", "Owner distribution", "Process map")


# --- formatting ------------------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (float, np.floating)):
        return "n/a" if math.isnan(float(value)) else f"{float(value):,.{digits}f}"
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


def histogram(values: pd.Series, bins: int = 12) -> tuple[list[str], list[int]]:
    """Bin labels (minutes, `lo–hi`) and counts of the known values; empty when there are none."""
    known = pd.Series(values, dtype="float64").dropna().clip(lower=0).to_numpy()
    if not known.size:
        return [], []
    top = float(known.max())
    if top <= 0:
        return ["0"], [int(known.size)]
    step = nice_max(top / bins)  # a round bin width: at most `bins` bins of 1, 2, 2.5 or 5 × 10^k minutes
    count = max(1, math.ceil(top / step + 1e-9))
    if top >= count * step:
        count += 1  # the largest value falls inside the last bin, not on its right edge
    edges = np.arange(count + 1) * step
    counts, _ = np.histogram(known, bins=edges)
    labels = [f"{edges[i]:g}–{edges[i + 1]:g}" for i in range(count)]
    return labels, [int(c) for c in counts]


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


def _speed_rows(frame: pd.DataFrame) -> list[list[Any]]:
    return [[r.group, r.n, _fmt(r.p50), _fmt(r.p90), _fmt(r.p95)] for r in frame.itertuples(index=False)]


def render_report(data: KpiData, process_map_mermaid: str = "") -> str:
    """The report page for `data` as HTML text."""
    summary = kpi_summary(data)
    speed = speed_frame(data)
    sla = sla_attainment(data)
    velocity = stage_velocity(data)
    funnel = funnel_counts(data)
    overall = conversion(data).iloc[0]
    quality_runs = quarantine_rates(data)
    trend = quarantine_trend(data)
    errors = sync_errors(data)
    owners = owner_distribution(data)
    pct_header = ["group", "leads", "p50 min", "p90 min", "p95 min"]

    measure = "speed_to_lead_min"
    if not speed[measure].notna().any():
        measure = "created_to_assigned_min"
    labels, counts = histogram(speed[measure])
    measure_name = {"speed_to_lead_min": "created → written back",
                    "created_to_assigned_min": "created → assigned"}[measure]
    stl = summary["speed_to_lead_min"]

    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>leadflow report</title>',
        "<style>body{font-family:sans-serif;margin:24px;color:#1a202c;max-width:1000px}"
        "table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #cbd5e0;padding:4px 8px;"
        "text-align:right}th{background:#edf2f7}td:first-child{text-align:left}svg{display:block;margin:8px 0}"
        "pre{background:#f7fafc;border:1px solid #cbd5e0;padding:8px;overflow-x:auto;font-size:11px}"
        ".empty{color:#718096}.note{color:#4a5568;font-size:13px}</style></head><body>",
        "<h1>leadflow report</h1>",
        f'<p class="note">Window: since {esc(data.since.isoformat())} · generated '
        f"{esc(data.as_of.isoformat(timespec='seconds'))}</p>",
        "<h2>Summary</h2>",
        _table(["KPI", "value"], [
            ["leads first seen", summary["leads"]],
            ["assignments", summary["assignments"]],
            ["speed-to-lead p50 (created → written back, min)", _fmt(stl["p50"])],
            ["speed-to-lead p90 (min)", _fmt(stl["p90"])],
            ["SLA attainment", f"{_pct(sla['attainment'])} of {sla['with_sla']}"],
            ["MQL → SAL median days", _fmt(velocity["mql_to_sal_days"], 2)],
            ["SAL → SQL median days", _fmt(velocity["sal_to_sql_days"], 2)],
            ["quarantine rate", _pct(summary["quarantine_rate"])],
            ["dead letters", summary["dead_letters"]],
        ]),
        "<h2>Speed-to-lead</h2>",
        '<p class="note">created (canonical created_at from the audit trail) → pulled (first audit event) → '
        "assigned → written back (first writeback event or written_at).</p>",
        bar_svg(f"Speed-to-lead distribution ({measure_name}, minutes)", labels, counts, x_label="minutes",
                y_label="leads"),
        "<h3>Per source (created → written back)</h3>",
        _table(pct_header, _speed_rows(speed_percentiles(data, "source"))),
        "<h3>Per lead source (created → written back)</h3>",
        _table(pct_header, _speed_rows(speed_percentiles(data, "lead_source"))),
        "<h3>Segments, all leads</h3>",
        _table(["segment", "leads", "p50 min", "p90 min", "p95 min"],
               [[m.removesuffix("_min").replace("_", " "), *_speed_rows(speed_percentiles(data, None, m))[0][1:]]
                for m in SPEED_MEASURES]),
        "<h3>First-touch SLA</h3>",
        _table(["with SLA", "met", "open (not yet due)", "missed", "attainment"],
               [[sla["with_sla"], sla["met"], sla["open"], sla["missed"], _pct(sla["attainment"])]]),
        "<h2>Funnel</h2>",
        bar_svg("Funnel: leads reaching each stage", ["leads", "MQL", "SAL", "SQL"],
                [int(overall["leads"]), int(overall["mql"]), int(overall["sal"]), int(overall["sql"])],
                y_label="leads", colour=PALETTE[1]),
        "<h3>Leads per current lifecycle stage</h3>",
        _table(list(funnel), [list(funnel.values())]),
    ]
    conv_header = ["group", "leads", "MQL", "SAL", "SQL", "new→MQL", "MQL→SAL", "SAL→SQL"]

    def conv_rows(frame: pd.DataFrame) -> list[list[Any]]:
        return [[r.group, r.leads, r.mql, r.sal, r.sql, _pct(r.new_to_mql), _pct(r.mql_to_sal), _pct(r.sal_to_sql)]
                for r in frame.itertuples(index=False)]

    mqls = mql_by_month(data)
    out += [
        "<h3>Conversion</h3>", _table(conv_header, conv_rows(conversion(data))),
        "<h3>By month of creation</h3>", _table(conv_header, conv_rows(conversion(data, "month"))),
        "<h3>By lead source</h3>", _table(conv_header, conv_rows(conversion(data, "lead_source"))),
        "<h3>Stage velocity (median days)</h3>",
        _table(["MQL → SAL", "SAL → SQL"], [[_fmt(velocity["mql_to_sal_days"], 2),
                                             _fmt(velocity["sal_to_sql_days"], 2)]]),
        "<h3>MQL volume by month</h3>", _table(["month", "MQLs"], [[k, v] for k, v in mqls.items()]),
        "<h2>Data quality</h2>",
        line_svg("Quarantine rate by day", list(trend["day"]), list(trend["rate"]), y_label="quarantined / rows in",
                 percent=True),
        "<h3>By day</h3>",
        _table(["day", "rows in", "quarantined", "rate"],
               [[r.day, r.rows_in, r.quarantined, _pct(r.rate)] for r in trend.itertuples(index=False)]),
        "<h3>Per run, stage and expectation</h3>",
        _table(["run", "flow", "started", "stage", "expectation", "rows in", "quarantined", "rate"],
               [[str(r.run_id)[:8], r.flow, pd.Timestamp(r.started_at).strftime("%Y-%m-%d %H:%M"), r.stage,
                 r.expectation or "(all)", r.rows_in, r.quarantined, _pct(r.rate)]
                for r in quality_runs.itertuples(index=False)]),
        "<h3>Sync errors (dead letters by error code)</h3>",
        _table(["error code", "count", "pending", "permanent", "resolved"],
               [list(r) for r in errors.itertuples(index=False)]),
        "<h2>Owner distribution</h2>",
        hbar_svg("Assignments per owner", list(owners), list(owners.values())),
        _table(["owner", "assignments"], [[k, v] for k, v in owners.items()]),
        "<h2>Process map</h2>",
        '<p class="note">Generated from the stage declarations (<code>leadflow map</code>). The drawing below is '
        "rendered without JavaScript; the Mermaid source follows.</p>",
        process_map_svg(process_map_mermaid) if process_map_mermaid else '<p class="empty">no process map</p>',
        f"<pre>{esc(process_map_mermaid)}</pre>",
        "</body></html>",
    ]
    return "\n".join(out)


def write_report(store: StateStore, since: datetime, out_path: Path | str, process_map_mermaid: str = "",
                 as_of: datetime | None = None) -> Path:
    """Compute the KPIs for the window from `since` and write the self-contained HTML report to `out_path`."""
    from leadflow.pipeline.io import _atomic_write

    from leadflow.pipeline import progress

    data = load_kpi_data(store, since, as_of=as_of or datetime.now(UTC))
    progress.step("KPIs read", unit="report")
    page = render_report(data, process_map_mermaid)
    progress.step("charts drawn", unit="report")
    path = Path(out_path)
    _atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    progress.step("written", unit="report")
    return path
