"""Backtest a scoring model on historical leads with known outcomes: AUC, lift by decile, MQL precision/recall, and
what changes against the model in production. Pure numpy/pandas; the chart is a self-contained HTML/SVG file (drawn
by `leadflow.audit.charts`), or a PNG when matplotlib is installed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadflow.audit.charts import PALETTE, Series, esc, grouped_bar_svg, shorten
from leadflow.pipeline.errors import InputError, LeadflowError

GRADES: tuple[str, ...] = ("A", "B", "C", "D")
DECILES = 10
OUTCOME_COLUMN = "outcome"
_OUTCOME_WORDS: dict[str, int] = {
    "1": 1, "1.0": 1, "true": 1, "t": 1, "yes": 1, "y": 1,
    "0": 0, "0.0": 0, "false": 0, "f": 0, "no": 0, "n": 0,
}
PLOT_SUFFIXES = (".html", ".htm", ".png")


# --- metrics -------------------------------------------------------------------------------------------------------


def _arrays(scores: Any, outcomes: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(pd.Series(scores).astype("Float64").to_numpy(dtype=float, na_value=np.nan), dtype=float)
    y = np.asarray(pd.Series(outcomes).astype("Float64").to_numpy(dtype=float, na_value=np.nan), dtype=float)
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and outcomes ({y.size}) differ in length")
    if np.isnan(s).any():
        raise ValueError(f"{int(np.isnan(s).sum())} score(s) are missing")
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("outcomes must all be 0 or 1")
    return s, y.astype(np.int64)


def auc(scores: Any, outcomes: Any) -> float:
    """Area under the ROC curve: the probability that a random converter outscores a random non-converter, ties
    counting one half (Mann-Whitney U from average ranks). ValueError unless both outcomes occur."""
    s, y = _arrays(scores, outcomes)
    positives = int(y.sum())
    negatives = int(y.size - positives)
    if positives == 0 or negatives == 0:
        raise ValueError(f"AUC needs both outcomes; got {positives} positive(s) and {negatives} negative(s)")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    u = ranks[y == 1].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def decile_of(scores: Any) -> np.ndarray:
    """Decile per lead, 1 = the highest scores: the leads sorted by score (descending, ties in input order) and cut
    into ten groups as equal as possible."""
    s = np.asarray(scores, dtype=float)
    n = s.size
    order = np.argsort(-s, kind="stable")
    deciles = np.empty(n, dtype=np.int64)
    deciles[order] = np.arange(n) * DECILES // max(n, 1) + 1
    return deciles


def lift_by_decile(scores: Any, outcomes: Any) -> pd.DataFrame:
    """Leads, conversions, conversion rate, lift (decile rate / overall rate) and cumulative capture (share of all
    conversions in this and the higher deciles) per score decile; decile 1 = highest scores."""
    s, y = _arrays(scores, outcomes)
    if s.size == 0:
        raise ValueError("no leads to cut into deciles")
    frame = pd.DataFrame({"decile": decile_of(s), "outcome": y})
    grouped = frame.groupby("decile", sort=True)["outcome"]
    table = pd.DataFrame({"leads": grouped.size(), "conversions": grouped.sum()}).reset_index()
    table["leads"] = table["leads"].astype("int64")
    table["conversions"] = table["conversions"].astype("int64")
    overall = y.sum() / y.size
    table["conversion_rate"] = table["conversions"] / table["leads"]
    table["lift"] = table["conversion_rate"] / overall if overall > 0 else np.nan
    total = y.sum()
    table["cumulative_capture"] = table["conversions"].cumsum() / total if total > 0 else np.nan
    return table[["decile", "leads", "conversions", "conversion_rate", "lift", "cumulative_capture"]]


def mql_metrics(scores: Any, outcomes: Any, threshold: float) -> dict[str, float]:
    """Leads at or above `threshold` are MQLs: count, precision (converting share of MQLs), recall (share of
    converters that were MQLs), F1 and MQL rate (share of leads). Undefined ratios are NaN."""
    s, y = _arrays(scores, outcomes)
    mql = s >= threshold
    mqls = int(mql.sum())
    hits = int((mql & (y == 1)).sum())
    positives = int(y.sum())
    precision = hits / mqls if mqls else math.nan
    recall = hits / positives if positives else math.nan
    if math.isnan(precision) or math.isnan(recall) or precision + recall == 0:
        f1 = math.nan if (math.isnan(precision) or math.isnan(recall)) else 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return {
        "threshold": float(threshold),
        "mqls": mqls,
        "converted_mqls": hits,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mql_rate": mqls / s.size if s.size else math.nan,
    }


# --- reports -------------------------------------------------------------------------------------------------------


@dataclass
class BacktestDiff:
    """What changes when `new` replaces `current` on the same leads."""

    new_version: str
    current_version: str
    grade_changes: pd.DataFrame
    """Counts: rows = grade under the current model (from), columns = grade under the new model (to)."""
    changed_grade: int
    mql_in: int
    """Leads that are MQLs under the new model and were not under the current one."""
    mql_out: int
    """Leads that were MQLs under the current model and are not under the new one."""
    auc_delta: float
    """AUC(new) - AUC(current)."""

    @property
    def is_empty(self) -> bool:
        return self.changed_grade == 0 and self.mql_in == 0 and self.mql_out == 0


@dataclass
class BacktestReport:
    model_version: str
    leads: int
    positives: int
    auc: float
    lift: pd.DataFrame
    mql: dict[str, float]
    model_path: str = ""
    as_of: datetime | None = None
    scored: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    """Per lead (history order): lead_key, score, grade, rating, mql, outcome."""

    def compare(self, current: BacktestReport | None) -> BacktestDiff | None:
        """This report's model against `current` (the one in production), scored on the same leads."""
        if current is None:
            return None
        if len(current.scored) != len(self.scored):
            raise ValueError("reports were scored on different leads")
        old = current.scored["grade"].astype("string").fillna("?").reset_index(drop=True)
        new = self.scored["grade"].astype("string").fillna("?").reset_index(drop=True)
        labels = list(GRADES) + sorted((set(old) | set(new)) - set(GRADES))
        matrix = pd.crosstab(pd.Categorical(old, categories=labels), pd.Categorical(new, categories=labels),
                             dropna=False).reindex(index=labels, columns=labels, fill_value=0).astype("int64")
        matrix.index.name, matrix.columns.name = "from", "to"
        old_mql = current.scored["mql"].to_numpy(dtype=bool)
        new_mql = self.scored["mql"].to_numpy(dtype=bool)
        return BacktestDiff(
            new_version=self.model_version,
            current_version=current.model_version,
            grade_changes=matrix,
            changed_grade=int((old != new).sum()),
            mql_in=int((new_mql & ~old_mql).sum()),
            mql_out=int((old_mql & ~new_mql).sum()),
            auc_delta=self.auc - current.auc,
        )


@dataclass
class BacktestResult:
    report: BacktestReport
    current: BacktestReport | None = None
    diff: BacktestDiff | None = None
    history_path: str = ""
    activities_path: str | None = None
    """The activity file used (None: no activities, so every engagement score is 0)."""
    activities: int = 0

    @property
    def reports(self) -> list[BacktestReport]:
        return [self.report] + ([self.current] if self.current is not None else [])


def report_for(
    scored: pd.DataFrame, outcomes: pd.Series, *, version: str, threshold: float, model_path: str = "",
    as_of: datetime | None = None,
) -> BacktestReport:
    """Metrics for leads already scored (`score`, `grade` columns, aligned with `outcomes`)."""
    y = pd.Series(outcomes).astype("int64").to_numpy()
    s = scored["score"].astype("Float64")
    if s.isna().any():
        raise LeadflowError(f"model {version}: {int(s.isna().sum())} lead(s) got no score")
    values = s.to_numpy(dtype=float)
    frame = pd.DataFrame({
        "lead_key": scored["lead_key"].to_numpy() if "lead_key" in scored else pd.NA,
        "score": values,
        "grade": scored["grade"].to_numpy() if "grade" in scored else pd.NA,
        "rating": scored["rating"].to_numpy() if "rating" in scored else pd.NA,
        "mql": values >= threshold,
        "outcome": y,
    })
    try:
        area = auc(values, y)
    except ValueError as exc:
        raise LeadflowError(f"cannot backtest: {exc}") from None
    return BacktestReport(
        model_version=version, leads=int(y.size), positives=int(y.sum()), auc=area,
        lift=lift_by_decile(values, y), mql=mql_metrics(values, y, threshold), model_path=model_path, as_of=as_of,
        scored=frame,
    )


# --- input ---------------------------------------------------------------------------------------------------------


def _first_line(path: Path) -> int:
    return 2 if path.suffix.lower() == ".csv" else 1  # CSV line numbers count the header


def parse_outcomes(values: pd.Series, path: Path) -> pd.Series:
    """0/1/true/false (also yes/no) → int 0/1; an empty or unreadable value is an InputError naming its row."""
    text = values.astype("string").str.strip().str.lower()
    parsed = text.map(_OUTCOME_WORDS, na_action="ignore")
    bad = parsed.isna().to_numpy()
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        shown = values.iloc[position]
        what = "empty" if pd.isna(shown) or str(shown).strip() == "" else f"unreadable value {str(shown)[:40]!r}"
        more = f" ({int(bad.sum())} such rows)" if bad.sum() > 1 else ""
        raise InputError(str(path), f"outcome is {what}: use 0/1 or true/false{more}",
                         row=position + _first_line(path), column=OUTCOME_COLUMN)
    return parsed.astype("int64")


def read_history(path: Path | str) -> tuple[pd.DataFrame, pd.Series]:
    """Historical leads with their `outcome` (converted 0/1): (typed leads, outcomes), both on a RangeIndex."""
    from leadflow.pipeline.io import _normalised, _read_raw, prepare_leads

    path = Path(path)
    raw = _normalised(_read_raw(path), path)
    if OUTCOME_COLUMN not in raw.columns:
        raise InputError(str(path), f"needs an {OUTCOME_COLUMN!r} column (0/1 or true/false: did the lead convert?); "
                         f"found {list(raw.columns)}", column=OUTCOME_COLUMN)
    if raw.empty:
        raise InputError(str(path), "no leads (header only)")
    outcomes = parse_outcomes(raw[OUTCOME_COLUMN], path).reset_index(drop=True)
    loaded = prepare_leads(raw.drop(columns=[OUTCOME_COLUMN]), str(path), first_line=_first_line(path))
    if len(loaded.refused):
        first = loaded.refused.iloc[0]
        more = f" ({len(loaded.refused)} rows refused)" if len(loaded.refused) > 1 else ""
        raise InputError(str(path), f"{first['reason']}{more}", column=first["column"])
    return loaded.frame.reset_index(drop=True), outcomes


def default_activities_path(history: Path | str) -> Path:
    """`<history stem>.activities.csv` beside the history file."""
    history = Path(history)
    return history.with_name(f"{history.stem}.activities.csv")


def read_activities(path: Path | str) -> pd.DataFrame:
    """An activity file (CSV or Parquet) with the scoring module's ACTIVITY_COLUMNS; `occurred_at` parsed to UTC."""
    from leadflow.pipeline.io import _read_raw
    from leadflow.scoring.model import ACTIVITY_COLUMNS

    path = Path(path)
    raw = _read_raw(path)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in ACTIVITY_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(str(path), f"missing activity column(s) {missing}; needs {list(ACTIVITY_COLUMNS)}")
    frame = raw[list(ACTIVITY_COLUMNS)].copy()
    for column in ("lead_key", "activity_type"):
        empty = frame[column].isna() | (frame[column].str.strip() == "")
        if empty.any():
            position = int(np.flatnonzero(empty.to_numpy())[0])
            raise InputError(str(path), f"{column} is empty", row=position + _first_line(path), column=column)
        frame[column] = frame[column].str.strip()
    stamps = pd.to_datetime(frame["occurred_at"], utc=True, errors="coerce", format="mixed")
    bad = (stamps.isna() & frame["occurred_at"].notna()) | frame["occurred_at"].isna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(str(path), f"occurred_at is not a timestamp: {frame['occurred_at'].iloc[position]!r}",
                         row=position + _first_line(path), column="occurred_at")
    frame["occurred_at"] = stamps
    return frame.reset_index(drop=True)


def empty_activities() -> pd.DataFrame:
    from leadflow.scoring.model import ACTIVITY_COLUMNS

    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in ACTIVITY_COLUMNS})
    frame["occurred_at"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def parse_as_of(text: str | datetime | None) -> datetime | None:
    """ISO 8601 date or timestamp (UTC unless an offset is given)."""
    if text is None or isinstance(text, datetime):
        moment = text
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise LeadflowError(f"--as-of {text!r} is not an ISO date or timestamp (e.g. 2026-11-01T00:00:00Z)") from None
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def default_as_of(leads: pd.DataFrame) -> datetime:
    """The latest `created_at` in the history, else now."""
    if "created_at" in leads:
        stamps = pd.to_datetime(leads["created_at"], utc=True, errors="coerce", format="mixed")
        latest = stamps.max()
        if pd.notna(latest):
            return latest.to_pydatetime()
    return datetime.now(UTC)


def check_plot_path(path: Path | str | None) -> None:
    """Refuse a plot file leadflow cannot write, before any work is done."""
    if path is None:
        return
    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise LeadflowError(f"{path}: unsupported plot type {suffix or '(none)'!r}; use .html (or .png with matplotlib)")
    if suffix == ".png" and not _has_matplotlib():
        raise LeadflowError(f"{path}: a PNG lift chart needs matplotlib, which is not installed; "
                            "write the chart as .html instead (self-contained SVG), or install matplotlib")


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def run_backtest(
    model_path: Path | str,
    history_path: Path | str,
    activities_path: Path | str | None = None,
    as_of: datetime | str | None = None,
    against_path: Path | str | None = None,
) -> BacktestResult:
    """Score the history with the model (and with `against_path`, the current model, if given) and measure both.
    The models are loaded and validated before any lead is read."""
    from leadflow.pipeline.schema import lead_keys
    from leadflow.scoring.model import load_scoring_model, score_leads

    model = load_scoring_model(Path(model_path))
    current_model = load_scoring_model(Path(against_path)) if against_path is not None else None
    moment = parse_as_of(as_of)

    history_path = Path(history_path)
    leads, outcomes = read_history(history_path)
    positives = int(outcomes.sum())
    if positives in (0, len(outcomes)):
        raise InputError(str(history_path), f"every lead has outcome {int(outcomes.iloc[0])}: a backtest needs leads "
                         "that converted (1) and leads that did not (0)", column=OUTCOME_COLUMN)
    if activities_path is None:
        beside = default_activities_path(history_path)
        activities_path = beside if beside.is_file() else None
    activities = read_activities(activities_path) if activities_path is not None else empty_activities()
    moment = moment or default_as_of(leads)
    keys = lead_keys(leads)

    def measure(scoring_model: Any, path: Path | str) -> BacktestReport:
        scored = score_leads(leads, activities, scoring_model, as_of=moment).reindex(leads.index)
        scored = scored.assign(lead_key=keys.to_numpy())
        return report_for(scored, outcomes, version=str(scoring_model.version),
                          threshold=float(scoring_model.mql_threshold), model_path=str(path), as_of=moment)

    report = measure(model, model_path)
    current = measure(current_model, against_path) if current_model is not None else None
    return BacktestResult(report=report, current=current, diff=report.compare(current), history_path=str(history_path),
                          activities_path=str(activities_path) if activities_path is not None else None,
                          activities=len(activities))


# --- text ----------------------------------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.1%}"


def _num(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def lift_lines(report: BacktestReport) -> list[str]:
    lines = [f"  {'decile':>6} {'leads':>7} {'conv':>6} {'rate':>7} {'lift':>6} {'capture':>8}"]
    for row in report.lift.itertuples(index=False):
        lines.append(f"  {row.decile:>6} {row.leads:>7} {row.conversions:>6} {_pct(row.conversion_rate):>7} "
                     f"{_num(row.lift):>6} {_pct(row.cumulative_capture):>8}")
    return lines


def report_lines(report: BacktestReport, label: str = "model") -> list[str]:
    mql = report.mql
    lines = [
        f"{label} {report.model_version}  ({report.model_path})",
        f"  {'leads':<22}{report.leads:>8}",
        f"  {'positives':<22}{report.positives:>8}  ({_pct(report.positives / report.leads)})",
        f"  {'AUC':<22}{report.auc:>8.3f}",
        f"  MQL at score >= {mql['threshold']:g}: {mql['mqls']} MQLs ({_pct(mql['mql_rate'])} of leads), "
        f"precision {_pct(mql['precision'])}, recall {_pct(mql['recall'])}, F1 {_num(mql['f1'], 3)}",
        "  lift by decile (1 = highest scores)",
    ]
    return lines + lift_lines(report)


def diff_lines(diff: BacktestDiff) -> list[str]:
    lines = [
        f"{diff.new_version} against {diff.current_version}",
        f"  {'leads changing grade':<22}{diff.changed_grade:>8}",
        f"  {'MQL in':<22}{diff.mql_in:>8}  (MQL under {diff.new_version}, not under {diff.current_version})",
        f"  {'MQL out':<22}{diff.mql_out:>8}  (MQL under {diff.current_version}, not under {diff.new_version})",
        f"  {'AUC delta':<22}{diff.auc_delta:>+8.3f}",
        "  grade changes (rows: from current, columns: to new)",
    ]
    matrix = diff.grade_changes
    lines.append("  " + f"{'':>6}" + "".join(f"{c:>7}" for c in matrix.columns))
    for grade, row in matrix.iterrows():
        lines.append("  " + f"{grade:>6}" + "".join(f"{int(v):>7}" for v in row))
    return lines


def result_lines(result: BacktestResult) -> list[str]:
    as_of = result.report.as_of.isoformat() if result.report.as_of else "now"
    lines = [f"leadflow score backtest  (as of {as_of})", f"  history       {result.history_path}"]
    if result.activities_path is None:
        lines.append("  activities    none (every engagement score is 0)")
    else:
        lines.append(f"  activities    {result.activities_path}  ({result.activities} activities)")
    lines.append("")
    lines += report_lines(result.report, "model")
    if result.current is not None:
        lines += [""] + report_lines(result.current, "current")
    if result.diff is not None:
        lines += [""] + diff_lines(result.diff)
    return lines


# --- charts --------------------------------------------------------------------------------------------------------

def lift_svg(reports: Sequence[BacktestReport], *, width: int = 720, height: int = 360) -> str:
    """An inline SVG grouped bar chart of lift by decile, one series per model, with a dashed line at lift 1."""
    deciles = sorted({int(d) for r in reports for d in r.lift["decile"]})
    series = []
    for report in reports:
        lifts = dict(zip(report.lift["decile"].astype(int), report.lift["lift"].astype(float), strict=True))
        series.append(Series(report.model_version, [lifts.get(d, math.nan) for d in deciles],
                             legend=f"{shorten(report.model_version, 24)} (AUC {report.auc:.3f})"))
    return grouped_bar_svg("Lift by score decile", deciles, series, heading="Lift by score decile (1 = highest scores)",
                           width=width, height=height, x_label="score decile", y_label="lift", category_name="decile",
                           value_name="lift", reference=1.0, empty="no models to chart")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def lift_chart_html(reports: Sequence[BacktestReport], path: Path | str, diff: BacktestDiff | None = None) -> Path:
    """Write a self-contained HTML page (inline SVG, no script, no network): the lift chart and the metric tables."""
    from leadflow.pipeline.io import _atomic_write

    path = Path(path)
    summary = _table(
        ["model", "leads", "positives", "AUC", "MQL threshold", "MQLs", "precision", "recall", "F1"],
        [[r.model_version, r.leads, r.positives, f"{r.auc:.3f}", f"{r.mql['threshold']:g}", r.mql["mqls"],
          _pct(r.mql["precision"]), _pct(r.mql["recall"]), _num(r.mql["f1"], 3)] for r in reports],
    )
    sections = []
    for r in reports:
        rows = [[row.decile, row.leads, row.conversions, _pct(row.conversion_rate), _num(row.lift),
                 _pct(row.cumulative_capture)] for row in r.lift.itertuples(index=False)]
        sections.append(f"<h2>Lift by decile: {esc(r.model_version)}</h2>"
                        + _table(["decile", "leads", "conversions", "conversion rate", "lift", "cumulative capture"],
                                 rows))
    if diff is not None:
        matrix = diff.grade_changes
        sections.append(
            f"<h2>{esc(diff.new_version)} against {esc(diff.current_version)}</h2>"
            + _table(["leads changing grade", "MQL in", "MQL out", "AUC delta"],
                     [[diff.changed_grade, diff.mql_in, diff.mql_out, f"{diff.auc_delta:+.3f}"]])
            + "<p>Grade changes: rows = grade under the current model, columns = grade under the new model.</p>"
            + _table(["from \\ to", *matrix.columns], [[g, *(int(v) for v in row)] for g, row in matrix.iterrows()])
        )
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>leadflow score backtest</title>',
        "<style>body{font-family:sans-serif;margin:24px;color:#1a202c}table{border-collapse:collapse;margin:8px 0 16px}"
        "th,td{border:1px solid #cbd5e0;padding:4px 8px;text-align:right}th{background:#edf2f7}</style></head><body>",
        "<h1>leadflow score backtest</h1>",
        lift_svg(reports),
        "<h2>Summary</h2>",
        summary,
        *sections,
        "</body></html>",
    ])
    _atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path


def lift_chart_png(reports: Sequence[BacktestReport], path: Path | str) -> Path:
    """Write the lift chart as PNG; needs matplotlib (not a leadflow dependency)."""
    check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(reports), 1)
    for s, report in enumerate(reports):
        xs = report.lift["decile"].to_numpy(dtype=float) - 0.4 + width * (s + 0.5)
        ax.bar(xs, report.lift["lift"].to_numpy(dtype=float), width=width,
               label=f"{report.model_version} (AUC {report.auc:.3f})", color=PALETTE[s % len(PALETTE)])
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("score decile (1 = highest scores)")
    ax.set_ylabel("lift")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_plot(result: BacktestResult, path: Path | str) -> Path:
    """The chart by file type: .html/.htm (self-contained SVG) or .png (needs matplotlib)."""
    check_plot_path(path)
    if Path(path).suffix.lower() == ".png":
        return lift_chart_png(result.reports, path)
    return lift_chart_html(result.reports, path, result.diff)
