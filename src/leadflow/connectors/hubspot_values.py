"""HubSpot connector helpers: epoch-millisecond stamps, reading and writing property values, batch results.

Pure functions over HubSpot's JSON shapes (no I/O), split out of `leadflow.connectors.hubspot`, and `FieldMap`
(how one property's value is read and written; re-exported there).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import pandas as pd
import requests
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadflow.pipeline.schema import TIMESTAMP_MAX, TIMESTAMP_MIN, TRUE_WORDS

CURSOR_PROPERTY: Final[str] = "lastmodifieddate"
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final[timedelta] = timedelta(milliseconds=1)


class FieldMap(BaseModel):
    """One canonical column read from (and written to) one contact property."""

    model_config = ConfigDict(extra="forbid")

    property: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["string", "enumeration", "bool", "datetime"] = "string"
    options: list[str] | None = None
    invert: bool = False
    writable: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> FieldMap:
        if self.type == "enumeration" and not self.options:
            raise ValueError("an enumeration needs its `options`")
        if self.type != "enumeration" and self.options is not None:
            raise ValueError("`options` only apply to type: enumeration")
        if self.invert and self.type != "bool":
            raise ValueError("`invert` only applies to type: bool")
        return self


def _to_ms(moment: datetime) -> int:
    """Epoch milliseconds (a naive datetime is UTC); integer arithmetic so no millisecond is lost to rounding."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


_MIN_MS: Final[int] = int(TIMESTAMP_MIN.timestamp()) * 1000
_MAX_MS: Final[int] = int(TIMESTAMP_MAX.timestamp()) * 1000 + 999


def _iso(ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_ms(value: Any) -> int | None:
    """A HubSpot datetime value (ISO-8601 or epoch ms, as a string) in epoch ms, or None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _to_ms(parsed)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _read_value(spec: FieldMap, value: Any) -> tuple[Any, str | None]:
    """(canonical value or None, problem or None) for one property value as HubSpot sent it."""
    if value is None or value == "":
        return None, None  # unset, or cleared: HubSpot sends null or ""
    if spec.type == "bool":
        text = str(value).strip().lower() if isinstance(value, str | bool) else None
        if text not in {"true", "false"}:
            return None, f"expected true/false, got {_show(value)}"
        return (text == "true") != spec.invert, None
    if isinstance(value, dict | list) or not isinstance(value, str | int | float):
        return None, f"expected a string, got {type(value).__name__}"
    if spec.type == "datetime":
        stamp = _parse_ms(value) if not isinstance(value, float) else None
        if stamp is None:
            return None, f"not a datetime: {_show(value)}"
        if not _MIN_MS <= stamp <= _MAX_MS:  # beyond what the stages hold (and datetime's year 9999: OverflowError)
            return None, f"datetime outside {TIMESTAMP_MIN.year}-{TIMESTAMP_MAX.year}: {_show(value)}"
        return _iso(stamp), None
    problem = None if isinstance(value, str) else f"expected a string, got {type(value).__name__}"
    text = str(value)
    if spec.type == "enumeration" and spec.options is not None and text not in spec.options:
        problem = f"{_show(value)} is not one of the property's options"
    return text, problem


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _id_of(item: Any) -> str:
    """A result's contact id as text ("" when it has none)."""
    value = item.get("id") if isinstance(item, dict) else None
    return str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _stamp_of(item: Any, pick: Callable[[Iterable[int]], int]) -> int | None:
    """A result's modification stamp for bounding a window: `lastmodifieddate` and `updatedAt` should agree; if
    they do not, `pick` the safe one (min for a lower bound, max for an upper) so no contact falls outside."""
    if not isinstance(item, dict):
        return None
    props = item.get("properties")
    candidates = [_parse_ms(props.get(CURSOR_PROPERTY)) if isinstance(props, dict) else None,
                  _parse_ms(item.get("updatedAt"))]
    known = [c for c in candidates if c is not None]
    return pick(known) if known else None


def _write_value(spec: FieldMap, value: Any) -> str:
    if spec.type == "bool":
        # Dead letters come back as text: "False" must stay False, not become a truthy string.
        flag = str(value).strip().lower() in TRUE_WORDS if isinstance(value, str) else bool(value)
        return "true" if flag != spec.invert else "false"
    if spec.type == "datetime" and isinstance(value, datetime):
        return _iso(_to_ms(value))
    return str(value)


def _show(value: Any) -> str:
    return repr(value)[:60]


def _failure(record_id: str, code: str, message: str, retryable: bool, payload: dict[str, Any]) -> dict[str, Any]:
    return {"record_id": record_id, "error_code": code, "message": message[:500], "retryable": retryable,
            "payload": json.dumps(payload, sort_keys=True)}


def _failures_frame(failures: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(failures, columns=["record_id", "error_code", "message", "retryable", "payload"])


def _collect(payload: Any, batch: list[dict[str, Any]], written: list[str], failures: list[dict[str, Any]]) -> None:
    """Sort a batch/update response (200 or 207 multi-status) into written ids and per-record failures."""
    sent = {item["id"]: item["properties"] for item in batch}
    done: set[str] = set()
    body = payload if isinstance(payload, dict) else {}
    for item in body.get("results") or []:
        record_id = str(item.get("id")) if isinstance(item, dict) else ""
        if record_id in sent and record_id not in done:
            done.add(record_id)
            written.append(record_id)
    for error in body.get("errors") or []:
        if not isinstance(error, dict):
            continue
        context = error.get("context") or {}
        ids = [str(i) for i in (context.get("id") or []) + (context.get("ids") or [])]
        sub = error.get("errors") or []
        code = next((e.get("code") for e in sub if isinstance(e, dict) and e.get("code")), None)
        code = code or error.get("category") or "ERROR"
        message = "; ".join(str(e.get("message")) for e in sub if isinstance(e, dict)) or str(error.get("message"))
        for record_id in ids:
            if record_id in sent and record_id not in done:
                done.add(record_id)
                failures.append(_failure(record_id, code, message, False, sent[record_id]))
    for record_id, properties in sent.items():
        if record_id not in done:
            failures.append(_failure(record_id, "NO_RESULT", "HubSpot reported neither success nor failure", True,
                                     properties))
