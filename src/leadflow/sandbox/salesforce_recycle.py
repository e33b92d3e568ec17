"""The sandbox org's Recycle Bin and lead conversion: what deleting, undeleting, purging and converting do to records.

Mixed into `salesforce_org.Org` (which holds `objects`, `recycle_bin`, the lock and `put`). Sources, cited where each
rule is modelled:
- Deleted records go to the Recycle Bin for 15 days, then are permanently deleted: SOAP API Developer Guide,
  "emptyRecycleBin()" ("The Recycle Bin lets you view and restore recently deleted records for 15 days before
  they're permanently deleted", https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/
  sforce_api_calls_emptyrecyclebin.htm) and Apex Developer Guide, "Restoring Deleted Records" ("the records are
  placed in the Recycle Bin for 15 days, after which they are permanently deleted").
- In the bin a record has IsDeleted = true (Object Reference, "System Fields": https://developer.salesforce.com/docs/
  atlas.en-us.api.meta/api/system_fields.htm); Query filters it out, QueryAll returns it until it is purged
  (REST API Developer Guide, "QueryAll": https://developer.salesforce.com/docs/platform/api-rest/guide/
  resources-queryall.html: "After these records are permanently removed from the recycle bin, you can no longer
  query them").
- "Since a delete call cascade-deletes child records, an undelete call will undelete the cascade-deleted records. For
  example, deleting an account will delete all the contacts associated with that account" (SOAP API, "undelete()":
  https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_undelete.htm).
- A deletion is a change: SystemModstamp is the "Date and time when a user or automated process ... last modified
  this record" (Object Reference, "System Fields"); the deleted record carries the deletion time in SystemModstamp and
  LastModifiedDate, which is how an incremental QueryAll reader sees it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from leadflow.sandbox.salesforce_index import RecordTable
from leadflow.sandbox.salesforce_schema import PREFIX, RECYCLABLE, SETUP_OBJECTS
from leadflow.sandbox.salesforce_soql import sf_datetime

RECYCLE_BIN_DAYS: Final = 15
"""Days a deleted record stays in the Recycle Bin before Salesforce purges it (see the module docstring)."""
CONVERTED_STATUS: Final = "Closed - Converted"


def empty_bin() -> dict[str, RecordTable]:
    return {obj: RecordTable() for obj in sorted(RECYCLABLE)}


class RecycleBin:
    """Deleting, undeleting, purging and converting, for `Org` (see the module docstring for the rules)."""

    objects: dict[str, dict[str, dict[str, Any]]]
    recycle_bin: dict[str, RecordTable]
    lock: threading.RLock
    integration_user_id: str

    if TYPE_CHECKING:  # what Org provides
        def touch(self) -> None: ...

        def put(self, obj: str, values: dict[str, Any], record_id: str | None = None, *,
                now: datetime | None = None) -> str: ...

    def is_deleted(self, obj: str, record_id: str) -> bool:
        """True when the record sits in the Recycle Bin (deleted, not yet purged)."""
        return record_id in self.recycle_bin.get(obj, {})

    def delete(self, obj: str, record_id: str, *, now: datetime | None = None) -> bool:
        """Delete a live record; False when there is none. Accounts, contacts and leads go to the Recycle Bin with
        IsDeleted true and their stamps moved to the deletion time (an account takes its contacts with it); other
        objects (queues, permission set rows) are removed outright."""
        with self.lock:
            record = self.objects[obj].pop(record_id, None)
            if record is None:
                return False
            if obj in SETUP_OBJECTS:
                self.touch()
            if obj in RECYCLABLE:
                stamp = sf_datetime(now or datetime.now(UTC))
                self._bin(obj, record_id, record, stamp)
                if obj == "Account":
                    contacts = self.objects["Contact"]
                    for contact_id in [i for i, c in contacts.items() if c.get("AccountId") == record_id]:
                        self._bin("Contact", contact_id, contacts.pop(contact_id), stamp)
        return True

    def undelete(self, obj: str, record_id: str, *, now: datetime | None = None) -> bool:
        """Restore a record from the Recycle Bin (an account with the contacts its deletion took); False when it is
        not there. Like an edit, undeleting moves the stamps (SOAP API, "undelete()")."""
        with self.lock:
            record = self.recycle_bin.get(obj, {}).pop(record_id, None)
            if record is None:
                return False
            stamp = sf_datetime(now or datetime.now(UTC))
            self._restore(obj, record_id, record, stamp)
            if obj == "Account":
                contacts = self.recycle_bin["Contact"]
                for contact_id in [i for i, c in contacts.items() if c.get("AccountId") == record_id
                                   and c.get("SystemModstamp") == record.get("SystemModstamp")]:
                    self._restore("Contact", contact_id, contacts.pop(contact_id), stamp)
        return True

    def purge_recycle_bin(self, now: datetime | None = None) -> int:
        """Permanently delete what has sat in the Recycle Bin longer than 15 days at `now` (default: the clock).
        Returns how many records went."""
        cutoff = sf_datetime((now or datetime.now(UTC)) - timedelta(days=RECYCLE_BIN_DAYS))
        gone = 0
        with self.lock:
            for table in self.recycle_bin.values():
                expired = [r["Id"] for r in table.window(None, (cutoff,))]
                for record_id in expired:
                    del table[record_id]
                gone += len(expired)
        return gone

    def empty_recycle_bin(self, ids: Iterable[str] | None = None) -> int:
        """Permanently delete the given records from the Recycle Bin (all of them by default), as emptyRecycleBin()
        does. Returns how many records went."""
        with self.lock:
            if ids is None:
                gone = sum(len(t) for t in self.recycle_bin.values())
                for table in self.recycle_bin.values():
                    table.clear()
                return gone
            gone = 0
            for record_id in ids:
                for table in self.recycle_bin.values():
                    if table.pop(record_id, None) is not None:
                        gone += 1
            return gone

    def convert_lead(self, lead_id: str, *, account_id: str | None = None,
                     now: datetime | None = None) -> tuple[str, str]:
        """Convert a live, unconverted lead as convertLead() does: a new account (or `account_id`), a new contact
        under it, and the lead updated to IsConverted, ConvertedDate and the converted status, its stamps moved.
        Returns (account id, contact id). SOAP API, "convertLead()": "Converts a Lead into an Account, Contact, or
        (optionally) an Opportunity" (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/
        sforce_api_calls_convertlead.htm); Change Data Capture Developer Guide, "Change Events for Lead Conversion":
        the lead update carries Status, IsConverted and ConvertedDate (a date, no time)
        (https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/
        cdc_standard_objects_lead_conversion.htm). KeyError when there is no such live lead, ValueError when it is
        converted already (convertLead refuses a converted lead)."""
        when = now or datetime.now(UTC)
        with self.lock:
            lead = self.objects["Lead"].get(lead_id)
            if lead is None:
                raise KeyError(f"no live lead {lead_id}")
            if lead.get("IsConverted"):
                raise ValueError(f"lead {lead_id} is already converted")
            owner = str(lead.get("OwnerId") or "")
            # Records converted from a lead a queue owns go to a user: a queue cannot own accounts or contacts here.
            owner = owner if owner.startswith(PREFIX["User"]) else self.integration_user_id
            if account_id is None:
                account_id = self.put("Account", {
                    "Name": lead.get("Company"), "Website": lead.get("Website"), "BillingCountry": lead.get("Country"),
                    "Industry": lead.get("Industry"), "NumberOfEmployees": lead.get("NumberOfEmployees"),
                    "AnnualRevenue": lead.get("AnnualRevenue"), "OwnerId": owner}, now=when)
            contact_id = self.put("Contact", {
                "FirstName": lead.get("FirstName"), "LastName": lead.get("LastName"), "Email": lead.get("Email"),
                "Title": lead.get("Title"), "Phone": lead.get("Phone"), "AccountId": account_id, "OwnerId": owner,
                "HasOptedOutOfEmail": bool(lead.get("HasOptedOutOfEmail")), "MailingCountry": lead.get("Country")},
                now=when)
            self.put("Lead", {"IsConverted": True, "ConvertedDate": when.date().isoformat(),
                              "Status": CONVERTED_STATUS}, lead_id, now=when)
        return account_id, contact_id

    def _bin(self, obj: str, record_id: str, record: dict[str, Any], stamp: str) -> None:
        self.recycle_bin[obj][record_id] = record | {"IsDeleted": True, "LastModifiedDate": stamp,
                                                     "SystemModstamp": stamp}

    def _restore(self, obj: str, record_id: str, record: dict[str, Any], stamp: str) -> None:
        self.objects[obj][record_id] = record | {"IsDeleted": False, "LastModifiedDate": stamp,
                                                 "SystemModstamp": stamp}
