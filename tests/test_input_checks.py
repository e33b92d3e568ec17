"""Input checks a first user hits (issue 15): misspelt headers refuse the file with "did you mean", other unknown
headers are carried through and named once in a warning; email_opt_in reads yes/no in the common languages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.pipeline.config import Rules, default_consent_policy
from leadflow.pipeline.errors import ConfigError, InputError
from leadflow.pipeline.io import check_header, read_leads, write_leads
from leadflow.pipeline.schema import (
    FALSE_WORDS,
    INPUT_COLUMNS,
    TRUE_WORDS,
    YES_NO_WORDS,
    YES_NO_WORDS_FILE,
    _load_yes_no_words,
    fold_word,
    parse_bool,
)
from leadflow.stages.comply import COMPLY


def write(tmp_path: Path, text: str, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- 1. headers ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("header", "meant"),
    [
        ("e_mail", "email"),
        ("E-Mail", "email"),  # normalised to e_mail
        ("emial", "email"),  # two letters swapped
        ("emails", "email"),
        ("compnay", "company"),
        ("Frist Name", "first_name"),
        ("countyr", "country"),
        ("EmailOptIn", "email_opt_in"),  # separators ignored
        ("is_convertd", "is_converted"),
        ("industy", "industry"),
    ],
)
@pytest.mark.parametrize("reader", [check_header, read_leads])
def test_a_misspelt_column_refuses_the_file_with_did_you_mean(
    tmp_path: Path, reader: Callable[[Path], object], header: str, meant: str
) -> None:
    path = write(tmp_path, f"lead_id,{header}\n00Q1,x\n")
    with pytest.raises(InputError) as info:
        reader(path)
    message = str(info.value)
    normalised = header.strip().lower().replace(" ", "_").replace("-", "_")
    assert message.startswith(f"{path}: column {normalised!r} is not a leadflow column; did you mean {meant!r}?")
    assert "\n" not in message


def test_the_issue_file_no_longer_runs_with_every_lead_no_email(tmp_path: Path) -> None:
    """The reported case: a CRM export with lead ids and `e_mail` ran with rc 0 and 0% mailable."""
    path = write(tmp_path, "lead_id,e_mail,company\n00Q1,ann@acme.com,Acme\n00Q2,bo@beta.io,Beta\n")
    with pytest.raises(InputError, match=r"column 'e_mail' is not a leadflow column; did you mean 'email'\?"):
        read_leads(path)


def test_several_typos_are_named_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "email,compnay,countyr\na@b.com,Acme,DE\n")
    with pytest.raises(InputError) as info:
        check_header(path)
    message = str(info.value)
    assert "column 'compnay' is not a leadflow column; did you mean 'company'?" in message
    assert "column 'countyr' is not a leadflow column; did you mean 'country'?" in message
    assert "\n" not in message


def test_a_header_as_close_to_two_columns_names_both(tmp_path: Path) -> None:
    path = write(tmp_path, "email,stat\na@b.com,x\n")  # one letter from `state` and two from `status`
    with pytest.raises(InputError, match=r"did you mean 'state'\?"):
        check_header(path)
    path = write(tmp_path, "email,owner_idd,lead_idd\na@b.com,x,y\n")
    with pytest.raises(InputError) as info:
        check_header(path)
    assert "'owner_idd' is not a leadflow column; did you mean 'owner_id'?" in str(info.value)
    assert "'lead_idd' is not a leadflow column; did you mean 'lead_id'?" in str(info.value)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("first_name,last_name\nAnn,Lee\n", "['first_name', 'last_name']"),
        ("e_mail,company\nann@acme.com,Acme\n", "['e_mail', 'company']"),
        ("name,phone_number\nAnn,+49 30 1234\n", "['name', 'phone_number']"),
    ],
)
def test_a_file_with_neither_email_nor_lead_id_is_refused_naming_file_and_columns(
    tmp_path: Path, content: str, named: str
) -> None:
    path = write(tmp_path, content)
    for reader in (check_header, read_leads):
        with pytest.raises(InputError) as info:
            reader(path)
        message = str(info.value)
        assert message.startswith(f"{path}: needs an 'email' or a 'lead_id' column; found {named}")
        assert "\n" not in message
    if "e_mail" in content:
        assert message.endswith("column 'e_mail' is not a leadflow column; did you mean 'email'?")
    else:
        assert "did you mean" not in message


def test_unknown_columns_far_from_any_leadflow_column_are_carried_through_and_named_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path,
        "email,utm_campaign,Job Title,notes,stage\n"
        "ann@acme.com,spring,CTO,call back,lead\n"
        "bo@beta.io,,VP Sales,,\n",
    )
    header = check_header(path)
    assert header.ignored == ("utm_campaign", "job_title", "notes", "stage")  # `stage` is a word, not `state` misspelt
    assert header.hints == {"job_title": "title"}

    with caplog.at_level(logging.WARNING, logger="leadflow.pipeline.io"):
        loaded = read_leads(path)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # said once
    assert warnings[0].getMessage() == header.warning
    assert warnings[0].getMessage() == (
        f"{path}: 4 columns are not leadflow columns; no stage reads them, and they are carried to the output "
        "unchanged: 'utm_campaign', 'job_title' (did you mean 'title'?), 'notes', 'stage'"
    )
    assert loaded.ignored == header.ignored
    # As before: extra columns ride along to the output untouched.
    assert loaded.frame["utm_campaign"].tolist() == ["spring", pd.NA]
    assert loaded.frame["title"].isna().all()
    out = pd.read_csv(write_leads(loaded.frame, tmp_path / "out.csv"), dtype="string", keep_default_na=False)
    assert out["utm_campaign"].tolist() == ["spring", ""]
    assert out["notes"].tolist() == ["call back", ""]


def test_check_header_does_not_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "email,utm_campaign\na@b.com,x\n")
    with caplog.at_level(logging.WARNING, logger="leadflow.pipeline.io"):
        check_header(path)
    assert caplog.records == []


def test_a_near_miss_beside_its_column_is_an_extra_column_not_a_typo(tmp_path: Path) -> None:
    path = write(tmp_path, "email,e_mail,lead_source,lead_score\na@b.com,b@c.de,Web,42\n")
    loaded = read_leads(path)
    assert loaded.ignored == ("e_mail", "lead_score")
    assert loaded.frame.loc[0, "email"] == "a@b.com"


def test_a_file_of_leadflow_columns_has_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, ",".join(INPUT_COLUMNS) + "\n" + "00Q1,file,a@b.com" + "," * (len(INPUT_COLUMNS) - 3) + "\n")
    assert check_header(path).warning is None
    with caplog.at_level(logging.WARNING, logger="leadflow.pipeline.io"):
        loaded = read_leads(path)
    assert loaded.ignored == () and caplog.records == []
    # A leadflow output read back (derived columns and all) is not warned about either.
    out = write_leads(loaded.frame, tmp_path / "out.csv")
    assert check_header(out).warning is None


def test_parquet_headers_are_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pd.DataFrame({"lead_id": ["00Q1"], "e_mail": ["a@b.com"]}).to_parquet(path)
    with pytest.raises(InputError, match=r"column 'e_mail' is not a leadflow column; did you mean 'email'\?"):
        read_leads(path)


def test_cli_refuses_a_misspelt_column_in_one_line_rc_2(tmp_path: Path) -> None:
    path = write(tmp_path, "lead_id,e_mail\n00Q1,ann@acme.com\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["run", "--input", str(path), "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"error: {path}: column 'e_mail' is not a leadflow column; did you mean 'email'?")
    assert not out.exists()


def test_cli_refuses_a_file_without_identity_in_one_line_rc_2(tmp_path: Path) -> None:
    path = write(tmp_path, "e_mail,company\nann@acme.com,Acme\n")
    result = CliRunner().invoke(app, ["run", "--input", str(path), "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"error: {path}: needs an 'email' or a 'lead_id' column; found ['e_mail', 'company']; "
        "column 'e_mail' is not a leadflow column; did you mean 'email'?"
    )


# --- 2. email_opt_in in the common languages ---------------------------------------------------------------------

YES = ["yes", "Y", "1", "true", "TRUE", "opt-in", "Opt In", "opt_in", "subscribed",  # as before
       "ja", "JA", "j", "wahr",  # de
       "oui", "Oui", "vrai",  # fr
       "sí", "SÍ", "si", "verdadero",  # es
       "sì", "vero",  # it
       "sim", "Sim", "verdadeiro",  # pt
       "waar",  # nl (ja above)
       "sant",  # sv/no
       "sand",  # da
       "tak", "TAK", "prawda",  # pl
       "kyllä", "kylla"]  # fi
NO = ["no", "N", "0", "false", "opt-out", "Opted Out", "unsubscribed",  # as before
      "nein", "NEIN", "falsch",  # de
      "non", "Non", "faux",  # fr
      "falso",  # es/it/pt
      "não", "NÃO", "nao",  # pt
      "nee", "onwaar",  # nl
      "nej", "Nej", "falskt",  # sv/da
      "nei", "usann",  # no
      "nie", "Nie", "fałsz", "falsz",  # pl
      "ei"]  # fi


@pytest.mark.parametrize(("word", "meaning"), [(w, True) for w in YES] + [(w, False) for w in NO])
def test_email_opt_in_reads_yes_and_no_in_the_common_languages(tmp_path: Path, word: str, meaning: bool) -> None:
    path = write(tmp_path, f"email,email_opt_in\nann@acme.com, {word} \n")
    loaded = read_leads(path)
    assert len(loaded.refused) == 0, loaded.refused["reason"].tolist()
    assert loaded.frame["email_opt_in"].tolist() == [meaning]


@pytest.mark.parametrize("word", ["vielleicht", "peut-être", "quizás", "maybe", "jein", "ja nein", "2"])
def test_an_unknown_word_still_quarantines_the_row_naming_the_value(tmp_path: Path, word: str) -> None:
    path = write(tmp_path, f"email,email_opt_in\nann@acme.com,{word}\nbo@beta.io,ja\n")
    loaded = read_leads(path)
    assert loaded.refused["reason"].tolist() == [f"row 2: email_opt_in: unrecognised value {word!r}"]
    assert loaded.refused["column"].tolist() == ["email_opt_in"]
    assert loaded.frame["email"].tolist() == ["bo@beta.io"]


def test_german_nein_makes_a_lead_opted_out_and_ja_mailable(tmp_path: Path) -> None:
    loaded = read_leads(write(tmp_path, "email,email_opt_in\na@acme.de,Ja\nb@acme.de,Nein\nc@acme.de,\n"))
    frame = loaded.frame.assign(
        email_valid=pd.array([True] * 3, dtype="boolean"),
        email_domain=pd.array(["acme.de"] * 3, dtype="string"),
        country_code=pd.array(["DE"] * 3, dtype="string"),
    )
    out = COMPLY.apply(frame, Rules(consent=default_consent_policy()))
    assert out["mailable_reason"].tolist() == ["ok", "opted_out", "no_consent"]


def test_parse_bool_folds_case_accents_and_separators() -> None:
    values = pd.Series(["SÍ", "Não", "FAŁSZ", "opt_out", "Opted-In", None, "", "what"], dtype="string")
    parsed, bad = parse_bool(values)
    assert parsed.tolist() == [True, False, False, False, True, pd.NA, pd.NA, pd.NA]
    assert bad.tolist() == [False] * 7 + [True]
    assert fold_word("  Opted-In ") == "opted in" and fold_word("Kyllä") == "kylla" and fold_word("ø") == "o"


def test_the_word_table_is_data_and_consistent() -> None:
    assert YES_NO_WORDS_FILE.is_file() and YES_NO_WORDS_FILE.parent.name == "reference"
    assert not (TRUE_WORDS & FALSE_WORDS)
    # Callers matching exact lower-case text (the connectors' dead-letter replays) still find the old words.
    assert {"true", "t", "yes", "y", "1", "opt-in", "opted in", "opt in", "subscribed"} <= TRUE_WORDS
    assert {"false", "f", "no", "n", "0", "opt-out", "opted out", "opt out", "unsubscribed"} <= FALSE_WORDS
    assert all(fold_word(word) == word for word in YES_NO_WORDS)


def test_a_word_meaning_both_is_refused_with_its_place(tmp_path: Path) -> None:
    table = write(tmp_path, 'languages:\n  en:\n    "true": ["yes"]\n    "false": ["no"]\n'
                  '  xx:\n    "true": ["NO"]\n', name="words.yaml")
    both = r"languages\.xx\.true: 'NO' means True here but False at languages\.en\.false"
    with pytest.raises(ConfigError, match=both):
        _load_yes_no_words(table)


def test_an_unquoted_yaml_boolean_in_the_table_is_refused(tmp_path: Path) -> None:
    table = write(tmp_path, 'languages:\n  en:\n    "true": [yes]\n', name="words.yaml")  # YAML 1.1: yes is True
    with pytest.raises(ConfigError, match=r"languages\.en\.true: needs a list of quoted words"):
        _load_yes_no_words(table)
