"""The CRM mirror: Accounts, Contacts, unconverted Leads, Users and lead queues kept in the state store, so a run
costs what its new leads cost and not what the org holds.

- **Build** (first run, `leadflow mirror rebuild`, or a mirror last refreshed longer ago than the Recycle Bin keeps
  deletions): a snapshot per object, through Bulk API 2.0 when the org holds `bulk_query_threshold` records or more
  (`connectors.salesforce_mirror.snapshot`); its watermark is the older of the build's start and the newest
  SystemModstamp it saw, so a change made while a bulk job ran is read again by the next refresh.
- **Refresh** (every run): the changes of all five objects since their watermark minus the look-back (index lag and
  records committed out of stamp order), deletions included, in ONE Composite call of QueryAll subrequests (more
  calls only when a change set runs over a page). Rows are upserted page by page; a deletion or a conversion leaves a
  tombstone; re-reading a record already applied is harmless (the upsert is idempotent), which is also how records
  sharing one SystemModstamp across a page boundary are never lost: the next read starts at that stamp again.
- **Keys**: matching and duplicate keys (`leadflow.identity.prepared`) are computed for the changed records only and
  stored beside them; all rows are re-keyed locally when the key definitions change (`keys_fingerprint`).
- **Load** (`load_mirror`): the live rows as the enrich stage's reference frames and routing's owner directory. A
  process keeps its copy and catches up by reading only rows changed since (`seq`), so a long-running worker pays for
  the whole mirror once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd

from leadflow.connectors.salesforce_frames import iso_utc
from leadflow.connectors.salesforce_mirror import MIRROR_OBJECTS, RECYCLE_BIN_DAYS, changes, count, snapshot
from leadflow.identity.enrichment import ACCOUNT_COLUMNS, EXISTING_COLUMNS
from leadflow.identity.prepared import ACCOUNT_KEY_COLUMNS, EXISTING_KEY_COLUMNS, keys_fingerprint
from leadflow.identity.prepared import prepare_accounts, prepare_existing
from leadflow.pipeline.schema import parse_number
from leadflow.routing.ownership import OwnerDirectory

log = logging.getLogger(__name__)

MIRRORED: Final[tuple[str, ...]] = tuple(MIRROR_OBJECTS)
"""Account, Contact, Lead, User, QueueSobject."""
KEYED: Final[frozenset[str]] = frozenset({"Account", "Contact", "Lead"})


# -------------------------------------------------------------------------------------------- records → rows


def _texts(records: list[dict[str, Any]], name: str) -> pd.Series:
    return pd.Series([r.get(name) for r in records], dtype=object).astype("string")


def _flags(records: list[dict[str, Any]], name: str) -> pd.Series:
    values = [r.get(name) for r in records]
    return pd.Series([v is True or (isinstance(v, str) and v.lower() == "true") for v in values], dtype=bool)


def _parent_texts(records: list[dict[str, Any]], relation: str, name: str) -> pd.Series:
    """A parent's field read through a lookup: nested in REST (`{"Queue": {"Name": ...}}`, null when the lookup is
    empty), a `Queue.Name` column in Bulk CSV."""
    def value(record: dict[str, Any]) -> Any:
        if f"{relation}.{name}" in record:
            return record[f"{relation}.{name}"]
        parent = record.get(relation)
        return parent.get(name) if isinstance(parent, dict) else None

    return pd.Series([value(r) for r in records], dtype=object).astype("string")


def _stamps(records: list[dict[str, Any]]) -> pd.Series:
    return pd.to_datetime(pd.Series([iso_utc(r.get("SystemModstamp")) for r in records], dtype=object),
                          utc=True, format="ISO8601")


def to_rows(obj: str, records: list[dict[str, Any]]) -> pd.DataFrame:
    """Mirror rows of `obj` from CRM records (REST or Bulk), keys included; `is_deleted` marks records deleted in
    the CRM and, for Leads, converted ones (a converted lead is no longer a record a new lead can duplicate)."""
    deleted = _flags(records, "IsDeleted")
    if obj == "Account":
        from leadflow.stages.standardize import country_code_of

        countries = _texts(records, "BillingCountry").str.strip()
        codes = {v: country_code_of(v) for v in countries.dropna().unique()}
        frame = pd.DataFrame({
            "account_id": _texts(records, "Id"), "name": _texts(records, "Name"),
            "website": _texts(records, "Website"), "billing_country": _texts(records, "BillingCountry"),
            "country_code": countries.map(codes).astype("string"), "owner_id": _texts(records, "OwnerId"),
            "employees": parse_number(_texts(records, "NumberOfEmployees"), "Int64")[0],
            "annual_revenue": parse_number(_texts(records, "AnnualRevenue"), "Float64")[0],
            "industry": _texts(records, "Industry"), "last_activity_at": _texts(records, "LastActivityDate"),
        })
        frame = prepare_accounts(frame)
    elif obj in ("Contact", "Lead"):
        email = _texts(records, "Email").str.strip().str.lower()
        frame = pd.DataFrame({
            "record_id": _texts(records, "Id"), "object": obj, "email": email.mask(email == ""),
            "first_name": _texts(records, "FirstName"), "last_name": _texts(records, "LastName"),
            "company": _texts(records, "Company") if obj == "Lead" else pd.Series(pd.NA, index=email.index,
                                                                                 dtype="string"),
            "account_id": _texts(records, "AccountId") if obj == "Contact" else pd.Series(
                pd.NA, index=email.index, dtype="string"),
        })
        frame = prepare_existing(frame)
        if obj == "Lead":
            deleted |= _flags(records, "IsConverted")
    elif obj == "User":
        frame = pd.DataFrame({"record_id": _texts(records, "Id"), "owner_id": _texts(records, "Id"),
                              "is_active": _flags(records, "IsActive"), "name": _texts(records, "Name")})
    else:
        frame = pd.DataFrame({"record_id": _texts(records, "Id"), "owner_id": _texts(records, "QueueId"),
                              "name": _parent_texts(records, "Queue", "Name")})
    frame["modstamp"] = _stamps(records) if records else pd.Series(dtype="datetime64[ns, UTC]")
    frame["is_deleted"] = deleted.to_numpy(dtype=bool)
    return frame


# -------------------------------------------------------------------------------------------- build and refresh


@dataclass
class ObjectReport:
    """What one refresh did to one object."""

    method: str
    """"bulk" / "rest" (a build), "incremental", "reread" or "rekeyed"."""
    changed: int = 0
    deleted: int = 0
    rows: int | None = None
    reason: str | None = None


def refresh_mirror(connector: Any, store: Any, *, now: datetime | None = None, lookback: timedelta | None = None,
                   rebuild: bool = False, objects: Iterable[str] = MIRRORED) -> dict[str, ObjectReport]:
    """Bring the mirror of `objects` up to date with the CRM: build what is missing, stale past the Recycle Bin's
    retention or asked for (`rebuild`), then read every other object's changes in one Composite call."""
    now = now or datetime.now(UTC)
    lookback = lookback if lookback is not None else getattr(connector, "lookback", timedelta(minutes=5))
    names = list(objects)
    state = store.mirror_state()
    fingerprint = keys_fingerprint()
    report: dict[str, ObjectReport] = {}
    purged_before = now - timedelta(days=RECYCLE_BIN_DAYS)
    for obj in names:
        why = ("asked" if rebuild else "no mirror yet" if obj not in state else
               f"last refreshed {state[obj]['refreshed_at']:%Y-%m-%d}, before the Recycle Bin's {RECYCLE_BIN_DAYS} "
               "days: deletions since may be purged" if state[obj]["refreshed_at"] < purged_before else None)
        if why is not None:
            report[obj] = _build(connector, store, obj, now, fingerprint)
            report[obj].reason = why
            log.info("CRM mirror: built %s (%s) by %s: %s rows", obj, why, report[obj].method, report[obj].rows)
    rest = [o for o in names if o not in report]
    for obj in rest:
        if obj in KEYED and state[obj].get("keys") != fingerprint:
            _rekey(store, obj, now, fingerprint)
    since = {o: (None if state[o]["watermark"] is None else state[o]["watermark"] - lookback) for o in rest}
    pages = changes(connector, since) if since else {}
    for obj in rest:
        if MIRROR_OBJECTS[obj].deletions == "reread":
            report[obj] = _apply_reread(store, obj, [r for page in pages[obj] for r in page], now)
        else:
            report[obj] = _apply_changes(store, obj, pages[obj], now)
    return report


def _build(connector: Any, store: Any, obj: str, now: datetime, fingerprint: str) -> ObjectReport:
    spec = MIRROR_OBJECTS[obj]
    bulk = spec.deletions != "reread" and count(connector, spec) >= getattr(connector, "bulk_query_threshold", 10_000)
    frames = [to_rows(obj, page) for page in snapshot(connector, spec, bulk=bulk) if page]
    frame = pd.concat(frames, ignore_index=True) if frames else to_rows(obj, [])
    frame = frame[~frame["is_deleted"].to_numpy(dtype=bool)]  # a build keeps live (and unconverted) records only
    newest = frame["modstamp"].max() if len(frame) else None
    newest = None if newest is None or pd.isna(newest) else newest.to_pydatetime()
    watermark = min(now, newest) if newest is not None else None
    store.replace_mirror(obj, frame, method="bulk" if bulk else "rest", watermark=watermark, last_change_at=newest,
                         now=now, keys=fingerprint if obj in KEYED else None)
    return ObjectReport("bulk" if bulk else "rest", changed=len(frame), rows=len(frame))


def _apply_changes(store: Any, obj: str, pages: Iterator[list[dict[str, Any]]], now: datetime) -> ObjectReport:
    out = ObjectReport("incremental")
    applied = False
    for page in pages:
        if not page:
            continue
        frame = to_rows(obj, page)
        newest = frame["modstamp"].max()
        newest = None if pd.isna(newest) else newest.to_pydatetime()
        # Page by page: what is applied is kept, and the next read starts at this page's newest stamp (minus the
        # look-back) whatever happens to the pages after it.
        store.apply_mirror_changes(obj, frame, watermark=newest, last_change_at=newest, now=now)
        out.changed += int((~frame["is_deleted"]).sum())
        out.deleted += int(frame["is_deleted"].sum())
        applied = True
    if not applied:
        store.apply_mirror_changes(obj, to_rows(obj, []), watermark=None, last_change_at=None, now=now)
    return out


def _apply_reread(store: Any, obj: str, records: list[dict[str, Any]], now: datetime) -> ObjectReport:
    fresh = to_rows(obj, records)
    held = store.mirror_rows(obj)
    def rows_of(frame: pd.DataFrame) -> set[tuple[str, ...]]:  # a renamed queue is a change too
        names = frame["name"] if "name" in frame else pd.Series(None, index=frame.index, dtype="string")
        return set(zip(frame["record_id"].astype(str), frame["owner_id"].astype(str),
                       names.astype("string").fillna(""), strict=True))

    if rows_of(fresh) == rows_of(held):
        store.apply_mirror_changes(obj, fresh.iloc[:0], watermark=None, last_change_at=None, now=now)
        return ObjectReport("reread")
    gone = held[~held["record_id"].isin(fresh["record_id"])].assign(is_deleted=True)
    frame = pd.concat([fresh, gone[[c for c in fresh.columns if c in gone.columns]]], ignore_index=True)
    newest = fresh["modstamp"].max() if len(fresh) else None
    newest = None if newest is None or pd.isna(newest) else newest.to_pydatetime()
    store.apply_mirror_changes(obj, frame, watermark=newest, last_change_at=newest, now=now)
    return ObjectReport("reread", changed=len(fresh), deleted=len(gone))


def _rekey(store: Any, obj: str, now: datetime, fingerprint: str) -> None:
    """Recompute the keys of every live row of `obj` (the key definitions changed since they were stored)."""
    rows = store.mirror_rows(obj)
    prepared = prepare_accounts(rows) if obj == "Account" else prepare_existing(rows)
    store.apply_mirror_changes(obj, prepared.assign(is_deleted=False), watermark=None, last_change_at=None, now=now,
                               keys=fingerprint)
    log.info("CRM mirror: re-keyed %d %s rows (key definitions changed)", len(rows), obj)


# -------------------------------------------------------------------------------------------- load


@dataclass(frozen=True)
class MirrorView:
    """The mirror as the stages use it."""

    accounts: pd.DataFrame
    """ACCOUNT_COLUMNS + ACCOUNT_KEY_COLUMNS."""
    existing: pd.DataFrame
    """EXISTING_COLUMNS + EXISTING_KEY_COLUMNS (Contacts' company is their account's name)."""
    owners: OwnerDirectory


@dataclass
class _Held:
    generation: str
    seq: int
    rows: pd.DataFrame


@dataclass
class _ProcessCopy:
    objects: dict[str, _Held] = field(default_factory=dict)
    view: MirrorView | None = None
    view_key: tuple[Any, ...] = ()


_COPIES: dict[str, _ProcessCopy] = {}
"""This process's copy of each store's mirror (by store URL)."""


def load_mirror(store: Any, *, integration_user: str | None = None) -> MirrorView:
    """The live mirror: reference frames for matching and duplicates, and the owner directory. Reads only the rows
    changed since this process last loaded it (all rows the first time, or after a rebuild)."""
    state = store.mirror_state()
    copy = _COPIES.setdefault(str(store.engine.url), _ProcessCopy())
    for obj in MIRRORED:
        copy.objects[obj] = _caught_up(store, obj, state.get(obj), copy.objects.get(obj))
    key = tuple((o, copy.objects[o].generation, copy.objects[o].seq) for o in MIRRORED) + (integration_user,)
    if copy.view is None or copy.view_key != key:
        copy.view, copy.view_key = _view(copy.objects, integration_user), key
    return copy.view


def _caught_up(store: Any, obj: str, state: dict[str, Any] | None, held: _Held | None) -> _Held:
    if state is None:
        return _Held("", 0, store.mirror_rows(obj).iloc[:0])
    if held is not None and held.generation == state["generation"] and held.seq == state["seq"]:
        return held
    if held is None or held.generation != state["generation"] or held.seq > state["seq"]:
        snapshot = store.mirror_snapshot(obj)
        if snapshot is None or snapshot[0] != state["generation"] or snapshot[1] > state["seq"]:
            return _Held(state["generation"], int(state["seq"]), store.mirror_rows(obj))
        held = _Held(snapshot[0], snapshot[1], snapshot[2])
        if held.seq == state["seq"]:
            return held
    delta = store.mirror_rows(obj, after_seq=held.seq)
    key = "account_id" if obj == "Account" else "record_id"
    kept = held.rows[~held.rows[key].isin(delta[key])]
    live = delta[~delta["is_deleted"].astype(bool).to_numpy()]
    rows = pd.concat([kept, live], ignore_index=True) if len(live) else kept.reset_index(drop=True)
    return _Held(state["generation"], int(state["seq"]), rows)


def _strings(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    return frame.astype({c: "string" for c in columns if c in frame.columns})


def _view(objects: dict[str, _Held], integration_user: str | None) -> MirrorView:
    raw = objects["Account"].rows
    accounts = _strings(raw, ["account_id", "name", "website", "owner_id", "industry", "last_activity_at",
                              "country_code", *ACCOUNT_KEY_COLUMNS])
    accounts = accounts.assign(employees=pd.array(raw["employees"], dtype="Int64"),
                               annual_revenue=pd.array(raw["annual_revenue"], dtype="Float64"))
    accounts = accounts[[*ACCOUNT_COLUMNS, *ACCOUNT_KEY_COLUMNS]].reset_index(drop=True)
    contacts = objects["Contact"].rows
    # One look-up of each contact's account gives both its company and that company's key.
    at = pd.Index(accounts["account_id"]).get_indexer(contacts["account_id"])  # -1: no such account
    contacts = contacts.assign(company=accounts["name"].array.take(at, allow_fill=True),
                               company_key=accounts["name_key"].array.take(at, allow_fill=True))
    existing = pd.concat([contacts, objects["Lead"].rows], ignore_index=True)
    existing = _strings(existing, [*EXISTING_COLUMNS, *EXISTING_KEY_COLUMNS])[[*EXISTING_COLUMNS,
                                                                              *EXISTING_KEY_COLUMNS]]
    users = objects["User"].rows
    active = users["is_active"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    owners = OwnerDirectory(
        active=frozenset(users.loc[active, "owner_id"].dropna().astype(str)),
        inactive=frozenset(users.loc[~active, "owner_id"].dropna().astype(str)),
        queues=frozenset(objects["QueueSobject"].rows["owner_id"].dropna().astype(str)),
        integration_users=frozenset({integration_user} if integration_user else set()),
    )
    return MirrorView(accounts, existing, owners)


SNAPSHOT_AFTER_ROWS: Final[int] = 5_000
"""A new snapshot once this many rows of an object changed since its last one (or 2% of its rows, if more)."""


def save_snapshots(store: Any, *, force: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Write a new snapshot of each object whose rows changed enough since its last one (all with `force`), from
    this process's caught-up copy (call `load_mirror` first); returns object → rows snapshotted."""
    copy = _COPIES.get(str(store.engine.url))
    if copy is None:
        return {}
    done: dict[str, int] = {}
    for obj, held in copy.objects.items():
        if not held.generation:
            continue
        last = store.mirror_snapshot_seq(obj)
        if last is not None and last[0] == held.generation and last[1] == held.seq:
            continue
        behind = None if last is None or last[0] != held.generation else store.mirror_changed_since(obj, last[1])
        if force or behind is None or behind >= max(SNAPSHOT_AFTER_ROWS, len(held.rows) // 50):
            store.save_mirror_snapshot(obj, held.generation, held.seq, held.rows, now or datetime.now(UTC))
            done[obj] = len(held.rows)
    return done


def refresh_and_load(connector: Any, store: Any, *, rebuild: bool = False,
                     objects: Iterable[str] = MIRRORED) -> tuple[dict[str, ObjectReport], MirrorView]:
    """Refresh the mirror, load it, and snapshot the objects that changed enough: what a run does first."""
    report = refresh_mirror(connector, store, rebuild=rebuild, objects=objects)
    view = load_mirror(store, integration_user=getattr(connector, "user_id", None))
    save_snapshots(store, force=any(r.method in ("bulk", "rest", "rekeyed") for r in report.values()))
    return report, view


def forget_process_copies() -> None:
    """Drop this process's copies (tests, `leadflow mirror rebuild`)."""
    _COPIES.clear()


# -------------------------------------------------------------------------------------------- status


STATUS_COLUMNS: Final = ("object", "rows", "method", "built_at", "refreshed_at", "last_change_at", "lag_seconds",
                         "note")


def mirror_status(store: Any, now: datetime | None = None) -> pd.DataFrame:
    """Per mirrored object: live rows, how it was built and when, the last refresh, the newest change seen, the lag
    (seconds since the last refresh) and a note when it needs a build."""
    now = now or datetime.now(UTC)
    state = store.mirror_state()
    rows = []
    for obj in MIRRORED:
        s = state.get(obj)
        if s is None:
            rows.append({"object": obj, "rows": 0, "method": None, "built_at": None, "refreshed_at": None,
                         "last_change_at": None, "lag_seconds": None, "note": "not built yet: the next run builds it"})
            continue
        stale = s["refreshed_at"] < now - timedelta(days=RECYCLE_BIN_DAYS)
        rows.append({"object": obj, "rows": int(s["rows"]), "method": s["method"], "built_at": s["built_at"],
                     "refreshed_at": s["refreshed_at"], "last_change_at": s["last_change_at"],
                     "lag_seconds": (now - s["refreshed_at"]).total_seconds(),
                     "note": "older than the Recycle Bin keeps deletions: the next run rebuilds it" if stale else None})
    return pd.DataFrame(rows, columns=list(STATUS_COLUMNS))
