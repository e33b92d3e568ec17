"""`leadflow report`: the lead-flow KPIs as one self-contained HTML page (inline SVG charts, no script, no network),
drawn from the summary dict `leadflow.audit.kpi_report.report_summary` computes (what `leadflow kpis --json` prints),
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
from leadflow.audit.kpi_report import load_summary, report_summary
from leadflow.audit.kpis import KpiData, kpi_summary

if TYPE_CHECKING:
    from leadflow.store import StateStore

__all__ = ["bar_svg", "hbar_svg", "histogram", "kpi_summary", "line_svg", "process_map_svg", "render_report",
           "report_summary", "tile_values", "write_report"]

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


def _tiles(summary: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{esc(_TILE_LABELS[key])}</td><td data-kpi=\"{esc(key)}\">{esc(text)}</td></tr>"
                   for key, text in tile_values(summary).items())
    return f"<table><thead><tr><th>KPI</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>"


def _stat_cells(stats: dict[str, Any]) -> list[Any]:
    return [stats["n"], stats["p50"]["text"], stats["p90"]["text"], stats["p95"]["text"], stats["skew_clamped"]]


def _owner_label(owner_id: str, name: str | None) -> str:
    return f"{name} ({owner_id})" if name else owner_id


def render_report(data: KpiData | dict[str, Any], process_map_mermaid: str = "",
                  names: dict[str, str] | None = None) -> str:
    """The report page as HTML text, drawn from `report_summary` (given, or computed from `data` with `names`)."""
    summary = data if isinstance(data, dict) else report_summary(data, names)
    speed, sla, funnel = summary["speed_to_lead"], summary["sla"], summary["funnel"]
    quality, errors, touch = summary["quality"], summary["sync_errors"], summary["first_touch"]
    stat_header = ["n", "p50", "p90", "p95", "skew clamped"]
    group_header = ["group", "leads", *(f"{m.replace('_', ' ')} {c}" for m in ("created_to_first_touch",
                                                                                "created_to_assigned")
                                          for c in ("n", "p50", "p90", "p95"))]

    def group_rows(rows: list[dict[str, Any]], label: str = "group") -> list[list[Any]]:
        return [[row[label], row["leads"], *(cell for m in ("created_to_first_touch", "created_to_assigned")
                                             for cell in _stat_cells(row[m])[:4])] for row in rows]

    conv_header = ["group", "leads", "MQL", "SAL", "SQL", "skipped MQL", "skipped SAL", "new→MQL", "MQL→SAL",
                   "SAL→SQL"]

    def conv_rows(rows: list[dict[str, Any]], label: str) -> list[list[Any]]:
        return [[r[label], r["leads"], r["mql"], r["sal"], r["sql"], r["skipped_mql"], r["skipped_sal"],
                 _pct(r["new_to_mql"]), _pct(r["mql_to_sal"]), _pct(r["sal_to_sql"])] for r in rows]

    cohort = funnel["cohort"]
    dist = speed["distribution"]
    owners = summary["owners"]
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>leadflow report</title>',
        "<style>body{font-family:sans-serif;margin:24px;color:#1a202c;max-width:1000px}"
        "table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #cbd5e0;padding:4px 8px;"
        "text-align:right}th{background:#edf2f7}td:first-child{text-align:left}svg{display:block;margin:8px 0}"
        "pre{background:#f7fafc;border:1px solid #cbd5e0;padding:8px;overflow-x:auto;font-size:11px}"
        ".empty{color:#718096}.note{color:#4a5568;font-size:13px}</style></head><body>",
        "<h1>leadflow report</h1>",
        f'<p class="note">Window: since {esc(summary["window"]["since"])} · generated {esc(summary["window"]["as_of"])}'
        " · the same numbers as <code>leadflow kpis --json</code></p>",
        "<h2>Summary</h2>",
        _tiles(summary),
        "<h2>Speed-to-lead</h2>",
        '<p class="note">created (canonical created_at; the earliest of the same person\'s records) → first touch (the '
        "CRM's task, event or status change; else the pull that saw the lead worked) · → pulled → assigned → written "
        "back. A duration whose end was recorded before its start (clock skew) counts as 0 and is counted.</p>",
        bar_svg(f"Speed-to-lead distribution ({dist['measure'].replace('_', ' ')})", dist["labels"], dist["counts"],
                x_label="time", y_label="leads"),
        "<h3>Measures, all leads</h3>",
        _table(["measure", *stat_header], [[m.replace("_", " "), *_stat_cells(speed[m])] for m in speed
                                           if isinstance(speed[m], dict) and "p50" in speed[m]]),
        "<h3>Per source</h3>", _table(group_header, group_rows(speed["by_source"])),
        "<h3>Per lead source</h3>", _table(group_header, group_rows(speed["by_lead_source"])),
        "<h3>Per owner</h3>",
        _table(["owner", *group_header[1:]], [[_owner_label(r["owner_id"], r["owner_name"]), *row[1:]] for r, row in
                                             zip(speed["by_owner"], group_rows(speed["by_owner"], "owner_id"),
                                                 strict=True)]),
        "<h3>By week of creation</h3>", _table(["week", *group_header[1:]], group_rows(speed["weekly"], "week")),
        "<h3>First touch: where it came from</h3>",
        _table(["touched", *touch["by_source"], "fallback share"],
               [[touch["touched"], *touch["by_source"].values(), _pct(touch["fallback_share"])]]),
        "<h3>First-touch SLA</h3>",
        _table(["with SLA", "met", "missed", "attainment (met / (met + missed))", "open, not yet due (apart)"],
               [[sla["with_sla"], sla["met"], sla["missed"], _pct(sla["attainment"]), sla["open"]]]),
        "<h2>Funnel</h2>",
        '<p class="note">Cohorts: of the leads created in the window, how many reached each stage; a later stage\'s '
        "stamp means the earlier ones were passed (counted as skipped when their own stamp is missing).</p>",
        bar_svg("Funnel: leads reaching each stage", ["leads", "MQL", "SAL", "SQL"],
                [cohort["leads"], cohort["mql"], cohort["sal"], cohort["sql"]], y_label="leads", colour=PALETTE[1]),
        "<h3>Conversion (cohort)</h3>", _table(conv_header, conv_rows([{"group": "all", **cohort}], "group")),
        "<h3>By month of creation</h3>", _table(["month", *conv_header[1:]], conv_rows(funnel["by_month"], "month")),
        "<h3>By week of creation</h3>", _table(["week", *conv_header[1:]], conv_rows(funnel["by_week"], "week")),
        "<h3>By lead source</h3>",
        _table(["lead source", *conv_header[1:]], conv_rows(funnel["by_lead_source"], "lead_source")),
        "<h3>Stage velocity</h3>",
        _table(["step", *stat_header], [[_STEP_LABELS.get(step, step), *_stat_cells(stats)]
                                        for step, stats in funnel["velocity"].items()]),
        "<h3>Leads per current lifecycle stage</h3>",
        _table(list(funnel["current_stage"]), [list(funnel["current_stage"].values())]),
        "<h3>Lead source values not in the picklist</h3>",
        _table(["value", "leads"], [[k, v] for k, v in summary["lead_sources"]["unknown"].items()],
               empty="every lead source value is known"),
        "<h2>Data quality</h2>",
        line_svg("Quarantine rate by day", [r["day"] for r in quality["by_day"]],
                 [r["rate"] if r["rate"] is not None else math.nan for r in quality["by_day"]],
                 y_label="quarantined / rows in", percent=True),
        "<h3>By day</h3>",
        _table(["day", "rows in", "quarantined", "rate"],
               [[r["day"], r["rows_in"], r["quarantined"], _pct(r["rate"])] for r in quality["by_day"]]),
        "<h3>Per run, stage and expectation</h3>",
        _table(["run", "flow", "started", "stage", "expectation", "rows in", "quarantined", "rate"],
               [[r["run_id"][:8], r["flow"], (r["started_at"] or "")[:16].replace("T", " "), r["stage"],
                 r["expectation"] or "(all)", r["rows_in"], r["quarantined"], _pct(r["rate"])]
                for r in quality["by_run"]]),
        "<h3>Sync errors (dead letters by error code)</h3>",
        _table(["error code", "count", "pending", "permanent", "resolved"],
               [[r["error_code"], r["count"], r["pending"], r["permanent"], r["resolved"]] for r in errors["by_code"]]),
        "<h2>Owner distribution</h2>",
        hbar_svg("Assignments per owner", [r["owner_name"] or r["owner_id"] for r in owners],
                 [r["assignments"] for r in owners]),
        _table(["owner", "owner id", "assignments"], [[r["owner_name"] or r["owner_id"], r["owner_id"],
                                                       r["assignments"]] for r in owners]),
        "<h2>Process map</h2>",
        '<p class="note">Generated from the stage declarations (<code>leadflow map</code>). The drawing below is '
        "rendered without JavaScript; the Mermaid source follows.</p>",
        process_map_svg(process_map_mermaid) if process_map_mermaid else '<p class="empty">no process map</p>',
        f"<pre>{esc(process_map_mermaid)}</pre>",
        "</body></html>",
    ]
    return "\n".join(out)


def write_report(store: StateStore, since: datetime, out_path: Path | str, process_map_mermaid: str = "",
                 as_of: datetime | None = None, names: dict[str, str] | None = None) -> Path:
    """Compute the KPI summary for the window from `since` (`report_summary`: what `leadflow kpis --json` prints)
    and write the self-contained HTML report to `out_path`."""
    from leadflow.pipeline.io import _atomic_write

    from leadflow.pipeline import progress

    summary = load_summary(store, since, as_of or datetime.now(UTC), names)
    progress.step("KPIs read", unit="report")
    page = render_report(summary, process_map_mermaid)
    progress.step("charts drawn", unit="report")
    path = Path(out_path)
    _atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    progress.step("written", unit="report")
    return path
