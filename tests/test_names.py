"""Person names re-cased as people write them (recase_name and the standardize stage's name columns)."""

from __future__ import annotations

import pandas as pd
import pytest

from leadflow.stages.standardize import STANDARDIZE, recase_name, standardize


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        # Gaelic patronymics: Mc always, Mac only before a listed stem
        ("mcdonald", "McDonald"),
        ("MCDONALD", "McDonald"),
        ("mccoy", "McCoy"),
        ("MCENROE", "McEnroe"),
        ("macdonald", "MacDonald"),
        ("MACGREGOR", "MacGregor"),
        ("macleod", "MacLeod"),
        ("MACARTHUR", "MacArthur"),
        ("mack", "Mack"),
        ("MACY", "Macy"),
        ("mace", "Mace"),
        ("MACHADO", "Machado"),
        ("macias", "Macias"),
        ("MACKIE", "Mackie"),
        ("mackay", "Mackay"),
        ("MC", "Mc"),
        ("mcc", "Mcc"),
        # apostrophes and hyphens
        ("o'brien", "O'Brien"),
        ("O'BRIEN-SMITH", "O'Brien-Smith"),
        ("o\u2019neill", "O\u2019Neill"),
        ("d'angelo", "D'Angelo"),
        ("smith-macdonald", "Smith-MacDonald"),
        ("MCDONALD-O'BRIEN", "McDonald-O'Brien"),
        # particles stay small before another word
        ("VAN DER BERG", "van der Berg"),
        ("van der berg", "van der Berg"),
        ("de la cruz", "de la Cruz"),
        ("VON", "Von"),
        ("van mcdonald", "van McDonald"),
        # caps lock
        ("sMITH", "Smith"),
        # deliberate mixed case is left as typed
        ("McDonald", "McDonald"),
        ("Mcdonald", "Mcdonald"),
        ("MacDonald", "MacDonald"),
        ("Macdonald", "Macdonald"),
        ("McDONALD", "McDONALD"),
        ("van der Berg", "van der Berg"),
        ("DeShawn", "DeShawn"),
        ("García", "García"),
        ("ÉMILIE", "Émilie"),
    ],
)
def test_recase_last_name(typed: str, expected: str) -> None:
    assert recase_name(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("jean-luc", "Jean-Luc"),
        ("JEAN-LUC", "Jean-Luc"),
        ("DE ANDRE", "De Andre"),  # a first name may start with a particle
        ("anna maria", "Anna Maria"),
        ("MACKENZIE", "Mackenzie"),  # Mc/Mac rules are for surnames only
        ("mckenna", "Mckenna"),
        ("d'andre", "D'Andre"),
        ("DeShawn", "DeShawn"),
    ],
)
def test_recase_first_name(typed: str, expected: str) -> None:
    assert recase_name(typed, particles_first=False) == expected


def test_stage_recases_names_per_column() -> None:
    first = ["jean-luc", "MACKENZIE", "DeShawn", None]
    last = ["MACDONALD", "o'brien-smith", "McDonald", "van der berg"]
    frame = pd.DataFrame({c: pd.Series([None] * 4, dtype="string") for c in STANDARDIZE.reads})
    frame["first_name"] = pd.Series(first, dtype="string")
    frame["last_name"] = pd.Series(last, dtype="string")
    out = standardize(frame, None)  # type: ignore[arg-type]  # the stage does not read its rules
    assert out["first_name"].tolist() == ["Jean-Luc", "Mackenzie", "DeShawn", pd.NA]
    assert out["last_name"].tolist() == ["MacDonald", "O'Brien-Smith", "McDonald", "van der Berg"]
