"""Scoring backtest: metrics on hand-computed arrays, history input errors, and `leadflow score backtest` end to end."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadflow.scoring.backtest import (
    BacktestReport,
    auc,
    decile_of,
    lift_by_decile,
    lift_svg,
    mql_metrics,
    read_history,
    report_for,
)
from leadflow.cli import app
from leadflow.pipeline.errors import InputError

runner = CliRunner()


# --- metrics -------------------------------------------------------------------------------------------------------


def _pairwise_auc(scores: np.ndarray, outcomes: np.ndarray) -> float:
    pos, neg = scores[outcomes == 1], scores[outcomes == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_hand_computed() -> None:
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # ties count one half: (pos 2 vs neg 1) 1 + (pos 2 vs neg 2) 0.5 + (pos 3 vs both) 2 = 3.5 of 4 pairs
    assert auc([1, 2, 2, 3], [0, 0, 1, 1]) == pytest.approx(0.875)
    assert auc([5, 5, 5, 5], [1, 0, 1, 0]) == pytest.approx(0.5)


def test_auc_perfect_reversed_and_random_ish() -> None:
    assert auc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 1.0
    assert auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 20, 400).astype(float)  # many ties
    outcomes = rng.integers(0, 2, 400)
    assert auc(scores, outcomes) == pytest.approx(_pairwise_auc(scores, outcomes))
    assert 0.4 < auc(scores, outcomes) < 0.6  # noise scores: near one half


def test_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both outcomes"):
        auc([0.1, 0.5, 0.9], [1, 1, 1])
    with pytest.raises(ValueError, match="both outcomes"):
        auc([0.1, 0.5], [0, 0])
    with pytest.raises(ValueError, match="0 or 1"):
        auc([0.1, 0.5], [0, 2])
    with pytest.raises(ValueError, match="missing"):
        auc([0.1, float("nan")], [0, 1])


def test_lift_by_decile_hand_computed() -> None:
    scores = np.arange(20, dtype=float)  # higher = better; deciles of two leads each
    outcomes = np.zeros(20, dtype=int)
    outcomes[[19, 18, 10, 0]] = 1  # overall rate 0.2
    table = lift_by_decile(scores, outcomes)
    assert list(table.columns) == ["decile", "leads", "conversions", "conversion_rate", "lift", "cumulative_capture"]
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["leads"].sum() == 20 and (table["leads"] == 2).all()
    assert table["conversions"].tolist() == [2, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert table["conversion_rate"].tolist() == pytest.approx([1.0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.5])
    assert table["lift"].tolist() == pytest.approx([5.0, 0, 0, 0, 2.5, 0, 0, 0, 0, 2.5])
    assert table["cumulative_capture"].tolist() == pytest.approx([0.5] * 4 + [0.75] * 5 + [1.0])


@pytest.mark.parametrize("n", [1, 7, 10, 23, 1001])
def test_lift_deciles_sum_to_n(n: int) -> None:
    rng = np.random.default_rng(n)
    scores, outcomes = rng.random(n), rng.integers(0, 2, n)
    outcomes[0] = 1
    table = lift_by_decile(scores, outcomes)
    assert table["leads"].sum() == n
    assert table["conversions"].sum() == outcomes.sum()
    assert table["cumulative_capture"].iloc[-1] == pytest.approx(1.0)
    assert table["decile"].is_monotonic_increasing and table["decile"].between(1, 10).all()
    if n >= 10:
        assert table["leads"].max() - table["leads"].min() <= 1


def test_decile_one_holds_the_highest_scores() -> None:
    scores = np.array([0.1, 0.95, 0.5, 0.99, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8])
    deciles = decile_of(scores)
    assert deciles[3] == 1 and deciles[1] == 2 and deciles[0] == 10


def test_mql_metrics_exact() -> None:
    metrics = mql_metrics([0.9, 0.8, 0.7, 0.2, 0.1], [1, 0, 1, 1, 0], threshold=0.7)
    assert metrics["mqls"] == 3 and metrics["converted_mqls"] == 2
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["mql_rate"] == pytest.approx(0.6)
    metrics = mql_metrics([0.9, 0.8, 0.7, 0.2], [1, 0, 0, 1], threshold=0.85)
    assert (metrics["precision"], metrics["recall"]) == (1.0, 0.5)
    assert metrics["f1"] == pytest.approx(2 / 3)
    nobody = mql_metrics([0.1, 0.2], [0, 1], threshold=0.5)
    assert nobody["mqls"] == 0 and math.isnan(nobody["precision"]) and nobody["recall"] == 0.0


def _report(version: str, scores: list[float], grades: list[str], outcomes: list[int], threshold: float) -> BacktestReport:
    scored = pd.DataFrame({"score": pd.array(scores, dtype="Float64"), "grade": grades})
    return report_for(scored, pd.Series(outcomes), version=version, threshold=threshold)


def test_compare_counts_grade_changes_and_mql_in_out() -> None:
    outcomes = [1, 0, 1, 0]
    current = _report("v1", [80, 60, 40, 20], ["A", "B", "C", "D"], outcomes, threshold=50)  # MQL: leads 0, 1
    new = _report("v2", [80, 40, 60, 20], ["A", "C", "B", "D"], outcomes, threshold=50)  # MQL: leads 0, 2
    diff = new.compare(current)
    assert diff is not None and new.compare(None) is None
    assert diff.changed_grade == 2
    assert (diff.mql_in, diff.mql_out) == (1, 1)  # lead 2 enters, lead 1 leaves
    assert diff.grade_changes.loc["B", "C"] == 1 and diff.grade_changes.loc["C", "B"] == 1
    assert diff.grade_changes.loc["A", "A"] == 1 and int(diff.grade_changes.to_numpy().sum()) == 4
    assert diff.auc_delta == pytest.approx(new.auc - current.auc) and diff.auc_delta > 0
    svg = lift_svg([new, current])
    assert svg.startswith("<svg") and "v1" in svg and "v2" in svg


# --- history input -------------------------------------------------------------------------------------------------


def test_history_without_outcome_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text("email,company\na@acme.com,Acme\n")
    with pytest.raises(InputError, match=r"history\.csv.*'outcome'"):
        read_history(path)


def test_history_unreadable_outcome_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text("email,outcome\na@acme.com,1\nb@acme.com,TRUE\nc@acme.com,maybe\nd@acme.com,\n")
    with pytest.raises(InputError, match=r"history\.csv, row 4, column 'outcome'.*'maybe'.*2 such rows"):
        read_history(path)


def test_history_outcome_words(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text("email,outcome\na@acme.com,1\nb@acme.com,TRUE\nc@acme.com,false\nd@acme.com,0\n")
    leads, outcomes = read_history(path)
    assert outcomes.tolist() == [1, 1, 0, 0] and len(leads) == 4


# --- CLI end to end (needs leadflow.scoring.model and synth.scoring_history) ----------------------------------------------


@pytest.fixture(scope="module")
def scoring() -> None:
    pytest.importorskip("leadflow.scoring.model", reason="leadflow.scoring.model is not there yet")


@pytest.fixture(scope="module")
def history(scoring: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from leadflow import synth

    if not hasattr(synth, "scoring_history"):
        pytest.skip("leadflow.synth.scoring_history is not there yet")
    leads, activities = synth.scoring_history(2000)
    folder = tmp_path_factory.mktemp("backtest")
    path = folder / "history.csv"
    leads.to_csv(path, index=False)
    activities.to_csv(folder / "history.activities.csv", index=False)  # picked up beside the history by default
    return path


def _default_model() -> Path:
    from leadflow.scoring.model import DEFAULT_SCORING_MODEL

    return Path(DEFAULT_SCORING_MODEL)


def test_cli_backtest_default_model(history: Path, tmp_path: Path) -> None:
    plot = tmp_path / "lift.html"
    result = runner.invoke(app, ["score", "backtest", "--model", str(_default_model()), "--history", str(history),
                                 "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.strip().startswith("AUC"))
    assert float(line.split()[-1]) > 0.6
    assert "leads" in result.output and "positives" in result.output and "precision" in result.output
    assert "decile" in result.output
    assert "history.activities.csv  (" in result.output  # activities found beside the history by default
    page = plot.read_text()
    assert "<svg" in page and "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")


def test_cli_backtest_against_shows_diff(history: Path, tmp_path: Path) -> None:
    import yaml

    default = _default_model()
    document = yaml.safe_load(default.read_text())
    changed = _bump_first_fit_rule(document)
    assert changed, "no fit rule with points found in the default model"
    document["version"] = f"{document.get('version', 'default')}-candidate"
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(document, sort_keys=False))
    result = runner.invoke(app, ["score", "backtest", "--model", str(candidate), "--history", str(history),
                                 "--against", str(default)])
    assert result.exit_code == 0, result.output
    changing = next(line for line in result.output.splitlines() if "leads changing grade" in line)
    mql_in = next(line for line in result.output.splitlines() if line.strip().startswith("MQL in"))
    mql_out = next(line for line in result.output.splitlines() if line.strip().startswith("MQL out"))
    assert int(changing.split()[-1]) + int(mql_in.split()[2]) + int(mql_out.split()[2]) > 0
    assert "AUC delta" in result.output and "grade changes" in result.output


def _bump_first_fit_rule(node: object, inside_fit: bool = False) -> bool:
    """Add 40 points to the first rule with `points` under a key mentioning `fit`."""
    if isinstance(node, dict):
        if inside_fit and isinstance(node.get("points"), int | float):
            node["points"] = node["points"] + 40
            return True
        return any(_bump_first_fit_rule(v, inside_fit or "fit" in str(k).lower()) for k, v in node.items())
    if isinstance(node, list):
        return any(_bump_first_fit_rule(v, inside_fit) for v in node)
    return False


def test_cli_malformed_model_fails_before_reading_leads(scoring: None, tmp_path: Path) -> None:
    model = tmp_path / "broken_model.yaml"
    model.write_text("version: 1\nmql_threshold: [not, a, number\n")
    result = runner.invoke(app, ["score", "backtest", "--model", str(model),
                                 "--history", str(tmp_path / "no_such_history.csv")])
    assert result.exit_code != 0
    assert "broken_model.yaml" in result.output
    assert "no_such_history.csv" not in result.output  # the model is checked before any lead is read


def test_cli_invalid_model_names_the_yaml_path(scoring: None, tmp_path: Path) -> None:
    import yaml

    document = yaml.safe_load(_default_model().read_text())
    document["fit_rules"][1]["points"] = "lots"
    model = tmp_path / "invalid_model.yaml"
    model.write_text(yaml.safe_dump(document, sort_keys=False))
    result = runner.invoke(app, ["score", "backtest", "--model", str(_default_model()), "--against", str(model),
                                 "--history", str(tmp_path / "no_such_history.csv")])
    assert result.exit_code != 0
    assert "invalid_model.yaml: fit_rules[1].points" in result.output
    assert "no_such_history.csv" not in result.output


def test_cli_history_without_outcome(history: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(history, dtype="string").drop(columns=["outcome"])
    path = tmp_path / "no_outcome.csv"
    frame.to_csv(path, index=False)
    result = runner.invoke(app, ["score", "backtest", "--model", str(_default_model()), "--history", str(path)])
    assert result.exit_code != 0
    assert "no_outcome.csv" in result.output and "outcome" in result.output


def test_cli_png_plot_refused_without_matplotlib(history: Path, tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:
        pytest.skip("matplotlib is installed here")
    result = runner.invoke(app, ["score", "backtest", "--model", str(_default_model()), "--history", str(history),
                                 "--plot", str(tmp_path / "lift.png")])
    assert result.exit_code != 0 and "matplotlib" in result.output
    assert not (tmp_path / "lift.png").exists()


def test_cli_history_with_one_outcome(scoring: None, tmp_path: Path) -> None:
    path = tmp_path / "all_won.csv"
    path.write_text("email,outcome\na@acme.com,1\nb@acme.com,true\n")
    result = runner.invoke(app, ["score", "backtest", "--model", str(_default_model()), "--history", str(path)])
    assert result.exit_code != 0
    assert "all_won.csv, column 'outcome'" in result.output and "did not (0)" in result.output
