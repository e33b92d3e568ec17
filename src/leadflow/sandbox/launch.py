"""Start the sandboxes together and write a run config that points leadflow at them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Sandboxes:
    """Running sandboxes: their URLs and the config file that connects leadflow to them."""

    folder: Path
    config_path: Path
    urls: dict[str, str] = field(default_factory=dict)
    handles: dict[str, Any] = field(default_factory=dict, repr=False)


def _secret_file(folder: Path, name: str, value: str) -> dict[str, str]:
    path = folder / f"{name}.secret"
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return {"file": str(path.resolve())}


ALL_SYSTEMS = ("salesforce", "marketo", "hubspot")


@contextmanager
def running_sandboxes(
    folder: Path,
    *,
    leads: int = 500,
    seed: int = 7,
    systems: tuple[str, ...] = ALL_SYSTEMS,
    enrichment: bool = False,
    routing: bool = False,
) -> Iterator[Sandboxes]:
    """Serve the sandboxes on 127.0.0.1, state persisted under `folder`; yields them with `folder/leadflow.yaml`.

    `enrichment=True` also serves the firmographics provider emulator and adds a top-level `enrichment:` section
    (beside `systems:`) pointing at it. `routing=True` (with Salesforce) writes `folder/routing.yaml` for the
    sandbox org's users and a `routing:` section, so the sync assigns leads too.
    """
    from leadflow.sandbox.hubspot import running_hubspot
    from leadflow.sandbox.marketo import running_marketo
    from leadflow.sandbox.salesforce import running_salesforce

    folder.mkdir(parents=True, exist_ok=True)
    unknown = set(systems) - set(ALL_SYSTEMS)
    if unknown:
        raise ValueError(f"no sandbox for {sorted(unknown)}; known: {list(ALL_SYSTEMS)}")
    config: dict[str, Any] = {}
    boxes = Sandboxes(folder, folder / "leadflow.yaml")
    with ExitStack() as stack:
        if "salesforce" in systems:
            sf = stack.enter_context(
                running_salesforce(folder, leads=leads, seed=seed, state_path=folder / "salesforce.json")
            )
            config["salesforce"] = {
                "login_url": sf.url,
                "client_id": sf.client_id,
                "client_secret": _secret_file(folder, "salesforce", sf.client_secret),
                "ca_bundle": str(Path(sf.cert_path).resolve()),
            }
            boxes.urls["salesforce"], boxes.handles["salesforce"] = sf.url, sf
        if "marketo" in systems:
            marketo = stack.enter_context(running_marketo(persist_to=folder / "marketo.json", n=leads, seed=seed))
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
            users = sorted(boxes.handles["salesforce"].org.objects["User"])
            (folder / "routing.yaml").write_text(sandbox_routing(users), encoding="utf-8")
            document["routing"] = {"rules": "routing.yaml"}
        header = "# Written by `leadflow sandbox`: points leadflow at the local sandboxes. Secrets are in *.secret.\n"
        boxes.config_path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        yield boxes


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
