"""`leadflow score backtest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.cli.common import _guard

score_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Lead scoring: backtest a scoring model.")


@score_app.command("backtest")
def score_backtest(
    model: Annotated[Path, typer.Option("--model", "-m", help="Scoring model YAML to backtest.")],
    history: Annotated[Path, typer.Option("--history", help="Historical leads (.csv/.parquet) with an outcome column "
                                          "(0/1 or true/false).")],
    activities: Annotated[Path | None, typer.Option("--activities", help="Activity file (lead_key, activity_type, "
                                                    "occurred_at, detail); default: <history stem>.activities.csv "
                                                    "beside the history, if present.")] = None,
    against: Annotated[Path | None, typer.Option("--against", help="The current model YAML: show what changes.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Score as of this ISO date/time (UTC unless an offset "
                                              "is given); default: the latest created_at in the history.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the lift chart and tables (.html).")] = None,
) -> None:
    """Backtest a scoring model on historical leads.

    Prints AUC, lift by decile and MQL precision/recall; with --against, how many leads change grade and enter or
    leave MQL."""
    from leadflow.scoring.backtest import check_plot_path, result_lines, run_backtest, write_plot

    def work() -> Any:
        check_plot_path(plot)
        result = run_backtest(model, history, activities, as_of, against)
        written = write_plot(result, plot) if plot is not None else None
        return result, written

    result, written = _guard(work)
    for line in result_lines(result):
        typer.echo(line)
    if written is not None:
        typer.echo(f"\nlift chart    {written}")
