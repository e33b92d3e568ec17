"""The Marketo mapping YAML (canonical column → Marketo field) and the conversion of Marketo values.

Split out of `leadflow.connectors.marketo`, which re-exports `MarketoMapping` and `load_mapping`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadflow.pipeline.yamlio import load_yaml, parse_model

__all__ = ["DEFAULT_MAPPING", "FieldRule", "MappedColumn", "MarketoMapping", "convert", "load_mapping",
           "marketo_id", "utc_iso", "whole_number"]

DEFAULT_MAPPING = Path(__file__).resolve().parents[1] / "reference" / "marketo_mapping.yaml"
MappedColumn = Literal[
    "email", "first_name", "last_name", "company", "title", "phone", "country", "state", "city", "postal_code",
    "website", "lead_source", "email_opt_in", "created_at", "updated_at", "owner_id", "status",
]


class FieldRule(BaseModel):
    """One canonical column: the Marketo field it comes `from` and how its value is checked."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from", min_length=1)
    type: Literal["string", "bool", "datetime"] = "string"
    when_true: bool | None = True
    when_false: bool | None = False


class MarketoMapping(BaseModel):
    """The mapping YAML: canonical column → Marketo field rule."""

    model_config = ConfigDict(extra="forbid")

    version: str = "1"
    id_prefix: str = "mkto-"
    fields: dict[MappedColumn, FieldRule]

    @field_validator("fields")
    @classmethod
    def _needs_cursor(cls, value: dict[str, FieldRule]) -> dict[str, FieldRule]:
        if "updated_at" not in value or value["updated_at"].type != "datetime":
            raise ValueError("updated_at must be mapped, with type datetime: it is the pull cursor")
        return value

    def marketo_fields(self) -> list[str]:
        """Marketo fields to request: the mapped ones plus id, createdAt and updatedAt."""
        names = ["id", *(rule.source for rule in self.fields.values()), "createdAt", "updatedAt"]
        return list(dict.fromkeys(names))


def load_mapping(path: Path = DEFAULT_MAPPING) -> MarketoMapping:
    """Load and validate a Marketo mapping YAML; errors name the file and YAML path."""
    return parse_model(MarketoMapping, load_yaml(path), path)


def utc_iso(value: Any) -> str | None:
    """ISO-8601 UTC with `Z`, or None when `value` is not a datetime string."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return None


def whole_number(value: Any) -> int | None:
    """A JSON id or stamp as an int: an int or a digit string, never a bool; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


marketo_id = whole_number
"""A Marketo lead id (`whole_number`)."""


def convert(value: Any, rule: FieldRule) -> tuple[Any, bool]:
    """(converted value or None, whether the value had the type the rule expects)."""
    if rule.type == "string":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return None, False
        return str(value), True
    if rule.type == "bool":
        flag: bool | None = value if isinstance(value, bool) else {"true": True, "false": False}.get(
            str(value).strip().lower()) if isinstance(value, str) else None
        if flag is None:
            return None, False
        return (rule.when_true if flag else rule.when_false), True
    stamp = utc_iso(value)
    return stamp, stamp is not None
