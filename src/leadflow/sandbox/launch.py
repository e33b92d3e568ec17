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


@contextmanager
def running_sandboxes(folder: Path, *, leads: int = 500, seed: int = 7) -> Iterator[Sandboxes]:
    """Serve every sandbox on 127.0.0.1, state persisted under `folder`; yields them with `folder/leadflow.yaml`."""
    from leadflow.sandbox.hubspot import running_hubspot
    from leadflow.sandbox.marketo import running_marketo
    from leadflow.sandbox.salesforce import running_salesforce

    folder.mkdir(parents=True, exist_ok=True)
    systems: dict[str, Any] = {}
    with ExitStack() as stack:
        sf = stack.enter_context(
            running_salesforce(folder, leads=leads, seed=seed, state_path=folder / "salesforce.json")
        )
        systems["salesforce"] = {
            "login_url": sf.url,
            "client_id": sf.client_id,
            "client_secret": _secret_file(folder, "salesforce", sf.client_secret),
            "ca_bundle": str(Path(sf.cert_path).resolve()),
        }
        marketo = stack.enter_context(running_marketo(persist_to=folder / "marketo.json", n=leads, seed=seed))
        systems["marketo"] = {
            "base_url": marketo.url,
            "client_id": marketo.client_id,
            "client_secret": _secret_file(folder, "marketo", marketo.client_secret),
        }
        hubspot = stack.enter_context(running_hubspot(state_file=folder / "hubspot.json", n=leads, seed=seed))
        systems["hubspot"] = {"base_url": hubspot.url, "token": _secret_file(folder, "hubspot", hubspot.token)}
        config_path = folder / "leadflow.yaml"
        header = "# Written by `leadflow sandbox`: points leadflow at the local sandboxes. Secrets are in *.secret.\n"
        config_path.write_text(header + yaml.safe_dump({"systems": systems}, sort_keys=False), encoding="utf-8")
        yield Sandboxes(
            folder,
            config_path,
            urls={"salesforce": sf.url, "marketo": marketo.url, "hubspot": hubspot.url},
            handles={"salesforce": sf, "marketo": marketo, "hubspot": hubspot},
        )
