"""What a micro-batch of inbox notifications becomes before and after `crm_sync`'s page path: pure helpers of the
processor (`leadflow.intake.processor`) and of the `intake_batch` flow (flows/intake.py).

- `BatchOutcome`: per claimed notification, done (with a note when there was nothing to process), to retry, failed
  for good; and the systems another run was writing to (their notifications are left pending).
- `crm_groups`: the claimed rows by the CRM/MAP that is read and written for them (a web lead is created in, then
  read from and written to, the CRM: `WEB_CRM`), in a fixed order.
- `web_lead_fields`: a web lead's payload (canonical input columns) as the Salesforce Lead fields it is created with.
- `is_transient`: whether an error is worth a retry (I/O, a stopped source, a lost lease) or final (a bug, bad data,
  a refused write that needs a person).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

CRM_ORDER: Final[tuple[str, ...]] = ("salesforce", "hubspot", "marketo")
WEB_CRM: Final[str] = "salesforce"
"""The CRM a web lead is created in (Web-to-Lead's target: Salesforce Help, "Capture Leads from Your Website"
https://help.salesforce.com/s/articleView?id=sf.setting_up_web-to-lead.htm — a form submission becomes a Lead record,
which then follows the org's assignment); `processing.web_crm` in the intake config."""
WEB_CREATE_COLUMNS: Final[frozenset[str]] = frozenset({
    "email", "first_name", "last_name", "company", "title", "phone", "country", "state", "city", "postal_code",
    "website", "lead_source", "status", "employees", "annual_revenue", "industry",
})
"""The canonical columns a web lead's Lead is created with: what a form collects. Its owner is routing's to decide;
its stamps and conversion are the CRM's."""


@dataclass
class BatchOutcome:
    """What became of each claimed notification (by inbox id)."""

    done: dict[int, str | None] = field(default_factory=dict)
    """Processed (None) or settled with a note: nothing to process (record deleted, not a Lead)."""
    retry: dict[int, str] = field(default_factory=dict)
    """A transient error: back to pending for another attempt, with the reason."""
    failed: dict[int, str] = field(default_factory=dict)
    """A permanent error, with the reason: needs a person."""
    busy: dict[str, str] = field(default_factory=dict)
    """System → who holds its writer lease: its notifications are released untouched (`released`)."""
    released: dict[int, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    """The batch run's summary (run id, per system report)."""

    def settle(self, ids: Iterable[int], note: str | None = None) -> None:
        self.done.update(dict.fromkeys((int(i) for i in ids), note))

    def fail(self, ids: Iterable[int], error: BaseException | str) -> None:
        """Mark `ids` for a retry or as failed, as the error deserves."""
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        target = self.retry if not isinstance(error, str) and is_transient(error) else self.failed
        target.update(dict.fromkeys((int(i) for i in ids), reason[:2000]))

    def unsettled(self, ids: Iterable[int]) -> list[int]:
        """Those of `ids` the outcome says nothing about."""
        known = self.done.keys() | self.retry.keys() | self.failed.keys() | self.released.keys()
        return [int(i) for i in ids if int(i) not in known]


def crm_groups(rows: pd.DataFrame, web_crm: str = WEB_CRM) -> dict[str, pd.DataFrame]:
    """The claimed rows by the system read and written for them, in CRM_ORDER: web rows join `web_crm`'s group."""
    if rows.empty:
        return {}
    target = rows["system"].astype(str).replace({"web": web_crm})
    return {system: rows[target.to_numpy() == system] for system in CRM_ORDER if (target == system).any()}


def web_lead_fields(payload: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """The Lead fields (`columns`: canonical column → field name, the mapping's writable Lead fields) a web lead is
    created with: the form's values of WEB_CREATE_COLUMNS, empty ones left out. Salesforce requires LastName and
    Company on a Lead (Object Reference "Lead": both "Required"); a form without them gets "[not provided]", the
    placeholder Web-to-Lead itself uses."""
    fields = {columns[c]: v for c, v in payload.items()
              if c in WEB_CREATE_COLUMNS and c in columns and v is not None and str(v).strip() != ""}
    for column in ("last_name", "company"):
        if column in columns:
            fields.setdefault(columns[column], "[not provided]")
    return fields


def soql_text(value: str) -> str:
    """A SOQL string literal: backslashes and single quotes escaped (SOQL and SOSL Reference, "Quoted String Escape
    Sequences": https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_transient(error: BaseException) -> bool:
    """Worth another attempt later: I/O and database errors, a source that stopped (quota, budget), a lease lost
    while stalled, a 5xx/429 that outlived the connector's own retries. Everything else (a refused write, a config
    or data problem, a bug) fails the notification with its reason."""
    import requests
    from sqlalchemy.exc import OperationalError

    from leadflow.connectors.base import SourceStopped
    from leadflow.store.leases import LeaseLost

    if isinstance(error, (SourceStopped, LeaseLost, OSError, OperationalError, requests.RequestException)):
        return True
    status = getattr(error, "status", None)
    if type(error).__name__.startswith(("Hubspot", "Marketo", "Salesforce")):
        return status is None or status == 429 or status >= 500
    return False
