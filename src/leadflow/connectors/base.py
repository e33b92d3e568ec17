"""Small protocols every connector implements, and the shared vocabulary of pulls, writes and budgets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

import pandas as pd

from leadflow.pipeline.errors import LeadflowError

CURSOR_COLUMN = "source_modstamp"
"""Every pulled page carries the source system's modification stamp (ISO-8601 UTC) in this column."""


class SourceStopped(LeadflowError):
    """The source refused to go on (daily quota, REQUEST_LIMIT_EXCEEDED, spent budget): stop cleanly, keep state."""

    def __init__(self, system: str, reason: str) -> None:
        self.system, self.reason = system, reason
        super().__init__(f"{system}: stopped: {reason}")


class BudgetExhausted(SourceStopped):
    """leadflow's own per-system API budget is spent."""


@dataclass
class ApiBudget:
    """At most `limit` API calls for one run; `spend` raises BudgetExhausted rather than exceed it."""

    system: str
    limit: int | None = None
    used: int = 0

    def spend(self, calls: int = 1) -> None:
        if self.limit is not None and self.used + calls > self.limit:
            raise BudgetExhausted(self.system, f"API budget of {self.limit} calls for this run is spent")
        self.used += calls

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else self.limit - self.used


class ExportGuardError(LeadflowError):
    """A write would bring the records this run changes above the allowed share of the records it pulled."""

    def __init__(self, system: str, records: int, pulled: int, share: float, *, page: int | None = None,
                 writing: int | None = None) -> None:
        self.system, self.records, self.pulled, self.share, self.page = system, records, pulled, share, page
        where = f" at page {page}" if page else ""
        this = f" (this write: {writing})" if writing is not None else ""
        super().__init__(
            f"{system}: export guard refused the write{where}: {records} records changed in this run{this} against "
            f"{pulled} pulled so far, more than {share:.0%} and above the guard floor; if intended (e.g. an initial "
            "load), pass --override-export-guard (override_export_guard=True)"
        )


@dataclass
class ExportGuard:
    """Refuses a write that would bring the records changed in this run above `max_change_share` of the records
    pulled so far in it.

    The guard decides on the whole run, not page by page: before every write it adds that write's records to those
    already changed and compares the total with everything pulled so far, so a run whose first page changes 40% and
    the rest 90% is stopped at the page that takes it over the limit. The `floor` is a one-time allowance for the
    run (a tiny system, a first small page). Writes made with `override` (the CLI's override, leads written the
    first time, dead-letter replays: changes approved once already) are neither checked nor counted.
    """

    system: str
    max_change_share: float = 0.5
    floor: int = 100
    pulled: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    pages: int = 0

    def saw(self, record_ids: Iterable[object]) -> None:
        """Count a page of records pulled in this run."""
        self.pages += 1
        self.pulled.update(str(r) for r in record_ids if not pd.isna(r))

    def check(self, record_ids: Iterable[object], *, override: bool = False) -> None:
        """Raise ExportGuardError unless writing `record_ids` keeps the run within the guard (or is overridden);
        on success they count as changed."""
        if override:
            return
        ids = {str(r) for r in record_ids if not pd.isna(r)}
        total = self.changed | ids
        if len(total) > max(self.max_change_share * len(self.pulled), self.floor):
            raise ExportGuardError(self.system, len(total), len(self.pulled), self.max_change_share,
                                   page=self.pages or None, writing=len(ids))
        self.changed = total


@runtime_checkable
class LeadSource(Protocol):
    """A system leads are pulled from, incrementally, in order of modification."""

    system: str

    def pull(self, since: datetime | None, until: datetime | None = None) -> Iterator[pd.DataFrame]:
        """Yield pages of leads in canonical columns plus `source_modstamp`, ordered by it, modified in [since, until)."""
        ...


REFUSED_COLUMNS: Final = ("record_id", "field", "value", "reason", "message")
"""A write result's `refused` rows: one per value left out of the request."""


@dataclass
class WriteResult:
    """What a write-back did: ids written, per-record failures, and calls spent."""

    written: list[str] = field(default_factory=list)
    failures: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["record_id", "error_code", "message", "retryable", "payload"])
    )
    api_calls: int = 0
    dry_run: bool = False
    refused: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REFUSED_COLUMNS)))
    """Values left out because the target would not take them (record_id, field, value, reason, message)."""
    truncated: int = 0
    """Text values cut (at a word boundary, with a marker) to fit their field."""


@runtime_checkable
class CrmWriter(Protocol):
    """A system that changed fields are written back to."""

    system: str

    @property
    def writable_columns(self) -> tuple[str, ...]:
        """Canonical columns this system has a field for; the write-back diff covers only these."""
        ...

    def write(self, changes: pd.DataFrame, *, dry_run: bool = False, override: bool = False) -> WriteResult:
        """Write `changes` (a `record_id` column plus one column per changed canonical field; NA = unchanged).

        `override` lets a write past the connector's export guard."""
        ...
