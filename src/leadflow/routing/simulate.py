"""Routing from the command line, as pure functions the CLI calls and prints:

- `run_routing_tests`: the example cases ops write for a routing rules file (`leadflow routing test`): each case is
  one lead and what should happen to it (rule, owner, hold, words in the reason), routed alone from an empty state.
- `simulate_routing`: what a rules change would do to a lead file (`leadflow routing simulate`): the leads routed with
  the current rules and with the new ones, both from an empty round-robin state but with the pauses in force and the
  untouched leads per owner the state store holds (when there is one); who was skipped and why; nothing is written.

A case file::

    rules: routing.yaml            # optional, relative to this file; default: the bundled routing.yaml
    as_of: "2026-11-18T10:00:00Z"  # optional; when the cases are evaluated (working hours matter); default: now
    cases:
      - name: demo request from a VP in California goes to the West pool
        lead: {email: ann@acme.com, country_code: US, state_code: US-CA, lead_source: Demo Request, seniority: vp}
        expect: {rule: demo_request_fast_lane}   # and/or owner: 005..., hold: true/false, reason_contains: "..."

`lead` keys are canonical lead columns (`leadflow.pipeline.schema.CANONICAL_COLUMNS`), values as a lead file would hold them
(booleans true/false, numbers); a lead with neither `email` nor `lead_id` gets `lead_id: case-<n>`.
`reason_contains` is case-insensitive. Every case is routed alone with an empty routing state, so a case for a
round-robin pool expects the pool's first member (or just the rule).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadflow.pipeline.errors import ConfigError, InputError

DEFAULT_CASES = Path(__file__).resolve().parents[1] / "reference" / "routing_tests.yaml"
HOLD = "(hold)"
"""How a lead routed to no owner (a hold) is shown in owner tables."""
NO_RULE = "(none)"
EXAMPLES = 5
PREVIOUS_ROUTING = ("routing_rule", "routing_reason", "assigned_at", "sla_due_at")
"""Routing columns an input file may carry from an earlier run; simulate ignores them."""


# --- case files ----------------------------------------------------------------------------------------------------


class Expectation(BaseModel):
    """What should happen to a case's lead; every field given must hold."""

    model_config = ConfigDict(extra="forbid")

    rule: str | None = Field(default=None, min_length=1)
    owner: str | None = Field(default=None, min_length=1)
    hold: bool | None = None
    reason_contains: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _something_expected(self) -> Expectation:
        if self.rule is None and self.owner is None and self.hold is None and self.reason_contains is None:
            raise ValueError("expect needs at least one of rule, owner, hold, reason_contains")
        if self.hold and self.owner is not None:
            raise ValueError("hold: true and an owner contradict each other (a held lead has no owner)")
        return self


LeadValue = bool | int | float | str | None


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    lead: dict[str, LeadValue] = Field(min_length=1)
    expect: Expectation


class CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: str | None = Field(default=None, min_length=1)
    as_of: datetime | None = None
    cases: list[Case] = Field(min_length=1)

    @field_validator("as_of")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class CaseResult:
    index: int
    name: str
    passed: bool
    expected: str
    """The expectation, e.g. `rule=demo_request_fast_lane, owner=0051 (Ann Lee)`."""
    got: str
    """What routing did, e.g. `rule=demo_request_fast_lane, owner=0051 (Ann Lee), reason='…'`."""
    failures: list[str] = field(default_factory=list)
    """One entry per expectation that did not hold."""


@dataclass
class CaseSuite:
    """A validated case file with its rules loaded."""

    path: Path
    rules_path: Path
    config: Any
    as_of: datetime
    cases: list[Case]
    leads: list[pd.DataFrame]
    """Per case: a one-row canonical lead frame."""


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _case_lead(case: Case, index: int, path: Path) -> pd.DataFrame:
    """One case's lead as a canonical one-row frame, typed like a lead file; problems name their YAML path."""
    from leadflow.pipeline.io import prepare_leads
    from leadflow.pipeline.schema import BOOLEAN_COLUMNS, CANONICAL_COLUMNS, IDENTITY_COLUMNS

    where = f"cases[{index}].lead"
    values: dict[str, str | None] = {}
    for column, value in case.lead.items():
        if column not in CANONICAL_COLUMNS:
            raise ConfigError(str(path), f"unknown column {column!r}: not a canonical lead column"
                              f"{_suggest(column, list(CANONICAL_COLUMNS))}", yaml_path=f"{where}.{column}")
        if isinstance(value, bool) and column not in BOOLEAN_COLUMNS:
            raise ConfigError(str(path), f"YAML read this value as the boolean {value}, but {column} is text or a "
                              f"number: quote it (e.g. \"{'yes' if value else 'no'}\")", yaml_path=f"{where}.{column}")
        if value is None:
            values[column] = None
        elif isinstance(value, bool):
            values[column] = "true" if value else "false"
        else:
            values[column] = str(value)
    if not any(values.get(c) for c in IDENTITY_COLUMNS):
        values["lead_id"] = f"case-{index + 1}"
    raw = pd.DataFrame({c: pd.Series([v], dtype="string") for c, v in values.items()})
    loaded = prepare_leads(raw, f"{path}: {where}")
    if len(loaded.refused):
        first = loaded.refused.iloc[0]
        raise ConfigError(str(path), _refusal(first), yaml_path=f"{where}.{first['column']}")
    return loaded.frame.reset_index(drop=True)


def _refusal(refused: pd.Series) -> str:
    """prepare_leads' reason without its `row N: ` and `<column>: ` prefixes (the caller names both)."""
    reason = str(refused["reason"])
    reason = reason.split(": ", 1)[1] if reason.startswith("row ") and ": " in reason else reason
    return reason.removeprefix(f"{refused['column']}: ")


def load_cases(path: Path | str, rules_override: Path | str | None = None) -> CaseSuite:
    """Read and validate a case file and the rules it tests (`rules_override`, else its `rules:` relative to the
    case file, else the bundled routing.yaml). Every problem is a ConfigError naming the file and YAML path."""
    from leadflow.routing import DEFAULT_ROUTING, load_routing_config
    from leadflow.pipeline.yamlio import load_yaml, parse_model

    path = Path(path)
    data = load_yaml(path)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(str(path), "expected a mapping with a 'cases' list", yaml_path="(document)")
    suite = parse_model(CaseFile, data, path)
    if rules_override is not None:
        rules_path = Path(rules_override)
    elif suite.rules is not None:
        rules_path = path.parent / suite.rules
        if not rules_path.is_file():
            raise ConfigError(str(path), f"rules file {str(rules_path)!r} not found (relative to this file)",
                              yaml_path="rules")
    else:
        rules_path = Path(DEFAULT_ROUTING)
    config = load_routing_config(rules_path)
    rule_names = [str(rule.name) for rule in config.rules]
    leads = []
    for i, case in enumerate(suite.cases):
        if case.expect.rule is not None and case.expect.rule not in rule_names:
            raise ConfigError(str(path), f"no rule {case.expect.rule!r} in {rules_path}"
                              f"{_suggest(case.expect.rule, rule_names)}; its rules: {', '.join(rule_names)}",
                              yaml_path=f"cases[{i}].expect.rule")
        leads.append(_case_lead(case, i, path))
    return CaseSuite(path=path, rules_path=rules_path, config=config, as_of=suite.as_of or datetime.now(UTC),
                     cases=suite.cases, leads=leads)


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def owner_names(*configs: Any) -> dict[str, str]:
    """Owner id → display name: users by name, queues as `queue <name>` (later configs win)."""
    names: dict[str, str] = {}
    for config in configs:
        for key, queue in (getattr(config, "queues", None) or {}).items():
            names[str(queue.owner_id)] = f"queue {key}"
        for owner, user in (getattr(config, "users", None) or {}).items():
            names[str(owner)] = str(user.name)
    return names


def _owner_label(owner: str | None, config: Any) -> str:
    if owner is None:
        return HOLD
    name = owner_names(config).get(owner)
    return f"{owner} ({name})" if name else owner


def _expected_text(expect: Expectation, config: Any) -> str:
    parts = []
    if expect.rule is not None:
        parts.append(f"rule={expect.rule}")
    if expect.owner is not None:
        parts.append(f"owner={_owner_label(expect.owner, config)}")
    if expect.hold is not None:
        parts.append(f"hold={'true' if expect.hold else 'false'}")
    if expect.reason_contains is not None:
        parts.append(f"reason contains {expect.reason_contains!r}")
    return ", ".join(parts)


def judge(expect: Expectation, routed: pd.Series, config: Any) -> tuple[list[str], str]:
    """(failures, what routing did) for one routed lead (a row of route_leads' output)."""
    owner = _text(routed.get("owner_id"))
    rule = _text(routed.get("routing_rule"))
    reason = _text(routed.get("routing_reason")) or ""
    held = owner is None
    failures = []
    if expect.rule is not None and rule != expect.rule:
        failures.append("rule")
    if expect.owner is not None and owner != expect.owner:
        failures.append("owner")
    if expect.hold is not None and held != expect.hold:
        failures.append("hold")
    if expect.reason_contains is not None and expect.reason_contains.lower() not in reason.lower():
        failures.append("reason")
    got = f"rule={rule or NO_RULE}, " + ("hold" if held else f"owner={_owner_label(owner, config)}")
    return failures, f"{got}, reason={reason!r}"


def run_suite(suite: CaseSuite) -> list[CaseResult]:
    """Route every case alone, from an empty routing state, and judge it."""
    from leadflow.routing import RoutingState, route_leads

    results = []
    for i, (case, lead) in enumerate(zip(suite.cases, suite.leads, strict=True)):
        routed, _ = route_leads(lead, suite.config, RoutingState(), as_of=suite.as_of)
        failures, got = judge(case.expect, routed.loc[lead.index[0]], suite.config)
        results.append(CaseResult(index=i, name=case.name, passed=not failures,
                                  expected=_expected_text(case.expect, suite.config), got=got, failures=failures))
    return results


def run_routing_tests(path: Path | str, rules_override: Path | str | None = None) -> list[CaseResult]:
    """Load a case file (see the module doc) and run it: one CaseResult per case, in file order."""
    return run_suite(load_cases(path, rules_override))


def routing_test_lines(results: list[CaseResult], *, path: Path | str | None = None,
                       rules_path: Path | str | None = None, as_of: datetime | None = None) -> list[str]:
    """One line per case (PASS/FAIL, name, expected vs got), then the total."""
    lines = []
    if path is not None:
        head = f"leadflow routing test  {path}"
        if rules_path is not None:
            head += f"  (rules {rules_path}"
            head += f", as of {as_of.isoformat()})" if as_of is not None else ")"
        lines.append(head)
    for result in results:
        verdict = "PASS" if result.passed else "FAIL"
        line = f"{verdict}  {result.name}: expected {result.expected}; got {result.got}"
        if result.failures:
            line += f"  [differs: {', '.join(result.failures)}]"
        lines.append(line)
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results)} case(s): {len(results) - failed} passed, {failed} failed")
    return lines


# --- simulate ------------------------------------------------------------------------------------------------------


@dataclass
class SimulationResult:
    input_path: str
    current_path: str
    new_path: str
    as_of: datetime
    leads: int
    owners: pd.DataFrame
    """Per owner (holds as `(hold)`): owner_id, name, before, after, moved_in, moved_out; sorted by owner."""
    rules: pd.DataFrame
    """Per rule (none as `(none)`): rule, before, after."""
    changed: int
    """Leads whose owner changes (a hold counts as an owner): sum(moved_in) == sum(moved_out) == changed."""
    rule_only: int
    """Leads that keep their owner but are routed by another rule."""
    examples: pd.DataFrame
    """A few changed leads: lead_key, before (owner via rule), after."""
    skipped: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Members routed around for a pause, a holiday or a cap: user_id, name, why, before, after (leads)."""
    unavailable: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Users unavailable at `as_of` under the new rules: user_id, name, why; and pools closed (user_id `pool <name>`)."""


def read_routing_input(path: Path | str) -> pd.DataFrame:
    """A lead file (CSV or Parquet; e.g. `leadflow run` output) as canonical leads on a RangeIndex. Any refused row
    is an InputError naming the file, row and column."""
    from leadflow.pipeline.io import read_leads

    path = Path(path)
    loaded = read_leads(path)
    if len(loaded.refused):
        first = loaded.refused.iloc[0]
        more = f" ({len(loaded.refused)} rows refused)" if len(loaded.refused) > 1 else ""
        line = 2 if path.suffix.lower() == ".csv" else 1  # CSV line numbers count the header
        raise InputError(str(path), f"{_refusal(first)}{more}", row=int(first["position"]) + line,
                         column=str(first["column"]))
    if loaded.frame.empty:
        raise InputError(str(path), "no leads (header only)")
    return loaded.frame.reset_index(drop=True)


def _outcomes(routed: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    owners = routed["owner_id"].astype("string").fillna(HOLD)
    rules = routed["routing_rule"].astype("string").fillna(NO_RULE)
    return owners, rules


def compare_routing(leads: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame, *, names: dict[str, str],
                    examples: int = EXAMPLES) -> dict[str, Any]:
    """The difference between two routings of the same leads (route_leads outputs on the leads' index)."""
    from leadflow.pipeline.schema import lead_keys

    old_owner, old_rule = _outcomes(before.reindex(leads.index))
    new_owner, new_rule = _outcomes(after.reindex(leads.index))
    moved = (old_owner != new_owner).to_numpy()
    rule_only = int(((old_rule != new_rule).to_numpy() & ~moved).sum())
    ids = sorted(set(old_owner) | set(new_owner), key=lambda o: (o == HOLD, o))
    before_n, after_n = old_owner.value_counts(), new_owner.value_counts()
    out_n, in_n = old_owner[moved].value_counts(), new_owner[moved].value_counts()

    owners = pd.DataFrame({
        "owner_id": ids,
        "name": [names.get(o, "") for o in ids],
        "before": [int(before_n.get(o, 0)) for o in ids],
        "after": [int(after_n.get(o, 0)) for o in ids],
        "moved_in": [int(in_n.get(o, 0)) for o in ids],
        "moved_out": [int(out_n.get(o, 0)) for o in ids],
    })
    rule_ids = list(dict.fromkeys(list(old_rule.value_counts().index) + list(new_rule.value_counts().index)))
    rule_before, rule_after = old_rule.value_counts(), new_rule.value_counts()
    rules = pd.DataFrame({
        "rule": rule_ids,
        "before": [int(rule_before.get(r, 0)) for r in rule_ids],
        "after": [int(rule_after.get(r, 0)) for r in rule_ids],
    })
    keys = lead_keys(leads)
    shown = [i for i in range(len(leads)) if moved[i]][:examples]
    sample = pd.DataFrame({
        "lead_key": [keys.iloc[i] for i in shown],
        "before": [f"{old_owner.iloc[i]} via {old_rule.iloc[i]}" for i in shown],
        "after": [f"{new_owner.iloc[i]} via {new_rule.iloc[i]}" for i in shown],
    })
    return {"owners": owners, "rules": rules, "changed": int(moved.sum()), "rule_only": rule_only, "examples": sample}


def parse_since(value: str, now: datetime) -> datetime:
    """`30d`, `12h`, `90m` or an ISO date/time → the moment it names (relative values count back from `now`)."""
    from datetime import timedelta

    text = value.strip().lower()
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError("--since", f"{value!r} is neither a span like 30d / 12h / 90m nor an ISO date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def recent_assigned_leads(since: datetime) -> pd.DataFrame:
    """Leads assigned at or after `since`, as the state store kept them when they were assigned (canonical frame)."""
    from leadflow.pipeline.schema import conform
    from leadflow.store import StateStore

    recorded = StateStore.open().assignments(since=since)
    rows = [dict(inputs) for inputs in recorded["inputs"] if inputs]
    if not rows:
        raise InputError("--since", f"no assignments with a snapshot since {since.isoformat()} in the state store")
    return conform(pd.DataFrame(rows).astype("string"))


def stored_availability(as_of: datetime) -> Any:
    """A RoutingState with the pauses not over at `as_of` and each owner's untouched leads from the state store, or
    an empty one when there is no store (never created here)."""
    from leadflow.pipeline.settings import Settings
    from leadflow.routing import RoutingState
    from leadflow.store import StateStore

    settings = Settings()
    if not settings.database_url and not (settings.home / "state.db").is_file():
        return RoutingState()
    store = StateStore.open()
    try:
        return RoutingState(paused=store.routing_pauses(as_of), open_leads=store.open_leads())
    finally:
        store.close()


def skipped_table(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int],
                  names: dict[str, str]) -> pd.DataFrame:
    """(user id, why) → leads, before and after, as rows: user_id, name, why, before, after."""
    keys = sorted(set(before) | set(after))
    return pd.DataFrame({"user_id": [u for u, _ in keys], "name": [names.get(u, "") for u, _ in keys],
                         "why": [w for _, w in keys], "before": [before.get(k, 0) for k in keys],
                         "after": [after.get(k, 0) for k in keys]}, columns=["user_id", "name", "why", "before", "after"])


def unavailable_table(config: Any, state: Any, as_of: datetime) -> pd.DataFrame:
    """Who cannot take leads at `as_of` under `config` and why (users, then pools closed by their own calendar)."""
    from leadflow.routing.router import _Router

    router = _Router(pd.DataFrame(), config, as_of, state.paused)
    rows = [(u, config.users[u].name, why[1]) for u, why in zip(router.user_ids, router.why_unavailable, strict=True)
            if why is not None]
    rows += [(f"pool {p}", "", f"closed: {closed}") for p, closed in zip(router.pool_names, router.pool_closed, strict=True)
             if closed is not None]
    return pd.DataFrame(rows, columns=["user_id", "name", "why"])


def simulate_routing(
    new_rules: Path | str,
    input_path: Path | str | None,
    current_rules: Path | str | None = None,
    as_of: datetime | str | None = None,
    *,
    since: str | None = None,
) -> SimulationResult:
    """Route the leads in `input_path` with the current rules (default: the bundled routing.yaml) and with
    `new_rules`, both from an empty round-robin state at `as_of` (default: now) with the state store's pauses and
    untouched leads (`stored_availability`), and compare. Every lead is routed afresh (routing columns from an earlier
    run are ignored). Writes nothing. Both rules files are validated before the leads are read."""
    from leadflow.scoring.backtest import parse_as_of
    from leadflow.routing import DEFAULT_ROUTING, load_routing_config, route_leads

    current_path = Path(current_rules) if current_rules is not None else Path(DEFAULT_ROUTING)
    current = load_routing_config(current_path)
    new = load_routing_config(Path(new_rules))
    moment = parse_as_of(as_of) or datetime.now(UTC)
    if (input_path is None) == (since is None):
        raise InputError("simulate", "give exactly one of --input FILE and --since SPAN")
    leads = read_routing_input(input_path) if input_path is not None else recent_assigned_leads(
        parse_since(since or "", moment))
    # A previous routing in the file (routing_rule + assigned_at) would be kept as it is: route every lead afresh.
    fresh = leads.drop(columns=[c for c in PREVIOUS_ROUTING if c in leads.columns])
    live = stored_availability(moment)
    before, before_state = route_leads(fresh, current, live, as_of=moment)
    after, after_state = route_leads(fresh, new, live, as_of=moment)
    names = owner_names(current, new)
    diff = compare_routing(leads, before, after, names=names)
    return SimulationResult(input_path=str(input_path) if input_path else f"state store, assigned since {since}",
                            current_path=str(current_path), new_path=str(new_rules),
                            as_of=moment, leads=len(leads), **diff,
                            skipped=skipped_table(before_state.skipped, after_state.skipped, names),
                            unavailable=unavailable_table(new, live, moment))


def simulate_lines(result: SimulationResult) -> list[str]:
    lines = [
        f"leadflow routing simulate  (as of {result.as_of.isoformat()}; nothing written)",
        f"  leads         {result.input_path}  ({result.leads} leads)",
        f"  current       {result.current_path}",
        f"  new           {result.new_path}",
        "",
        f"  {'leads changing owner':<30}{result.changed:>8}",
        f"  {'same owner, another rule':<30}{result.rule_only:>8}",
        "",
        "  per owner",
        f"  {'owner':<44}{'before':>8}{'after':>8}{'in':>8}{'out':>8}",
    ]
    for row in result.owners.itertuples(index=False):
        label = f"{row.owner_id} {row.name}".strip()
        lines.append(f"  {label[:43]:<44}{row.before:>8}{row.after:>8}{'+' + str(row.moved_in):>8}"
                     f"{'-' + str(row.moved_out):>8}")
    lines += ["", "  per rule", f"  {'rule':<44}{'before':>8}{'after':>8}"]
    for row in result.rules.itertuples(index=False):
        lines.append(f"  {str(row.rule)[:43]:<44}{row.before:>8}{row.after:>8}")
    if len(result.examples):
        lines += ["", "  examples (owner via rule: current -> new)"]
        for row in result.examples.itertuples(index=False):
            lines.append(f"  {row.lead_key}: {row.before} -> {row.after}")
    elif result.changed == 0:
        lines += ["", "  no lead changes owner"]
    if len(result.skipped):
        lines += ["", "  members skipped (leads routed around them)", f"  {'member: why':<64}{'before':>8}{'after':>8}"]
        for row in result.skipped.itertuples(index=False):
            label = f"{row.name or row.user_id}: {row.why}"
            lines.append(f"  {label[:63]:<64}{row.before:>8}{row.after:>8}")
    if len(result.unavailable):
        lines += ["", f"  unavailable at {result.as_of.isoformat()} (new rules)"]
        for row in result.unavailable.itertuples(index=False):
            lines.append(f"  {(f'{row.user_id} {row.name}').strip()}: {row.why}")
    return lines
