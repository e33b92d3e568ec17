"""Start the sandboxes together and write a run config that points leadflow at them."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from leadflow.pipeline.errors import LeadflowError


@dataclass
class Sandboxes:
    """Running sandboxes: their URLs and the config file that connects leadflow to them."""

    folder: Path
    config_path: Path
    urls: dict[str, str] = field(default_factory=dict)
    handles: dict[str, Any] = field(default_factory=dict, repr=False)
    setup: Any = None
    """What `leadflow setup salesforce` did to the sandbox org on start (a SetupResult), if it ran."""
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The fault rate set on each sandbox at start (`FaultRate.describe()`), by system."""
    push: dict[str, Any] = field(default_factory=dict)
    """The push outbox of each sandbox that pushes notifications (`leadflow.sandbox.push.Outbox`), by system."""


def _secret_file(folder: Path, name: str, value: str) -> dict[str, str]:
    path = folder / f"{name}.secret"
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return {"file": str(path.resolve())}


ALL_SYSTEMS = ("salesforce", "marketo", "hubspot")


class FaultSettingError(LeadflowError, ValueError):
    """A `faults` setting for the sandboxes that cannot be applied (the CLI prints it as one line, exit 2)."""


def _names(value: Any) -> list[str] | None:
    """A list of names from a list or a comma-separated string (None stays None)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def plan_fault_rates(faults: Mapping[str, Any], systems: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The fault rate each sandbox gets from `{"rate", "kinds"?, "seed"?, "systems"?}`: system → set_rate arguments.

    Without `kinds` each sandbox uses its default transient kinds; with them, each sandbox gets the ones it can serve
    at a rate (none of them: no fault rate there) and a kind no targeted sandbox can serve is an error. Without
    `seed` one is drawn, so a run can be replayed with it."""
    from leadflow.sandbox.faults import HUBSPOT_FAULTS, MARKETO_FAULTS, SALESFORCE_FAULTS, FaultPlan

    catalogs = {"salesforce": SALESFORCE_FAULTS, "marketo": MARKETO_FAULTS, "hubspot": HUBSPOT_FAULTS}
    unknown = set(faults) - {"rate", "kinds", "seed", "systems"}
    if unknown:
        raise FaultSettingError(f"faults: unknown setting(s) {sorted(unknown)}; known: rate, kinds, seed, systems")
    if "rate" not in faults:
        raise FaultSettingError("faults: rate is required (0 to 1)")
    targets = _names(faults.get("systems")) or list(systems)
    strays = [name for name in targets if name not in systems]
    if strays:
        raise FaultSettingError(f"faults: systems {strays} are not among the sandboxes started ({list(systems)})")
    kinds = _names(faults.get("kinds"))
    if kinds == []:
        raise FaultSettingError("faults: kinds is empty; leave it out for each sandbox's default transient kinds")
    seed = faults.get("seed")
    try:  # the rate and the seed themselves, before any sandbox starts
        FaultPlan().set_rate(faults["rate"], ["any"], seed=seed)
    except ValueError as exc:
        raise FaultSettingError(f"faults: {exc}") from None
    for kind in kinds or ():
        if not any(kind in catalogs[name].rate for name in targets):
            usable = "; ".join(f"{name}: {', '.join(catalogs[name].rate)}" for name in targets) or "none started"
            why = "".join(f"; {name} refuses it: {catalogs[name].refused[kind]}" for name in targets
                          if kind in catalogs[name].refused)
            raise FaultSettingError(f"fault kind {kind!r} is not served at a rate by any sandbox started "
                                    f"({usable}){why}")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    planned: dict[str, dict[str, Any]] = {}
    for name in targets:
        chosen = list(catalogs[name].default_rate) if kinds is None else [k for k in kinds if k in catalogs[name].rate]
        if chosen:
            planned[name] = {"rate": faults["rate"], "kinds": chosen, "seed": seed}
    return planned


@contextmanager
def running_sandboxes(
    folder: Path,
    *,
    leads: int = 500,
    seed: int = 7,
    systems: tuple[str, ...] = ALL_SYSTEMS,
    enrichment: bool = False,
    routing: bool = False,
    stock_org: bool = True,
    setup: bool = True,
    faults: Mapping[str, Any] | None = None,
    accounts: int | None = None,
    contacts: int | None = None,
    push: Mapping[str, Any] | None = None,
    push_time_scale: float = 1.0,
    start: datetime | None = None,
) -> Iterator[Sandboxes]:
    """Serve the sandboxes on 127.0.0.1, state persisted under `folder`; yields them with `folder/leadflow.yaml`.

    Salesforce starts as a stock org (`stock_org`: only standard fields) and, with `setup`, leadflow's own setup
    then creates its custom fields and permission set over the API; `setup=False` leaves that to the user
    (`leadflow doctor` fails until `leadflow setup salesforce` ran). `enrichment=True` also serves the firmographics provider emulator and adds a top-level `enrichment:` section
    (beside `systems:`) pointing at it. `routing=True` (with Salesforce) writes `folder/routing.yaml` for the
    sandbox org's users and a `routing:` section, so the sync assigns leads too. `faults` (`{"rate": 0.1, "kinds":
    [...], "seed": 7, "systems": [...]}`, all but rate optional) sets a fault rate on the sandboxes once they are up
    (after setup): see `plan_fault_rates`; `boxes.faults` says what each got. `accounts` / `contacts`: how many the
    Salesforce org gets on first start (default leads // 10 and leads // 4). `push` (system → `PushTarget`, see
    `push_targets`): those sandboxes push notifications there once up (`pushing`); none by default. `start`: the
    seed's base time for Salesforce and Marketo (their records are dated before it); default each seed's fixed base.
    """
    from leadflow.sandbox.hubspot import running_hubspot
    from leadflow.sandbox.marketo import running_marketo
    from leadflow.sandbox.salesforce import running_salesforce

    folder.mkdir(parents=True, exist_ok=True)
    unknown = set(systems) - set(ALL_SYSTEMS)
    if unknown:
        raise ValueError(f"no sandbox for {sorted(unknown)}; known: {list(ALL_SYSTEMS)}")
    rates = plan_fault_rates(faults, tuple(systems)) if faults is not None else {}
    config: dict[str, Any] = {}
    boxes = Sandboxes(folder, folder / "leadflow.yaml")
    with ExitStack() as stack:
        if "salesforce" in systems:
            sf = stack.enter_context(
                running_salesforce(folder, leads=leads, seed=seed, state_path=folder / "salesforce.json",
                                   stock_org=stock_org, accounts=accounts, contacts=contacts, start=start)
            )
            config["salesforce"] = {
                "login_url": sf.url,
                "client_id": sf.client_id,
                "client_secret": _secret_file(folder, "salesforce", sf.client_secret),
                "ca_bundle": str(Path(sf.cert_path).resolve()),
            }
            boxes.urls["salesforce"], boxes.handles["salesforce"] = sf.url, sf
        if "marketo" in systems:
            marketo = stack.enter_context(running_marketo(persist_to=folder / "marketo.json", n=leads, seed=seed,
                                                          **({} if start is None else {"start": start})))
            config["marketo"] = {
                "base_url": marketo.url,
                "client_id": marketo.client_id,
                "client_secret": _secret_file(folder, "marketo", marketo.client_secret),
            }
            boxes.urls["marketo"], boxes.handles["marketo"] = marketo.url, marketo
        if "hubspot" in systems:
            hubspot = stack.enter_context(running_hubspot(state_file=folder / "hubspot.json", n=leads, seed=seed))
            config["hubspot"] = {"base_url": hubspot.url, "token": _secret_file(folder, "hubspot", hubspot.token)}
            boxes.urls["hubspot"], boxes.handles["hubspot"] = hubspot.url, hubspot
        document: dict[str, Any] = {"systems": config}
        if enrichment:
            from leadflow.sandbox.enrichment import running_enrichment

            provider = stack.enter_context(running_enrichment(folder, seed=seed))
            document["enrichment"] = {
                "provider": {
                    "base_url": provider.url,
                    "api_key": _secret_file(folder, "enrichment", provider.api_key),
                    "ca_bundle": str(Path(provider.cert_path).resolve()),
                    # A local emulator: no reason to pace it like a paid API (10/s by default).
                    "requests_per_second": 200,
                    "max_calls_per_run": 5000,
                }
            }
            boxes.urls["enrichment"], boxes.handles["enrichment"] = provider.url, provider
        if routing and "salesforce" in systems:
            org = boxes.handles["salesforce"].org
            unassigned = sandbox_unassigned_owners(org)
            # Routing hands leads to the reps: people who are active, not the default owner or the integration user.
            reps = sorted(uid for uid, user in org.objects["User"].items()
                          if user.get("IsActive") and uid not in unassigned)
            (folder / "routing.yaml").write_text(sandbox_routing(reps), encoding="utf-8")
            document["routing"] = {"rules": "routing.yaml", "unassigned_owners": unassigned}
        header = "# Written by `leadflow sandbox`: points leadflow at the local sandboxes. Secrets are in *.secret.\n"
        boxes.config_path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        if setup and "salesforce" in systems:
            boxes.setup = setup_salesforce_sandbox(boxes.config_path)
        for name, args in rates.items():
            handle = boxes.handles[name]
            plan = handle.instance.faults if name == "marketo" else handle.faults
            boxes.faults[name] = plan.set_rate(args["rate"], args["kinds"], seed=args["seed"]).describe()
        if push:
            boxes.push = stack.enter_context(pushing(boxes, push, time_scale=push_time_scale))
        yield boxes


PUSH_SECRET_ENV: dict[str, str] = {"hubspot": "LEADFLOW_SANDBOX_HUBSPOT_CLIENT_SECRET",
                                   "marketo": "LEADFLOW_SANDBOX_MARKETO_WEBHOOK_SECRET"}
"""Where `push_targets` reads the secret HubSpot signs webhooks with (the app's client secret) and the value of
Marketo's webhook header; unset, one is drawn and kept in `<folder>/<system>-push.secret`."""


def push_targets(folder: Path, urls: Mapping[str, str | None], *, verify: bool | str = True) -> dict[str, Any]:
    """A `PushTarget` for each system given a URL. Salesforce outbound messages carry no secret (the listener checks
    the organization id); HubSpot's and Marketo's secrets come from `PUSH_SECRET_ENV`, else from the secret file an
    earlier start wrote, else are drawn and written there (mode 0600), so the receiving side can read them."""
    import os
    import secrets

    from leadflow.sandbox.push import PushTarget

    unknown = set(urls) - set(ALL_SYSTEMS)
    if unknown:
        raise ValueError(f"no sandbox for {sorted(unknown)}; known: {list(ALL_SYSTEMS)}")
    targets: dict[str, Any] = {}
    for name, url in urls.items():
        if not url:
            continue
        secret = ""
        if name in PUSH_SECRET_ENV:
            path = folder / f"{name}-push.secret"
            secret = os.environ.get(PUSH_SECRET_ENV[name], "")
            if not secret and path.is_file():
                secret = path.read_text(encoding="utf-8").strip()
            if not secret:
                folder.mkdir(parents=True, exist_ok=True)
                secret = secrets.token_hex(24)
                _secret_file(folder, f"{name}-push", secret)
        targets[name] = PushTarget(url, secret, verify)
    return targets


@contextmanager
def pushing(boxes: Sandboxes, targets: Mapping[str, Any], *, time_scale: float = 1.0,
            **outbox_options: Any) -> Iterator[dict[str, Any]]:
    """Attach a push outbox to each running sandbox named in `targets` and deliver in the background until exit;
    writes `push.yaml` beside the config: per system the URL, where its secret is (by reference) and the ids the
    notifications carry. Yields system → Outbox."""
    import os

    from leadflow.sandbox.push import Pusher, attach_hubspot, attach_marketo, attach_salesforce

    missing = set(targets) - set(boxes.handles)
    if missing:
        raise ValueError(f"push: {sorted(missing)} not among the sandboxes started ({sorted(boxes.handles)})")
    options = {"time_scale": time_scale} | outbox_options
    outboxes: dict[str, Any] = {}
    for name, target in targets.items():
        handle = boxes.handles[name]
        if name == "salesforce":
            outboxes[name] = attach_salesforce(handle.org, handle.url, target, **options)
        elif name == "hubspot":
            outboxes[name] = attach_hubspot(handle.portal, target, **options)
        elif name == "marketo":
            outboxes[name] = attach_marketo(handle.instance, target, **options)
    described: dict[str, Any] = {}
    for name, box in outboxes.items():
        entry: dict[str, Any] = {"url": box.target.url}
        if name in PUSH_SECRET_ENV:
            path = boxes.folder / f"{name}-push.secret"
            if os.environ.get(PUSH_SECRET_ENV[name]) == box.target.secret:
                entry["secret"] = {"env": PUSH_SECRET_ENV[name]}
            elif path.is_file() and path.read_text(encoding="utf-8").strip() == box.target.secret:
                entry["secret"] = {"file": str(path.resolve())}
        described[name] = entry | box.fmt.describe()
    header = "# Written by `leadflow sandbox`: where the sandboxes push notifications. Secrets by reference only.\n"
    (boxes.folder / "push.yaml").write_text(header + yaml.safe_dump(described, sort_keys=False), encoding="utf-8")
    pusher = Pusher(list(outboxes.values())).start()
    try:
        yield outboxes
    finally:
        pusher.stop()
        for name in outboxes:
            handle = boxes.handles[name]
            if name == "salesforce":
                handle.org.outbound = None
            elif name == "hubspot":
                handle.portal.webhooks = None
            else:
                handle.instance.webhook = None


def setup_salesforce_sandbox(config_path: Path) -> Any:
    """`leadflow setup salesforce` against the sandbox org, as a user would run it: the custom fields leadflow's
    mapping needs, created through the Tooling API, and a permission set for the integration user (idempotent)."""
    from leadflow.pipeline.config import load_rules
    from leadflow.connectors.registry import connect
    from leadflow.connectors.salesforce_setup import setup_salesforce

    rules = load_rules(config_path)
    with connect("salesforce", rules.systems, origin=rules.source) as connector:
        return setup_salesforce(connector, package_dir=config_path.parent / "salesforce-package")


def sandbox_unassigned_owners(org: Any) -> list[str]:
    """The sandbox org's users whose leads are nobody's yet: the default lead owner and the integration user."""
    from leadflow.sandbox.salesforce_seed import DEFAULT_LEAD_OWNER_ID

    owners = [DEFAULT_LEAD_OWNER_ID, getattr(org, "integration_user_id", None)]
    return [uid for uid in dict.fromkeys(owners) if uid and uid in org.objects["User"]]


def sandbox_routing(users: list[str]) -> str:
    """Routing rules for the sandbox org: duplicates held, demo requests and named accounts first, then everyone
    in one weighted round-robin pool (reps always available, so the demo routes at any hour)."""
    document = {
        "version": "sandbox-1",
        "timezone": "UTC",
        "users": {uid: {"name": f"Sandbox rep {k}"} for k, uid in enumerate(users)},
        "pools": {"reps": {"members": [{"user": uid, "weight": 2 if k % 3 == 0 else 1} for k, uid in
                                       enumerate(users)]}},
        "rules": [
            {"name": "possible_duplicate", "when": {"column": "duplicate_of", "exists": True},
             "hold": "possible duplicate of an existing record"},
            {"name": "demo_request", "when": {"column": "lead_source", "in": ["Demo Request", "Contact Sales"]},
             "pool": "reps", "sla_minutes": 10},
            {"name": "named_account", "when": {"column": "account_owner_id", "exists": True},
             "account_owner": True, "otherwise": {"pool": "reps"}, "sla_minutes": 240},
            {"name": "everyone_else", "pool": "reps", "sla_minutes": 1440},
        ],
    }
    return "# Written by `leadflow sandbox` for the sandbox org's users.\n" + yaml.safe_dump(document, sort_keys=False)
