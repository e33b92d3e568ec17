"""`leadflow doctor` and the sync preflight: can leadflow work with every configured system as it is right now?

For each system: login, API version, remaining API budget, and the mapped fields (present, writable, our values
fit); for Salesforce also the routing users and queues (exist, active, a queue that takes Leads). `preflight` is
pure of printing: the CLI renders its checks as a table, `sync` stops with `DoctorReport.message()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import requests

from leadflow.pipeline.errors import LeadflowError, first_line

Status = Literal["ok", "warn", "fail", "skip"]
SYSTEMS: Final = ("salesforce", "marketo", "hubspot")
MARKETO_DAILY_QUOTA: Final = 50_000


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    system: str
    item: str
    status: Status
    detail: str = ""
    fix: str = ""


@dataclass
class DoctorReport:
    """Every check, in order; `ok` when none failed (warnings do not stop a sync)."""

    checks: list[Check] = field(default_factory=list)
    config: str = "(defaults)"

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    def message(self) -> str:
        """One problem per line, then the commands that fix them (each once)."""
        if self.ok:
            return "preflight passed"
        lines = [f"preflight failed: {len(self.failures)} problem(s) would stop or break the sync"]
        lines += [f"  {c.system}: {c.item}: {c.detail}" for c in self.failures]
        fixes = list(dict.fromkeys(c.fix for c in self.failures if c.fix))
        if fixes:
            lines.append("Fix:")
            lines += [f"  {fix}" for fix in fixes]
        lines.append(f"Check again with: leadflow doctor --config {self.config}")
        return "\n".join(lines)


class PreflightFailed(LeadflowError):
    """The preflight found problems that would stop the sync mid-run; the message names each and its fix."""

    exit_code = 1

    def __init__(self, report: DoctorReport) -> None:
        self.report = report
        super().__init__(report.message())


def setup_command(config: str) -> str:
    return f"leadflow setup salesforce --config {config}"


# ------------------------------------------------------------------------------------------------- salesforce


def salesforce_field_checks(fields: Mapping[str, Any], rules: Mapping[str, Any], config: str) -> list[Check]:
    """Checks of a Lead mapping (API name → FieldSpec) against the org's describe rules: one failing or warning
    check per problem, and one passing line for the rest."""
    from leadflow.connectors.salesforce_fit import check_mapping

    problems = check_mapping(fields, rules)
    checks = []
    for problem in problems:
        fix = ""
        if problem.level == "fail":
            if problem.field.endswith("__c") and ("missing" in problem.problem or "updateable" in problem.problem):
                fix = setup_command(config)
            elif "not visible" in problem.problem or "updateable" in problem.problem:
                fix = (f"an admin grants the integration user read/edit on Lead.{problem.field} (field-level "
                       "security), or the mapping stops writing it")
            elif "picklist" in problem.problem:
                fix = f"an admin adds the values to Lead.{problem.field} (Setup > Object Manager > Lead > Fields)"
            else:
                fix = f"fix Lead.{problem.field} in the mapping or in the org"
        checks.append(Check("salesforce", f"field {problem.field}", problem.level, problem.problem, fix))
    bad = {p.field for p in problems if p.level == "fail"}
    fine = [name for name in fields if name not in bad]
    writable = sum(1 for name in fine if fields[name].write)
    checks.insert(0, Check("salesforce", "mapped fields", "ok" if not bad else "fail",
                           f"{len(fine)} of {len(fields)} present ({writable} written)"
                           + (f"; {len(bad)} missing or unusable" if bad else ""),
                           setup_command(config) if any(b.endswith("__c") for b in bad) else ""))
    return checks


def routing_checks(users: Mapping[str, Any], queues: Mapping[str, Any], found: Mapping[str, Any],
                   config: str) -> list[Check]:
    """Routing users (id → routing User) and queues (name → routing Queue) against what the org has (15-character
    id → OrgOwner)."""
    checks = []
    fine_users: list[str] = []
    where = f"the routing rules of {config}"
    for user_id, user in users.items():
        owner = found.get(str(user_id)[:15])
        label = f"routing user {user.name} ({user_id})"
        if owner is None or owner.kind != "user":
            checks.append(Check("salesforce", label, "fail", "no such user in the org",
                                f"fix the user id in {where}"))
        elif user.active and not owner.active:
            checks.append(Check("salesforce", label, "fail", "inactive in Salesforce: leads routed to them would be "
                                "refused (INACTIVE_OWNER_OR_USER)",
                                f"reactivate the user, or set `active: false` for {user_id} in {where}"))
        else:
            fine_users.append(user_id)
    if fine_users:  # one line for the users that are fine, so the problems stand out
        checks.append(Check("salesforce", "routing users", "ok", f"{len(fine_users)} of {len(users)} exist with the "
                            "activity the routing config expects"))
    for name, queue in queues.items():
        owner = found.get(str(queue.owner_id)[:15])
        label = f"routing queue {name} ({queue.owner_id})"
        if owner is None:
            checks.append(Check("salesforce", label, "fail", "no such queue in the org",
                                f"fix the queue's owner_id in {where}"))
        elif owner.kind != "queue":
            checks.append(Check("salesforce", label, "fail", f"is a {owner.kind} group, not a queue",
                                f"fix the queue's owner_id in {where}"))
        elif not owner.takes_leads:
            checks.append(Check("salesforce", label, "fail", "queue does not take Leads (no QueueSobject for Lead)",
                                "an admin adds Lead to the queue's supported objects (Setup > Queues)"))
        else:
            checks.append(Check("salesforce", label, "ok", f"queue {owner.name}"))
    return checks


def budget_check(system: str, used: int | None, most: int | None, share: float | None,
                 per_run: int | None) -> Check:
    """The org's daily allocation (when known) and leadflow's own per-run budget."""
    run = f"leadflow budget {per_run} calls per run" if per_run else "no per-run budget"
    if used is None or not most:
        return Check(system, "API budget", "ok", f"daily usage not reported; {run}")
    left = most - used
    detail = f"{used:,} of {most:,} daily calls used, {left:,} left; {run}"
    if share is not None and used >= share * most:
        return Check(system, "API budget", "fail", detail + f"; leadflow stops at {share:.0%}",
                     "wait for the rolling 24 h allocation to free up, or raise max_org_usage_share")
    return Check(system, "API budget", "warn" if left < 0.1 * most else "ok", detail)


def _salesforce(connector: Any, rules: Any, config: str) -> list[Check]:
    from simple_salesforce.exceptions import SalesforceError

    from leadflow.connectors.salesforce_org import api_versions, lead_rules, routing_owners

    checks: list[Check] = []
    try:
        connector._client()  # logs in and reads /limits/
    except (LeadflowError, SalesforceError, requests.RequestException) as exc:
        return [Check("salesforce", "login", "fail", first_line(exc),
                      f"check systems.salesforce (login_url, client_id, client_secret) in {config}")]
    creds = connector.credentials
    checks.append(Check("salesforce", "login", "ok", str(creds.login_url or creds.instance_url)))
    version = connector.credentials.api_version
    try:
        versions = api_versions(connector)
    except (SalesforceError, requests.RequestException):
        versions = None
    if versions and version not in versions:
        checks.append(Check("salesforce", "API version", "fail", f"v{version} is not served by the org "
                            f"(it serves {versions[0]}..{versions[-1]})", "upgrade leadflow"))
    else:
        latest = f" (org serves up to v{versions[-1]})" if versions else ""
        checks.append(Check("salesforce", "API version", "ok", f"v{version}{latest}"))
    used, most = connector.org_usage or (None, None)
    checks.append(budget_check("salesforce", used, most, connector.max_org_usage_share, connector.budget.limit))
    try:
        org_rules = lead_rules(connector)
    except SalesforceError as exc:
        checks.append(Check("salesforce", "Lead describe", "fail", first_line(exc),
                            "give the integration user read access to Leads"))
        return checks
    checks += salesforce_field_checks(connector.mapping.objects["Lead"].fields, org_rules, config)
    routing = getattr(rules, "routing", None)
    if routing is not None:
        queues = getattr(routing, "queues", {}) or {}
        try:
            found = routing_owners(connector, [str(u) for u in routing.users],
                                   [str(q.owner_id) for q in queues.values()])
        except SalesforceError as exc:
            checks.append(Check("salesforce", "routing users", "fail", first_line(exc), ""))
        else:
            checks += routing_checks(routing.users, queues, found, config)
    return checks


# ------------------------------------------------------------------------------------------------- marketo, hubspot


def marketo_field_checks(mapping: Any, writable: tuple[str, ...], describe: list[dict[str, Any]]) -> list[Check]:
    """Marketo "Describe Lead" (result: [{displayName, dataType, length, rest: {name, readOnly}}]) against the
    mapping: every mapped field has a REST name; fields written are not read-only."""
    rest = {str(f["rest"]["name"]): f for f in describe if isinstance(f.get("rest"), dict) and f["rest"].get("name")}
    checks = []
    for column, rule in mapping.fields.items():
        entry = rest.get(rule.source)
        if entry is None:
            checks.append(Check("marketo", f"field {rule.source}", "fail", "not in the lead describe (REST)",
                                f"create the field in Marketo (Admin > Field Management) or remap {column}"))
        elif column in writable and entry["rest"].get("readOnly"):
            checks.append(Check("marketo", f"field {rule.source}", "fail", "read-only through the REST API",
                                f"stop writing {column} or make the field writable"))
    bad = len(checks)
    checks.insert(0, Check("marketo", "mapped fields", "fail" if bad else "ok",
                           f"{len(mapping.fields) - bad} of {len(mapping.fields)} present and usable"))
    return checks


def _marketo(connector: Any, config: str) -> list[Check]:
    from leadflow.connectors.marketo import MarketoError

    # Marketo REST API, "Authentication" (client credentials → access_token), "Describe Lead"
    # (GET /rest/v1/leads/describe.json) and "Usage" (GET /rest/v1/stats/usage.json: calls used today):
    # https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/authentication
    # https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/lead-database/leads
    try:
        connector._token_value()
    except (LeadflowError, requests.RequestException) as exc:
        return [Check("marketo", "login", "fail", first_line(exc),
                      f"check systems.marketo (base_url, client_id, client_secret) in {config}")]
    checks = [Check("marketo", "login", "ok", connector.credentials.base_url),
              Check("marketo", "API version", "ok", "REST v1")]
    try:
        usage = connector._call("GET", "/rest/v1/stats/usage.json")
        used = sum(int(day.get("total", 0)) for day in usage.get("result", []) if isinstance(day, dict))
        checks.append(Check("marketo", "API budget", "warn" if used >= 0.9 * MARKETO_DAILY_QUOTA else "ok",
                            f"{used:,} calls used today of the default {MARKETO_DAILY_QUOTA:,} daily quota; leadflow "
                            f"budget {connector.budget.limit or 'unlimited'} calls per run"))
    except MarketoError as exc:
        checks.append(Check("marketo", "API budget", "skip", f"usage not readable ({first_line(exc)}); leadflow budget "
                            f"{connector.budget.limit or 'unlimited'} calls per run"))
    try:
        describe = connector._call("GET", "/rest/v1/leads/describe.json")
    except MarketoError as exc:
        checks.append(Check("marketo", "mapped fields", "skip", f"field check skipped: lead describe not available "
                            f"({first_line(exc)})"))
        return checks
    return checks + marketo_field_checks(connector.mapping, tuple(connector.writable_columns),
                                         list(describe.get("result") or []))


def hubspot_field_checks(mapping: Any, properties: list[dict[str, Any]]) -> list[Check]:
    """HubSpot "Properties" (GET /crm/v3/properties/contacts → results: [{name, type, options: [{value}],
    modificationMetadata: {readOnlyValue}}]) against the mapping."""
    by_name = {str(p.get("name")): p for p in properties}
    checks = []
    for column, spec in mapping.fields.items():
        prop = by_name.get(spec.property)
        name = f"property {spec.property}"
        if prop is None:
            checks.append(Check("hubspot", name, "fail", "no such contact property",
                                f"create it in HubSpot (Settings > Properties) or remap {column}"))
            continue
        if spec.writable and (prop.get("modificationMetadata") or {}).get("readOnlyValue"):
            checks.append(Check("hubspot", name, "fail", "read-only value", f"set writable: false for {column}"))
        if spec.type == "enumeration" and spec.options:
            have = {str(o.get("value")) for o in prop.get("options") or []}
            absent = [o for o in spec.options if o not in have]
            if absent and prop.get("options") is not None:
                checks.append(Check("hubspot", name, "fail", f"options lack {', '.join(map(repr, absent))}",
                                    "add the options to the property in HubSpot"))
    bad = len({c.item for c in checks})
    checks.insert(0, Check("hubspot", "mapped fields", "fail" if checks else "ok",
                           f"{len(mapping.fields) - bad} of {len(mapping.fields)} present and usable"))
    return checks


def _hubspot(connector: Any, config: str) -> list[Check]:
    from leadflow.connectors.hubspot import HubspotAuthError, HubspotError

    # HubSpot "Properties" API: https://developers.hubspot.com/docs/api-reference/latest/crm/properties/guide.md
    # (needs the crm.schemas.contacts.read scope); a private app token has no login of its own, so the first call
    # is the login check (401 = token refused).
    checks: list[Check] = []
    budget = f"leadflow budget {connector.budget.limit or 'unlimited'} calls per run"
    try:
        payload = connector._request("GET", "/crm/v3/properties/contacts")
    except HubspotAuthError as exc:
        if exc.status == 401:
            return [Check("hubspot", "login", "fail", first_line(exc), f"check systems.hubspot.token in {config}")]
        return [Check("hubspot", "login", "ok", "token accepted"),
                Check("hubspot", "API budget", "ok", budget),
                Check("hubspot", "mapped fields", "skip", "field check skipped: the token lacks "
                      "crm.schemas.contacts.read")]
    except HubspotError as exc:
        if exc.status != 404:
            return [Check("hubspot", "login", "fail", first_line(exc), "")]
        checks = [Check("hubspot", "login", "ok", "token accepted"), Check("hubspot", "API version", "ok", "CRM v3"),
                  Check("hubspot", "API budget", "ok", budget),
                  Check("hubspot", "mapped fields", "skip", "field check skipped: properties endpoint not available")]
        return checks
    checks = [Check("hubspot", "login", "ok", "token accepted"), Check("hubspot", "API version", "ok", "CRM v3"),
              Check("hubspot", "API budget", "ok", budget)]
    results = payload.get("results") if isinstance(payload, dict) else None
    return checks + hubspot_field_checks(connector.mapping, list(results or []))


# ------------------------------------------------------------------------------------------------- preflight


def preflight(rules: Any, *, systems: list[str] | None = None, connectors: Mapping[str, Any] | None = None,
              connect: Callable[..., Any] | None = None) -> DoctorReport:
    """Run every check for `systems` (default: all configured) of `rules` (leadflow.pipeline.config.Rules). `connectors`:
    ready connectors to use (e.g. the sync's own, so the Lead describe is fetched once); others are built from the
    config and closed again."""
    from leadflow.connectors.registry import connect as default_connect

    build = connect or default_connect
    report = DoctorReport(config=str(rules.source))
    for system in systems or rules.systems.names:
        own = connectors is None or system not in connectors
        try:
            connector = connectors[system] if connectors is not None and not own else \
                build(system, rules.systems, origin=str(rules.source))
        except LeadflowError as exc:
            report.checks.append(Check(system, "config", "fail", first_line(exc),
                                       f"fix systems.{system} in {rules.source}"))
            continue
        try:
            if system == "salesforce":
                report.checks += _salesforce(connector, rules, report.config)
            elif system == "marketo":
                report.checks += _marketo(connector, report.config)
            elif system == "hubspot":
                report.checks += _hubspot(connector, report.config)
        except LeadflowError as exc:  # a stop (budget, quota) mid-check
            report.checks.append(Check(system, "checks", "fail", first_line(exc), ""))
        finally:
            if own and hasattr(connector, "close"):
                connector.close()
    return report
