"""The HubSpot sandbox driven by HubSpot's official Python client (hubspot-api-client), no leadflow connector code.

If the sandbox's shapes drifted from the real API, the client's generated models (with client-side validation on,
so a response missing a required field is rejected) or its request encoding would show it here: create, read and
update a contact, search with a lastmodifieddate filter and a sort (the search index trails writes), page with
`after`, read the property definitions, and a 429 from the per-portal search limit as the client's ApiException.

Pointing the client at the sandbox: `HubSpot(access_token=..., host=url)`; every key the client is given besides
api_key/retry is set on each API's generated `Configuration` (hubspot/discovery/discovery_base.py), so `host` moves
every API at once. The sandbox speaks plain HTTP on 127.0.0.1, so no CA is needed; the client's urllib3 pool takes
its CA only from `Configuration.ssl_ca_cert` and ignores REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE.

Time is injected (one fake clock for the rate windows, the write stamps and the search index); nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import NotFoundException

from leadflow.sandbox.hubspot import LEAD_STATUS_OPTIONS, PROPERTIES, RunningHubspot, running_hubspot
from tests.fakes import FakeClock

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)  # after every seeded stamp
LAG_S = 30  # scripted search-index delay of every change in these tests


@pytest.fixture
def hub() -> Iterator[tuple[RunningHubspot, FakeClock]]:
    clock = FakeClock(T0.timestamp())
    with running_hubspot(n=23, seed=5, clock=clock, now_ms=clock.ms,
                         index_delay=lambda cid, ms: LAG_S * 1000) as running:
        yield running, clock


def client_for(url: str, token: str) -> HubSpot:
    """The official client aimed at `url`, with its generated models validating what the sandbox returns.

    No `retry`: urllib3's default Retry then applies, which re-sends a 429 only when it carries Retry-After."""
    return HubSpot(access_token=token, host=url, client_side_validation=True)


def stamp_filter(operator: str, value: datetime) -> FilterGroup:
    # HubSpot docs, CRM API "Search": datetime filter values are epoch milliseconds
    # (https://developers.hubspot.com/docs/guides/api/crm/search#filter-search-results).
    ms = str(int(value.timestamp() * 1000))
    return FilterGroup(filters=[Filter(property_name="lastmodifieddate", operator=operator, value=ms)])


def by_modified(operator: str, value: datetime, *, limit: int = 10, after: str | None = None,
                descending: bool = False) -> PublicObjectSearchRequest:
    # The client types `sorts` as list[str]; the search guide documents sort objects, which the client passes
    # through unchanged (https://developers.hubspot.com/docs/guides/api/crm/search#sorting-search-results).
    sort = {"propertyName": "lastmodifieddate", "direction": "DESCENDING" if descending else "ASCENDING"}
    return PublicObjectSearchRequest(filter_groups=[stamp_filter(operator, value)], sorts=[sort],
                                     properties=["email", "city", "lastmodifieddate"], limit=limit, after=after)


def test_client_targets_the_sandbox_over_plain_http(hub: tuple[RunningHubspot, FakeClock],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    running, _ = hub
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # set on this machine; the client must not care
        monkeypatch.setenv(name, "/nonexistent/ca-bundle.pem")
    client = client_for(running.url, running.token)
    configuration = client.crm.contacts.basic_api.api_client.configuration
    assert configuration.host == running.url and running.url.startswith("http://127.0.0.1:")
    assert configuration.ssl_ca_cert is None  # urllib3 gets its CA from here only, never from those variables
    assert client.crm.properties.core_api.api_client.configuration.host == running.url
    assert client.crm.contacts.basic_api.get_by_id(running.portal.ids()[0]).id == running.portal.ids()[0]


def test_create_read_and_update_a_contact(hub: tuple[RunningHubspot, FakeClock]) -> None:
    running, clock = hub
    contacts = client_for(running.url, running.token).crm.contacts
    created = contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "ada@example.org", "firstname": "Ada", "hs_lead_status": "NEW"}))
    assert created.id.isdigit()
    assert created.created_at == created.updated_at == T0  # parsed by the client into an aware datetime
    assert created.properties["email"] == "ada@example.org"
    assert created.properties["hs_object_id"] == created.id
    assert created.archived is False

    clock.now += 5
    read = contacts.basic_api.get_by_id(created.id, properties=["email", "hs_lead_status"])
    # The client sends `properties` repeated (?properties=email&properties=hs_lead_status): both come back.
    assert read.properties["email"] == "ada@example.org"
    assert read.properties["hs_lead_status"] == "NEW"
    assert {"createdate", "lastmodifieddate", "hs_object_id"} <= set(read.properties)

    updated = contacts.basic_api.update(created.id, SimplePublicObjectInput(properties={"city": "Lyon"}))
    assert updated.properties["city"] == "Lyon"
    assert updated.updated_at == T0 + timedelta(seconds=5) and updated.created_at == T0
    assert contacts.basic_api.get_by_id(created.id, properties=["city"]).properties["city"] == "Lyon"


@pytest.mark.parametrize(
    ("call", "status", "category"),
    [
        ("missing", 404, "OBJECT_NOT_FOUND"),
        ("duplicate", 409, "CONFLICT"),
        ("bad_option", 400, "VALIDATION_ERROR"),
        ("read_only", 400, "VALIDATION_ERROR"),
    ],
)
def test_errors_reach_the_client_as_api_exceptions(hub: tuple[RunningHubspot, FakeClock], call: str, status: int,
                                                   category: str) -> None:
    running, _ = hub
    basic = client_for(running.url, running.token).crm.contacts.basic_api
    existing = running.portal.ids()[0]
    email = running.portal.contact(existing, ["email"])["properties"]["email"]  # type: ignore[index]
    actions: dict[str, Any] = {
        "missing": lambda: basic.get_by_id("999999"),
        "duplicate": lambda: basic.create(SimplePublicObjectInputForCreate(properties={"email": email})),
        "bad_option": lambda: basic.update(existing, SimplePublicObjectInput(properties={"hs_lead_status": "HOT"})),
        "read_only": lambda: basic.update(existing,
                                          SimplePublicObjectInput(properties={"lastmodifieddate": "0"})),
    }
    with pytest.raises(ApiException) as caught:
        actions[call]()
    assert caught.value.status == status
    assert isinstance(caught.value, NotFoundException) == (status == 404)
    body = json.loads(caught.value.body)
    assert body["status"] == "error" and body["category"] == category and body["message"]


def test_search_trails_writes_until_the_change_is_indexed(hub: tuple[RunningHubspot, FakeClock]) -> None:
    running, clock = hub
    contacts = client_for(running.url, running.token).crm.contacts
    created = contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "lag@example.org"}))
    since = by_modified("GTE", T0)
    first = contacts.search_api.do_search(since)
    assert first.total == 0 and first.results == [] and first.paging is None  # not indexed yet
    assert contacts.basic_api.get_by_id(created.id).id == created.id  # GET by id reads the record at once

    clock.now += LAG_S - 0.001
    assert contacts.search_api.do_search(since).total == 0
    clock.now += 0.001
    found = contacts.search_api.do_search(since)
    assert [r.id for r in found.results] == [created.id] and found.total == 1
    assert found.results[0].properties["email"] == "lag@example.org"

    # An update hides the new version from a filter on its new stamp until it, too, is indexed.
    clock.now += 10
    changed_at = datetime.fromtimestamp(clock.now, UTC)
    updated = contacts.basic_api.update(created.id, SimplePublicObjectInput(properties={"city": "Oslo"}))
    assert updated.updated_at == changed_at
    newer = by_modified("GTE", changed_at)
    assert contacts.search_api.do_search(newer).total == 0
    clock.now += LAG_S
    shown = contacts.search_api.do_search(newer).results
    assert [(r.id, r.properties["city"], r.updated_at) for r in shown] == [(created.id, "Oslo", changed_at)]


def test_search_pages_with_after_in_sort_order(hub: tuple[RunningHubspot, FakeClock]) -> None:
    running, clock = hub
    search = client_for(running.url, running.token).crm.contacts.search_api
    since = datetime(2000, 1, 1, tzinfo=UTC)  # every seeded contact (already indexed)
    pages: list[list[Any]] = []
    after: str | None = None
    while True:
        clock.now += 1  # stay inside 5 searches per second: this test is about paging, not limits
        page = search.do_search(by_modified("GTE", since, limit=5, after=after, descending=True))
        pages.append(page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
        assert after == str(sum(len(p) for p in pages))  # an offset into the sorted results, as a string
    rows = [r for p in pages for r in p]
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3] and page.total == 23
    assert len({r.id for r in rows}) == 23 == len(running.portal.ids())
    stamps = [r.updated_at for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert all(r.properties["lastmodifieddate"] for r in rows)


def test_properties_api_lists_the_contact_properties(hub: tuple[RunningHubspot, FakeClock]) -> None:
    running, _ = hub
    listed = client_for(running.url, running.token).crm.properties.core_api.get_all("contacts")
    by_name = {p.name: p for p in listed.results}
    assert set(by_name) == set(PROPERTIES)
    status = by_name["hs_lead_status"]
    assert status.type == "enumeration" and status.field_type == "select"
    assert [o.value for o in status.options] == list(LEAD_STATUS_OPTIONS)
    assert all(o.hidden is False and o.label for o in status.options)
    assert by_name["lastmodifieddate"].modification_metadata.read_only_value is True
    assert by_name["email"].modification_metadata.read_only_value is False
    assert by_name["email"].description is not None and by_name["email"].group_name


def test_search_limit_is_shared_by_the_portal_and_surfaces_as_429(hub: tuple[RunningHubspot, FakeClock]) -> None:
    running, clock = hub
    assert running.portal.limits.search_per_second == 5 and not running.portal.limits.retry_after
    first_app = client_for(running.url, running.token).crm.contacts.search_api
    other_app = client_for(running.url, running.portal.install_app("other-app")).crm.contacts.search_api
    query = by_modified("GTE", datetime(2000, 1, 1, tzinfo=UTC), limit=1)
    for _ in range(5):
        assert first_app.do_search(query).total == 23
    # The sixth search in the same second, from another app of the same portal, is refused.
    with pytest.raises(ApiException) as caught:
        other_app.do_search(query)
    refused = caught.value
    assert refused.status == 429
    body = json.loads(refused.body)
    # HubSpot developer docs, "API usage guidelines and limits", the 429 example
    # (https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details).
    assert body["status"] == "error" and body["errorType"] == "RATE_LIMIT" and body["policyName"] == "SECONDLY"
    assert body["message"] == "You have reached your secondly limit."
    assert body["correlationId"] and body["requestId"]
    assert "Retry-After" not in refused.headers  # the client must back off without one
    assert running.portal.stats["rate_limited"] == 1  # the client did not retry on its own
    assert running.portal.stats["app_other-app_rate_limited"] == 1
    clock.now += 1  # the window has room again
    assert other_app.do_search(query).total == 23
