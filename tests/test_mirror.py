"""The CRM mirror against the strict Salesforce sandbox: built (REST or Bulk API 2.0), refreshed by what changed in
one Composite call, deletions and conversions included, and always equal to a fresh rebuild."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadflow.connectors.salesforce import SalesforceConnector, SalesforceCredentials, salesforce_connector
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.sandbox.salesforce_soql import sf_datetime
from leadflow.store import StateStore
from leadflow.sync.mirror import MIRRORED, forget_process_copies, load_mirror, mirror_status, refresh_mirror


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSalesforce]:
    # 800 leads, 80 accounts, 600 contacts; 450 contact edits share one SystemModstamp and pages hold 200, so
    # equal stamps span page boundaries.
    with running_salesforce(tmp_path / "sf", leads=800, accounts=80, contacts=600, seed=11, stamp_run=250,
                            page_size=200) as sf:
        spread_stamps(sf)
        yield sf


def spread_stamps(sandbox: RunningSalesforce) -> None:
    """Every record last changed at its own time, ten minutes apart, ending an hour ago (as a real org's history
    is): a refresh's five-minute look-back then re-reads a record or two, not the whole seed."""
    org = sandbox.org
    end = datetime.now(UTC) - timedelta(hours=1)
    with org.lock:
        for obj in ("Account", "Contact", "Lead", "User", "QueueSobject"):
            for k, record_id in enumerate(sorted(org.objects[obj], reverse=True)):
                stamp = sf_datetime(end - timedelta(minutes=10 * k))
                org.objects[obj][record_id] = {**org.objects[obj][record_id], "SystemModstamp": stamp}


@pytest.fixture
def connect(sandbox: RunningSalesforce) -> Callable[..., SalesforceConnector]:
    def make(**options: Any) -> SalesforceConnector:
        creds = SalesforceCredentials(login_url=sandbox.url, client_id=sandbox.client_id,
                                      client_secret=sandbox.client_secret)
        options = {"page_size": 200, "backoff": 0.0, "bulk_wait": 0.0} | options
        return salesforce_connector(creds, session=sandbox.session(), **options)

    return make


@pytest.fixture(autouse=True)
def _fresh_copies() -> Iterator[None]:
    forget_process_copies()
    yield
    forget_process_copies()


def _sorted(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values(key).reset_index(drop=True)


def assert_same_mirror(a: StateStore, b: StateStore) -> None:
    forget_process_copies()
    left, right = load_mirror(a), load_mirror(b)
    pd.testing.assert_frame_equal(_sorted(left.accounts, "account_id"), _sorted(right.accounts, "account_id"))
    pd.testing.assert_frame_equal(_sorted(left.existing, "record_id"), _sorted(right.existing, "record_id"))
    assert left.owners == right.owners


def change_the_org(sandbox: RunningSalesforce) -> dict[str, Any]:
    """Edits, deletions, a conversion, new records and a deactivated user; 450 contact edits share one
    SystemModstamp (pages of 200 split them)."""
    org = sandbox.org
    with org.lock:
        accounts = sorted(org.objects["Account"])
        contacts = sorted(org.objects["Contact"])
        leads = sorted(i for i, r in org.objects["Lead"].items() if not r.get("IsConverted"))
        users = sorted(i for i, r in org.objects["User"].items() if r.get("IsActive") and i != org.integration_user_id)
    org.put("Account", {"Name": "Renamed Holdings GmbH", "Website": "https://www.renamed-holdings.de/about"}, accounts[0])
    # Deleting an account deletes its contacts with it (Salesforce Help, "Delete Accounts"): they leave too.
    cascaded = [c for c in contacts if org.objects["Contact"][c].get("AccountId") == accounts[1]]
    org.delete("Account", accounts[1])
    contacts = [c for c in contacts if c not in cascaded]
    org.delete("Contact", contacts[0])
    org.delete("Lead", leads[0])
    org.convert_lead(leads[1])
    org.put("Lead", {"Email": "  New.Address@Example.COM ", "Company": "Moved Inc"}, leads[2])
    added = org.put("Contact", {"LastName": "Newcomer", "FirstName": "Nia", "Email": "nia@newco.example",
                                "AccountId": accounts[2]})
    org.put("User", {"IsActive": False}, users[0])
    stamp = sf_datetime(datetime.now(UTC))
    with org.lock:
        for record_id in contacts[1:451]:
            record = org.objects["Contact"][record_id]
            org.objects["Contact"][record_id] = {**record, "Title": "Head of Things", "SystemModstamp": stamp,
                                                 "LastModifiedDate": stamp}
    return {"cascaded": cascaded, "deleted_account": accounts[1], "renamed_account": accounts[0], "deleted_contact": contacts[0],
            "deleted_lead": leads[0], "converted_lead": leads[1], "edited_lead": leads[2], "added_contact": added,
            "deactivated": users[0]}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_incremental_refreshes_converge_to_a_fresh_rebuild(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, sandbox: RunningSalesforce,
    connect: Callable[..., SalesforceConnector],
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/a.db"
    with StateStore.open(url) as kept, StateStore.open(f"sqlite:///{tmp_path}/fresh.db") as fresh:
        built = refresh_mirror(connect(bulk_query_threshold=100_000), kept)
        assert {o: r.method for o, r in built.items()} == dict.fromkeys(MIRRORED, "rest")
        view = load_mirror(kept)
        assert len(view.accounts) == 80 and view.existing["object"].value_counts().to_dict()["Contact"] == 600

        # Nothing changed: one Composite call reads the five objects' changes (deletions included).
        quiet = connect()
        report = refresh_mirror(quiet, kept)
        assert quiet.budget.used == 2  # the limits read on login, then one Composite call
        assert all(r.method in ("incremental", "reread") for r in report.values())

        what = change_the_org(sandbox)
        incremental = connect()
        report = refresh_mirror(incremental, kept)
        assert report["Contact"].changed >= 451 and report["Contact"].deleted == 1 + len(what["cascaded"])
        assert report["Account"].deleted == 1 and report["Lead"].deleted == 2
        # 451 contact changes come in pages of 200: the Composite call, then two query-more calls.
        assert incremental.budget.used == 1 + 1 + 2

        view = load_mirror(kept)  # caught up from this process's copy (only changed rows read)
        ids = set(view.existing["record_id"])
        assert what["deleted_contact"] not in ids and what["deleted_lead"] not in ids
        assert what["converted_lead"] not in ids and what["added_contact"] in ids
        assert not ids & set(what["cascaded"])
        assert what["deleted_account"] not in set(view.accounts["account_id"])
        renamed = view.accounts.set_index("account_id").loc[what["renamed_account"]]
        assert renamed["name_key"] == "renamed holdings" and renamed["domain_key"] == "renamed-holdings.de"
        edited = view.existing.set_index("record_id").loc[what["edited_lead"]]
        assert edited["email"] == "new.address@example.com" and edited["company"] == "Moved Inc"
        assert what["deactivated"] in view.owners.inactive

        # A fresh rebuild (Bulk API 2.0 this time) gives the same mirror, and so does a fresh process's load.
        rebuilt = refresh_mirror(connect(bulk_query_threshold=50), fresh)
        assert rebuilt["Contact"].method == "bulk" and rebuilt["User"].method == "rest"
        assert_same_mirror(kept, fresh)


def test_a_record_committed_late_inside_the_look_back_is_still_read(
    tmp_path: Path, sandbox: RunningSalesforce, connect: Callable[..., SalesforceConnector],
) -> None:
    with StateStore.open(f"sqlite:///{tmp_path}/a.db") as store:
        refresh_mirror(connect(), store)
        mark = store.mirror_state()["Account"]["watermark"]
        org = sandbox.org
        account = sorted(org.objects["Account"])[5]
        # Stamped a minute before the watermark, visible only now (a long transaction, index lag): the look-back
        # (5 minutes by default) reads it; with no look-back it would be missed.
        late = sf_datetime(mark - timedelta(minutes=1))
        with org.lock:
            org.objects["Account"][account] = {**org.objects["Account"][account], "Name": "Late Commit Corp",
                                               "SystemModstamp": late}
        refresh_mirror(connect(lookback=timedelta(0)), store)
        assert load_mirror(store).accounts.set_index("account_id").loc[account, "name"] != "Late Commit Corp"
        refresh_mirror(connect(), store)
        assert load_mirror(store).accounts.set_index("account_id").loc[account, "name"] == "Late Commit Corp"


def test_a_mirror_older_than_the_recycle_bin_is_rebuilt_and_status_says_so(
    tmp_path: Path, sandbox: RunningSalesforce, connect: Callable[..., SalesforceConnector],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with StateStore.open(f"sqlite:///{tmp_path}/a.db") as store:
        refresh_mirror(connect(), store)
        later = datetime.now(UTC) + timedelta(days=16)
        status = mirror_status(store, later).set_index("object")
        assert status.loc["Contact", "rows"] == 600
        assert "Recycle Bin" in status.loc["Contact", "note"]
        report = refresh_mirror(connect(), store, now=later)
        assert report["Contact"].method == "rest" and "Recycle Bin" in (report["Contact"].reason or "")

    monkeypatch.setenv("LEADFLOW_DATABASE_URL", f"sqlite:///{tmp_path}/a.db")
    from leadflow.cli import app

    shown = CliRunner().invoke(app, ["mirror", "status"])
    assert shown.exit_code == 0, shown.output
    assert "Contact" in shown.output and "rest" in shown.output
    typo = CliRunner().invoke(app, ["mirror", "rebuild", "--object", "Contacts"])
    assert typo.exit_code == 2 and "did you mean Contact?" in typo.output


def test_the_mirror_holds_what_a_full_read_of_the_org_gives(
    tmp_path: Path, connect: Callable[..., SalesforceConnector],
) -> None:
    with StateStore.open(f"sqlite:///{tmp_path}/a.db") as store:
        refresh_mirror(connect(), store)
        view = load_mirror(store)
    accounts, existing = connect().reference_data()
    columns = list(accounts.columns)
    pd.testing.assert_frame_equal(_sorted(view.accounts[columns], "account_id"), _sorted(accounts, "account_id"))
    columns = list(existing.columns)
    pd.testing.assert_frame_equal(_sorted(view.existing[columns], "record_id"), _sorted(existing, "record_id"))


def test_the_mirror_names_users_and_lead_queues_as_the_crm_does(
    tmp_path: Path, sandbox: RunningSalesforce, connect: Callable[..., SalesforceConnector],
) -> None:
    """User.Name and the queue's Group.Name (read through QueueSobject's `Queue` lookup) are stored per owner id,
    renames are picked up by a refresh, and a Bulk API 2.0 read gives the same names as REST."""
    from leadflow.connectors.salesforce_mirror import MIRROR_OBJECTS, snapshot
    from leadflow.sandbox.salesforce_seed import WEB_QUEUE_ID
    from leadflow.sync.mirror import to_rows

    org = sandbox.org
    with org.lock:
        users = {i: f"{r['FirstName']} {r['LastName']}".strip() for i, r in org.objects["User"].items()}
    with StateStore.open(f"sqlite:///{tmp_path}/a.db") as store, \
            StateStore.open(f"sqlite:///{tmp_path}/bulk.db") as bulk:
        refresh_mirror(connect(), store)
        names = store.mirror_owner_names()
        assert names[WEB_QUEUE_ID] == "Web Leads"
        assert {i: names[i] for i in users} == users and len(names) == len(users) + 1

        renamed = sorted(i for i in users if i != org.integration_user_id)[0]
        org.put("User", {"FirstName": "Renée", "LastName": "Okafor"}, renamed)
        org.put("Group", {"Name": "Inbound Triage"}, WEB_QUEUE_ID)
        quiet = connect()
        refresh_mirror(quiet, store)
        assert quiet.budget.used == 2  # still one Composite call
        names = store.mirror_owner_names()
        assert names[renamed] == "Renée Okafor" and names[WEB_QUEUE_ID] == "Inbound Triage"

        refresh_mirror(connect(bulk_query_threshold=1), bulk)
        assert bulk.mirror_state()["User"]["method"] == "bulk"
        assert bulk.mirror_owner_names() == names

    # Bulk API 2.0 gives the queue's name as a `Queue.Name` CSV column.
    pages = list(snapshot(connect(bulk_query_threshold=1), MIRROR_OBJECTS["QueueSobject"], bulk=True))
    rows = to_rows("QueueSobject", [r for page in pages for r in page])
    assert rows.set_index("owner_id")["name"].to_dict() == {WEB_QUEUE_ID: "Inbound Triage"}
