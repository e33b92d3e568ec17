"""Typed errors. Every message names the file, row, column or YAML path at fault."""

from __future__ import annotations

from typing import Any


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of `exc`'s message (its type's name when it has none), at most `limit` characters: what a check
    or a log shows of an error (a database error goes on with its statement and parameters, leads' e-mails among
    them)."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


class LeadflowError(Exception):
    """Base class: the CLI turns these into a one-line message and a non-zero exit."""

    exit_code: int = 2


class InputError(LeadflowError):
    """A lead file cannot be read as leads."""

    def __init__(self, path: str, message: str, *, row: int | None = None, column: str | None = None) -> None:
        self.path, self.row, self.column = path, row, column
        where = path
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


class ConfigError(LeadflowError):
    """A YAML rules/config file is missing or invalid; `yaml_path` points into the document."""

    def __init__(self, path: str, message: str, *, yaml_path: str | None = None) -> None:
        self.path, self.yaml_path = path, yaml_path
        where = f"{path}: {yaml_path}" if yaml_path else path
        super().__init__(f"{where}: {message}")


class PipelineOrderError(LeadflowError):
    """The stage list is not runnable in the order given."""


class StageContractError(LeadflowError):
    """A stage returned something other than what it declared."""


class DataQualityError(LeadflowError):
    """A batch-level expectation failed; carries the GX validation result (JSON-able dict)."""

    exit_code = 3

    def __init__(self, suite: str, message: str, result: dict[str, Any] | None = None, *,
                 quarantine: Any = None, stage: str | None = None) -> None:
        self.suite, self.result, self.detail = suite, result or {}, message
        self.quarantine, self.stage = quarantine, stage
        """The failing batch's row-level quarantine records (a DataFrame) and its stage, when the gate had them."""
        super().__init__(f"data quality gate {suite!r} failed: {message}")
