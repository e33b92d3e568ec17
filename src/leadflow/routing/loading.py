"""Reading a routing config and what goes with it: the YAML file, out-of-office files, the CRM's inactive users,
and the rules as text for a runbook (`explain`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from leadflow.pipeline.conditions import describe
from leadflow.pipeline.errors import ConfigError
from leadflow.routing.ownership import Reassign
from leadflow.routing.model import DateRange, RoutingConfig
from leadflow.pipeline.settings import REFERENCE_DIR
from leadflow.pipeline.yamlio import load_yaml, parse_model

__all__ = ["DEFAULT_ROUTING", "availability_from_file", "explain", "load_routing_config", "with_availability"]

DEFAULT_ROUTING: Final[Path] = REFERENCE_DIR / "routing.yaml"


def load_routing_config(path: Path = DEFAULT_ROUTING) -> RoutingConfig:
    """Load and validate a routing YAML; errors name the file and YAML path (`pools.emea.members[0].user`)."""
    return parse_model(RoutingConfig, load_yaml(path), path)


def availability_from_file(path: Path) -> dict[str, list[DateRange]]:
    """Out-of-office ranges from a CSV with columns user_id, from, to (ISO dates, inclusive): user → ranges."""
    out: dict[str, list[DateRange]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"user_id", "from", "to"} - set(reader.fieldnames or [])
            if missing:
                raise ConfigError(str(path), f"missing column(s) {', '.join(sorted(missing))}")
            for row_number, row in enumerate(reader, start=2):
                try:
                    dr = DateRange.model_validate({"from": row["from"].strip(), "to": row["to"].strip()})
                except ValidationError as exc:
                    raise ConfigError(str(path), f"row {row_number}: {exc.errors()[0]['msg']}") from None
                out.setdefault(row["user_id"].strip(), []).append(dr)
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    return out


def explain(config: RoutingConfig) -> str:
    """The rules in order, as text for a runbook."""
    lines = [f"routing {config.version} ({config.timezone}), first match wins:"]
    for i, rule in enumerate(config.rules, start=1):
        when = describe(rule.when) if rule.when is not None else "every other lead (fallback)"
        extra = []
        if rule.sla_minutes:
            extra.append(f"SLA {rule.sla_minutes} min" + (" of working time" if rule.sla_working_hours else ""))
        if isinstance(rule.reassign, Reassign):
            extra.append(rule.reassign.text())
        elif rule.reassign:
            extra.append("re-routes assigned leads")
        lines.append(f"{i}. {rule.name}: if {when} → {rule.text()}" + (f" [{'; '.join(extra)}]" if extra else ""))
    for name, pool in config.pools.items():
        members = ", ".join(f"{config.users[m.user].name} ×{m.weight}" + (f" (cap {m.daily_cap}/day)" if m.daily_cap is not None else "")
                            for m in pool.members)
        lines.append(f"pool {name}: {members}; overflow: {pool.overflow.text() if pool.overflow else '-'}")
    for t in config.territories:
        crit = [f"{k} {', '.join(map(str, getattr(t, k)))}" for k in ("countries", "states", "segments", "industries")
                if getattr(t, k)]
        crit += [f"postal {r.country} {r.start}–{r.end}" for r in t.postal_ranges]
        lines.append(f"territory {t.name}: {'; '.join(crit) or 'everything'} → pool {t.pool}")
    return "\n".join(lines)


def with_availability(
    config: RoutingConfig, out_of_office: dict[str, list[DateRange]] | None = None,
    inactive: set[str] | frozenset[str] = frozenset(), *, origin: str = "availability",
) -> RoutingConfig:
    """`config` with extra out-of-office ranges (from a file) and users the CRM reports inactive; an unknown user
    in the ranges is refused (a typo would otherwise silently keep someone in rotation)."""
    ranges = out_of_office or {}
    unknown = sorted(set(ranges) - set(config.users))
    if unknown:
        raise ConfigError(origin, f"out-of-office for users the routing config does not know: {unknown}")
    users = {
        uid: user.model_copy(update={
            "out_of_office": [*user.out_of_office, *ranges.get(uid, [])],
            "active": user.active and uid not in inactive,
        })
        for uid, user in config.users.items()
    }
    return config.model_copy(update={"users": users})
