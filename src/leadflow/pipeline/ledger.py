"""Run bookkeeping shared by the flow and the benchmarks: value text for diffs and the rows-in = rows-out + quarantined
ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from leadflow.pipeline.errors import LeadflowError
from leadflow.pipeline.schema import BOOLEAN_COLUMNS

EVENT_COLUMNS = ("run_id", "lead_key", "stage", "column_name", "old_value", "new_value", "at")


def as_text(values: pd.Series) -> pd.Series:
    """Values as the text the audit trail and write-back compare: booleans as `true`/`false`."""
    if values.name in BOOLEAN_COLUMNS or values.dtype == "boolean":
        return values.map({True: "true", False: "false"}, na_action="ignore").astype("string")
    return values.astype("string")


class LedgerError(LeadflowError):
    """Rows went missing: the run refuses to report success."""


@dataclass
class RunLedger:
    """Counts rows through a run so that rows in = rows out + rows quarantined is checked, not assumed."""

    rows_in: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    by_expectation: dict[str, dict[str, int]] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    gate_seconds: dict[str, float] = field(default_factory=dict)
    rows_out: int = 0
    next_chunk: int = 0
    """The audit trail's next free chunk number in this run (pages of one run share the numbering)."""
    audit_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent outside the stages, gates and audit trail: read, state (loading and saving the stages'
    memory), write, kpis; `time(step, seconds)` adds to them."""

    def time(self, step: str, seconds: float) -> None:
        self.timings[f"{step}_seconds"] = self.timings.get(f"{step}_seconds", 0.0) + seconds

    def quarantine(self, stage: str, records: pd.DataFrame) -> None:
        """Count a stage's quarantined rows (a row failing several expectations counts once)."""
        self.quarantined[stage] = self.quarantined.get(stage, 0) + (
            int(records["position"].nunique()) if len(records) else 0
        )
        if len(records):
            counts = records.groupby("expectation")["position"].nunique()
            bucket = self.by_expectation.setdefault(stage, {})
            for name, count in counts.items():
                bucket[str(name)] = bucket.get(str(name), 0) + int(count)

    @property
    def total_quarantined(self) -> int:
        return sum(self.quarantined.values())

    def close(self, rows_out: int) -> None:
        """Record rows out and check the balance."""
        self.rows_out = rows_out
        if self.rows_in != self.rows_out + self.total_quarantined:
            raise LedgerError(
                f"rows in ({self.rows_in}) != rows out ({self.rows_out}) + quarantined ({self.total_quarantined}): "
                f"per stage {self.quarantined}"
            )

    def summary(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_quarantined": self.total_quarantined,
            "quarantined_by_stage": dict(self.quarantined),
            "quarantined_by_expectation": {k: dict(v) for k, v in self.by_expectation.items()},
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "gate_seconds": {k: round(v, 3) for k, v in self.gate_seconds.items()},
            "audit_seconds": round(self.audit_seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def concat_quarantine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """All quarantine records of a run, each tagged with its `stage`."""
    non_empty = [p for p in parts if len(p)]
    if non_empty:
        return pd.concat(non_empty)
    return pd.DataFrame(columns=["stage", "lead_key", "expectation", "column", "reason", "row", "position"])


def mailable_counts(frame: pd.DataFrame) -> dict[str, Any]:
    """How many output leads may be emailed, and why the others may not."""
    if "mailable" not in frame or not len(frame):
        return {"mailable": 0, "mailable_reasons": {}}
    return {
        "mailable": int(frame["mailable"].fillna(False).sum()),
        "mailable_reasons": {str(k): int(v) for k, v in frame["mailable_reason"].value_counts().items()},
    }


def enrichment_counts(frame: pd.DataFrame) -> dict[str, Any]:
    """Who the output leads are: account matches by method, duplicates, firmographics known, segments, flags."""
    if "account_match_method" not in frame or not len(frame):
        return {}
    return {
        "account_match": {str(k): int(v) for k, v in frame["account_match_method"].value_counts().items()},
        "duplicates": int(frame["duplicate_of"].notna().sum()),
        "firmographics_known": {c: int(frame[c].notna().sum()) for c in ("employees", "annual_revenue", "industry")},
        "segments": {str(k): int(v) for k, v in frame["segment"].value_counts().items()},
        "role_emails": int(frame["is_role_email"].fillna(False).sum()),
        "disposable_emails": int(frame["is_disposable_email"].fillna(False).sum()),
    }


def scoring_counts(frame: pd.DataFrame) -> dict[str, Any]:
    """Grades, lifecycle stages and refused lifecycle moves of the output leads."""
    if "grade" not in frame or not len(frame):
        return {}
    refused = frame["lifecycle_reason"].astype("string").str.startswith("refused ").fillna(False)
    return {
        "grades": {str(k): int(v) for k, v in frame["grade"].value_counts().sort_index().items()},
        "lifecycle": {str(k): int(v) for k, v in frame["lifecycle_stage"].value_counts().items()},
        "lifecycle_refused": int(refused.sum()),
    }


def routing_counts(frame: pd.DataFrame) -> dict[str, Any]:
    """Outcomes of routing: leads per rule, per owner, held, and kept with their owner (`leadflow.routing.ownership`).

    `routed`: leads with an owner from a routing rule (this run's or leadflow's earlier assignment kept);
    `kept_with_owner`: leads left with the owner they had, and `kept_by_reason` why (the reason without `kept: `)."""
    if "routing_reason" not in frame or not len(frame) or frame["routing_reason"].isna().all():
        return {}
    reason = frame["routing_reason"].astype("string")
    held = reason.str.startswith("hold:").fillna(False).astype(bool)
    kept = reason.str.startswith("kept: ").fillna(False).astype(bool)
    routed = frame["routing_rule"].notna() & ~held & ~kept
    return {
        "routed_by_rule": {str(k): int(v) for k, v in frame["routing_rule"].value_counts().items()},
        "assigned_per_owner": {str(k): int(v) for k, v in frame.loc[routed, "owner_id"].value_counts().items()},
        "routed": int(routed.sum()),
        "held": int(held.sum()),
        "kept_with_owner": int(kept.sum()),
        "kept_by_reason": {str(k).removeprefix("kept: "): int(v) for k, v in reason[kept].value_counts().items()},
    }


def add_counts(total: dict[str, Any], counts: dict[str, Any]) -> None:
    """Add nested integer counts (e.g. one page's `mailable_counts`) into a running total."""
    for key, value in counts.items():
        if isinstance(value, dict):
            add_counts(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value


def summary_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for the run's summary table artifact."""
    rows: list[dict[str, Any]] = [{"step": "rows in", "expectation": "", "rows": summary["rows_in"]}]
    for stage, expectations in summary["quarantined_by_expectation"].items():
        for name, count in expectations.items():
            rows.append({"step": f"quarantined at {stage}", "expectation": name, "rows": count})
    rows.append({"step": "rows out", "expectation": "", "rows": summary["rows_out"]})
    if "mailable" in summary:
        rows.append({"step": "mailable", "expectation": "", "rows": summary["mailable"]})
    for method, count in summary.get("account_match", {}).items():
        rows.append({"step": "account match", "expectation": method, "rows": count})
    if "duplicates" in summary:
        rows.append({"step": "duplicates of CRM records", "expectation": "", "rows": summary["duplicates"]})
    for stage, count in summary.get("lifecycle", {}).items():
        rows.append({"step": "lifecycle", "expectation": stage, "rows": count})
    if "lifecycle_refused" in summary:
        rows.append({"step": "lifecycle moves refused", "expectation": "", "rows": summary["lifecycle_refused"]})
    for system, report in summary.get("systems", {}).items():
        rows.append({"step": f"{system}: pulled", "expectation": "", "rows": report.get("pulled", 0)})
        rows.append({"step": f"{system}: written back", "expectation": "", "rows": report.get("written", 0)})
        rows.append({"step": f"{system}: write failures", "expectation": "", "rows": report.get("failed", 0)})
        letters = report.get("dead_letters") or {}
        for status in ("pending", "permanent"):
            if status in letters:
                rows.append({"step": f"{system}: dead letters", "expectation": status, "rows": letters[status]})
        if report.get("api_calls") is not None:
            rows.append({"step": f"{system}: API calls used", "expectation": "", "rows": report["api_calls"]})
        for stage, count in report.get("lifecycle", {}).items():
            rows.append({"step": f"{system}: lifecycle", "expectation": stage, "rows": count})
        for owner, count in report.get("assigned_per_owner", {}).items():
            rows.append({"step": f"{system}: assigned", "expectation": owner, "rows": count})
        for reason, count in report.get("kept_by_reason", {}).items():
            rows.append({"step": f"{system}: kept with its owner", "expectation": reason, "rows": count})
        if report.get("skipped_converted"):
            rows.append({"step": f"{system}: converted leads not written", "expectation": "",
                         "rows": report["skipped_converted"]})
        if report.get("echo_skipped"):
            rows.append({"step": f"{system}: unchanged since our last write, not processed", "expectation": "",
                         "rows": report["echo_skipped"]})
    for owner, count in summary.get("assigned_per_owner", {}).items():
        rows.append({"step": "assigned", "expectation": owner, "rows": count})
    if "held" in summary:
        rows.append({"step": "held by routing", "expectation": "", "rows": summary["held"]})
    for reason, count in summary.get("kept_by_reason", {}).items():
        rows.append({"step": "kept with its owner", "expectation": reason, "rows": count})
    return rows


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run's markdown report."""
    lines = [
        f"# leadflow run `{summary['run_id']}`" + (" (dry run)" if summary.get("dry_run") else ""),
        "",
        f"- rows in: **{summary['rows_in']}**, rows out: **{summary['rows_out']}**, "
        f"quarantined: **{summary['rows_quarantined']}**",
    ]
    for stage, count in summary["quarantined_by_stage"].items():
        lines.append(f"- quarantined at `{stage}`: {count}")
        for name, n in summary["quarantined_by_expectation"].get(stage, {}).items():
            lines.append(f"  - `{name}`: {n}")
    if "mailable" in summary:
        lines.append(f"- mailable: {summary['mailable']} of {summary['rows_out']}")
        for reason, n in summary.get("mailable_reasons", {}).items():
            lines.append(f"  - `{reason}`: {n}")
    if "account_match" in summary:
        lines.append("- matched to an account: " + ", ".join(f"{k} {v}" for k, v in summary["account_match"].items()))
        lines.append(f"- duplicates of existing CRM records: {summary['duplicates']}")
        lines.append("- firmographics known: " + ", ".join(
            f"{k} {v}" for k, v in summary["firmographics_known"].items()))
        lines.append("- segments: " + ", ".join(f"{k} {v}" for k, v in summary["segments"].items()))
    if "grades" in summary:
        lines.append("- grades: " + ", ".join(f"{k} {v}" for k, v in summary["grades"].items()))
        lines.append("- lifecycle: " + ", ".join(f"{k} {v}" for k, v in summary["lifecycle"].items())
                     + f"; moves refused: {summary['lifecycle_refused']}")
    for system, report in summary.get("systems", {}).items():
        letters = report.get("dead_letters") or {}
        lines.append(f"- `{system}`: pulled {report.get('pulled', 0)}, written back {report.get('written', 0)}, "
                     f"failed {report.get('failed', 0)}, dead letters {letters.get('pending', 0)} pending / "
                     f"{letters.get('permanent', 0)} permanent, API calls {report.get('api_calls', 'n/a')}"
                     + (f", MQLs {report.get('lifecycle', {}).get('mql', 0)}" if report.get("lifecycle") else "")
                     + (f"; stopped: {report['stopped']}" if report.get("stopped") else ""))
    if "routed_by_rule" in summary:
        lines.append("- routed by rule: " + ", ".join(f"{k} {v}" for k, v in summary["routed_by_rule"].items())
                     + f"; held: {summary['held']}"
                     + (f"; kept with their owner: {summary['kept_with_owner']}" if "kept_with_owner" in summary
                        else ""))
    return "\n".join(lines) + "\n"


def change_summary(events: pd.DataFrame, stage_prefix: str = "writeback:", examples: int = 2) -> list[dict[str, Any]]:
    """Per (stage, column): how many values changed, with a few `old → new` examples, most changed first."""
    chosen = events[events["stage"].astype(str).str.startswith(stage_prefix)]
    out: list[dict[str, Any]] = []
    for (stage, column), group in chosen.groupby(["stage", "column_name"], sort=False):
        differing = group[group["old_value"].fillna("") != group["new_value"].fillna("")]
        sample = (differing if len(differing) else group).head(examples)
        out.append(
            {
                "stage": str(stage),
                "column": str(column),
                "count": len(group),
                "examples": [
                    (None if pd.isna(o) else str(o), None if pd.isna(n) else str(n))
                    for o, n in zip(sample["old_value"], sample["new_value"], strict=True)
                ],
            }
        )
    return sorted(out, key=lambda item: (item["stage"], -item["count"]))
