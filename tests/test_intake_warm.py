"""The intake processor's warm systems between batches (injected clock, fake connectors that count calls and record
the windows they are asked for): connectors are built once and kept across refreshes; a refresh reads the CRM mirror
through `refresh_crm_mirror` and only the new window of MAP activities ([last end − overlap, now)), drops activities
older than the scoring look-back and counts an activity both pulls saw once — the same activities a full pull would
give; a refresh that fails keeps the previous inputs and is tried again at the next batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from prefect import flow

from leadflow.connectors.base import SourceStopped
from leadflow.connectors.http import RetriesExhausted
from leadflow.connectors.marketo import ACTIVITY_COLUMNS
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.sync.mirror import MirrorView

pytestmark = pytest.mark.prefect

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LOOKBACK = timedelta(days=180)  # the default scoring model's

CONFIG = """\
pipeline: [standardize, enrich, comply, score]
systems:
  salesforce: {login_url: "https://acme.my.salesforce.com", client_id: intake, client_secret: {env: WARM_SF_SECRET}}
  marketo: {base_url: "https://123-ABC-456.mktorest.com", client_id: intake, client_secret: {env: WARM_MK_SECRET}}
"""


class Clock:
    """Monotonic seconds for WarmSystems; `as_of` is the matching wall time of a batch."""

    def __init__(self) -> None:
        self.seconds = 5000.0
        self._start = self.seconds

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds

    @property
    def as_of(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds - self._start)


@dataclass
class Activity:
    lead: int
    kind: str  # a Marketo activity type name
    at: datetime
    detail: str = "/pricing"


class FakeMarketo:
    """Serves the activities of its feed in [since, until) as the Marketo connector's pages; records each window."""

    def __init__(self, feed: list[Activity]) -> None:
        self.feed, self.windows, self.failure = feed, [], None
        self.budget, self.closed = SimpleNamespace(used=0), False
        self.guard = None

    def activities(self, since: datetime, until: datetime) -> Iterator[pd.DataFrame]:
        self.budget.used += 1
        self.windows.append((since, until))
        if self.failure is not None:
            raise self.failure
        rows = [{"lead_id": str(a.lead), "activity_id": str(i), "activity_type_id": "1", "activity_type": a.kind,
                 "activity_date": a.at.strftime("%Y-%m-%dT%H:%M:%SZ"), "primary_attribute": a.detail,
                 "attributes": "{}", "_pull_error": None}
                for i, a in enumerate(self.feed) if since <= a.at < until]
        yield pd.DataFrame(rows, columns=list(ACTIVITY_COLUMNS)).astype("string")

    def close(self) -> None:
        self.closed = True


class FakeSalesforce:
    """Stands for the CRM: each mirror refresh answers the mirror's current version (an account named after it)."""

    def __init__(self) -> None:
        self.refreshes, self.version, self.failure = 0, 1, None
        self.budget, self.closed, self.guard = SimpleNamespace(used=0), False, None

    def refresh_mirror(self) -> MirrorView:
        self.refreshes += 1
        self.budget.used += 1
        if self.failure is not None:
            raise self.failure
        accounts = pd.DataFrame({"account_id": ["001A"], "name": [f"Acme v{self.version}"]})
        return MirrorView(accounts=accounts, existing=pd.DataFrame({"lead_id": pd.Series(dtype="string")}),
                          owners=None)  # type: ignore[arg-type] - the pipeline routes nothing

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def systems(tmp_path: Path, state_home: Path, prefect_api: str,
            monkeypatch: pytest.MonkeyPatch) -> Callable[[list[Activity]], Any]:
    """A factory: WarmSystems over fake Salesforce and Marketo connectors (whose builds are counted) on `feed`."""
    config = tmp_path / "leadflow.yaml"
    config.write_text(CONFIG)

    def make(feed: list[Activity]) -> Any:
        from flows.intake import WarmSystems

        fakes = SimpleNamespace(salesforce=FakeSalesforce(), marketo=FakeMarketo(feed), builds=[], clock=Clock())
        monkeypatch.setattr("flows.intake.connect", lambda system, *a, **k: (fakes.builds.append(system),
                                                                            getattr(fakes, system))[1])
        monkeypatch.setattr("flows.crm_sync.refresh_crm_mirror", lambda connector: connector.refresh_mirror())
        fakes.warm = WarmSystems(config, refresh_seconds=300, clock=fakes.clock)
        return fakes

    return make


def batch(fakes: Any) -> RunInputs:
    """What one intake batch does with its warm systems: start the batch, then read the inputs at its time."""
    from flows.intake import BatchInputs
    from tasks.runner import inline_tasks

    @flow(name="warm_systems_batch", validate_parameters=False)
    def run() -> RunInputs:
        fakes.warm.start_batch()
        with inline_tasks():  # as intake_batch runs its tasks
            return BatchInputs(fakes.warm, fakes.clock.as_of).get()

    return run()


def activities(inputs: RunInputs) -> list[tuple[str, str, str]]:
    frame = inputs.reference.activities
    return sorted(zip(frame["lead_key"], frame["activity_type"], frame["occurred_at"].astype(str), strict=True))


def accounts(inputs: RunInputs) -> list[str]:
    return inputs.reference.accounts["name"].tolist()


def test_a_refresh_asks_only_for_the_new_window_and_keeps_the_connectors(systems: Any) -> None:
    fakes = systems([Activity(1, "Visit Webpage", T0 - timedelta(days=3))])
    first = batch(fakes)
    marketo = fakes.marketo
    assert marketo.windows == [(T0 - LOOKBACK, T0)]  # the whole look-back, once
    assert fakes.salesforce.refreshes == 1 and len(activities(first)) == 1

    fakes.clock.advance(120)  # not due: nothing read
    batch(fakes)
    assert len(marketo.windows) == 1 and fakes.salesforce.refreshes == 1

    fakes.clock.advance(180)  # 300 s after the read: a refresh, of the new window only
    fakes.salesforce.version = 2
    refreshed = batch(fakes)
    assert marketo.windows[1:] == [(T0 - timedelta(minutes=5), T0 + timedelta(seconds=300))]
    assert fakes.salesforce.refreshes == 2 and accounts(refreshed) == ["Acme v2"]
    assert refreshed.as_of == fakes.clock.as_of
    # Connectors built once, never closed; each batch starts its API budget afresh.
    assert sorted(fakes.builds) == ["marketo", "salesforce"]
    assert not marketo.closed and not fakes.salesforce.closed
    assert marketo.budget.used == 1 and fakes.salesforce.budget.used == 1
    assert fakes.warm.refreshes == 1

    fakes.clock.advance(300)
    batch(fakes)
    assert marketo.windows[2] == (T0 + timedelta(seconds=300) - timedelta(minutes=5), T0 + timedelta(seconds=600))
    assert sorted(fakes.builds) == ["marketo", "salesforce"]


def test_the_refreshed_activities_are_what_a_full_pull_would_give(systems: Any) -> None:
    old = Activity(1, "Visit Webpage", T0 - LOOKBACK + timedelta(minutes=1))  # out of the look-back 5 minutes on
    overlap = Activity(2, "Fill Out Form", T0 - timedelta(minutes=2), "Contact Us")  # in both pulls
    twice = [Activity(3, "Click Email", T0 - timedelta(hours=1), "Launch")] * 2  # two alike clicks: two activities
    feed = [old, overlap, *twice]
    fakes = systems(feed)
    first = activities(batch(fakes))
    assert len(first) == 4

    # Marketo records an activity some time after its date: one dated before the last pull shows up late.
    late = Activity(4, "Visit Webpage", T0 - timedelta(minutes=1), "/demo")
    feed += [late, Activity(5, "Open Email", T0 + timedelta(minutes=2), "Launch")]
    fakes.clock.advance(300)
    refreshed = activities(batch(fakes))
    assert [key for key, *_ in refreshed] == ["marketo:2", "marketo:3", "marketo:3", "marketo:4", "marketo:5"]

    # A process started now, pulling the whole look-back, reads exactly these.
    cold = systems(feed)
    cold.clock.advance(300)
    assert activities(batch(cold)) == refreshed
    assert cold.marketo.windows == [(T0 + timedelta(seconds=300) - LOOKBACK, T0 + timedelta(seconds=300))]


def test_a_failing_refresh_keeps_the_previous_inputs_and_is_tried_again_next_batch(
    systems: Any, caplog: pytest.LogCaptureFixture
) -> None:
    feed = [Activity(1, "Visit Webpage", T0 - timedelta(days=1))]
    fakes = systems(feed)
    before = batch(fakes)

    fakes.salesforce.failure = RetriesExhausted(3, "HTTP 503", None)
    fakes.marketo.failure = SourceStopped("marketo", "daily quota spent (1007)")
    fakes.salesforce.version = 2
    feed.append(Activity(2, "Fill Out Form", T0 + timedelta(minutes=1)))
    fakes.clock.advance(300)
    with caplog.at_level("WARNING"):
        failed = batch(fakes)
    assert accounts(failed) == ["Acme v1"] and activities(failed) == activities(before)
    assert failed.as_of == fakes.clock.as_of
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("salesforce" in w and "RetriesExhausted" in w and "previous data is kept" in w for w in warnings)
    assert any("marketo" in w and "daily quota spent" in w for w in warnings)

    # Only the Marketo side fails now: the mirror moves on, the activities stay as they were.
    fakes.salesforce.failure = None
    fakes.clock.advance(1)  # the very next batch, well within refresh_seconds
    half = batch(fakes)
    assert accounts(half) == ["Acme v2"] and activities(half) == activities(before)
    assert fakes.salesforce.refreshes == 3

    fakes.marketo.failure = None
    fakes.clock.advance(1)
    healed = batch(fakes)
    # Still from the last successful pull's end: nothing between is skipped.
    assert fakes.marketo.windows[-1] == (T0 - timedelta(minutes=5), fakes.clock.as_of)
    assert [key for key, *_ in activities(healed)] == ["marketo:1", "marketo:2"]

    calls = len(fakes.marketo.windows), fakes.salesforce.refreshes
    fakes.clock.advance(1)  # refreshed: the next one is due refresh_seconds later again
    batch(fakes)
    assert (len(fakes.marketo.windows), fakes.salesforce.refreshes) == calls
    assert sorted(fakes.builds) == ["marketo", "salesforce"]
