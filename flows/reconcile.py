"""`map_crm_reconcile`: leads in the MAP (Marketo) that never reached the CRM (Salesforce), and CRM leads and
contacts the MAP does not know, matched by normalized e-mail. Publishes a table and a markdown artifact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from leadflow.pipeline.config import load_rules
from leadflow.connectors.registry import connect
from leadflow.pipeline.errors import ConfigError

EXAMPLES = 10


def normalize_emails(values: pd.Series) -> pd.Series:
    """Trimmed, lower-cased addresses without a `mailto:` prefix; anything without an `@` becomes NA."""
    text = values.astype("string").str.strip().str.lower().str.removeprefix("mailto:").str.strip()
    return text.where(text.str.contains("@", regex=False).fillna(False).astype(bool))


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def crm_emails(connector: Any, since: datetime | None) -> pd.DataFrame:
    """Every Salesforce Lead (converted ones too) and Contact: record_id, object, email (normalized)."""
    frames = []
    for sobject in ("Lead", "Contact"):
        for page in connector.pull_objects(sobject, since=since, fields=["Email"]):
            frames.append(pd.DataFrame({"record_id": page["Id"], "object": sobject,
                                        "email": normalize_emails(page["Email"])}))
    if not frames:
        return pd.DataFrame({"record_id": pd.Series(dtype="string"), "object": pd.Series(dtype="string"),
                             "email": pd.Series(dtype="string")})
    return pd.concat(frames, ignore_index=True).astype("string")


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def map_emails(connector: Any, since: datetime | None) -> pd.DataFrame:
    """Every Marketo lead changed since `since` (all: None): record_id, object, email (normalized)."""
    frames = [pd.DataFrame({"record_id": page["lead_id"], "object": "Lead", "email": normalize_emails(page["email"])})
              for page in connector.pull(since)]
    if not frames:
        return pd.DataFrame({"record_id": pd.Series(dtype="string"), "object": pd.Series(dtype="string"),
                             "email": pd.Series(dtype="string")})
    return pd.concat(frames, ignore_index=True).drop_duplicates("record_id", keep="last").astype("string")


def reconcile(crm: pd.DataFrame, mapped: pd.DataFrame) -> dict[str, Any]:
    """Counts and examples of e-mails on one side only."""
    crm_set, map_set = set(crm["email"].dropna()), set(mapped["email"].dropna())
    map_only, crm_only = sorted(map_set - crm_set), sorted(crm_set - map_set)
    return {
        "crm_records": len(crm), "map_records": len(mapped),
        "crm_without_email": int(crm["email"].isna().sum()), "map_without_email": int(mapped["email"].isna().sum()),
        "crm_emails": len(crm_set), "map_emails": len(map_set), "in_both": len(crm_set & map_set),
        "map_only": len(map_only), "crm_only": len(crm_only),
        "map_only_examples": _examples(mapped, map_only), "crm_only_examples": _examples(crm, crm_only),
    }


def _examples(frame: pd.DataFrame, emails: list[str]) -> list[dict[str, str]]:
    picked = frame[frame["email"].isin(emails[:EXAMPLES])].drop_duplicates("email")
    return [{"email": str(r.email), "record_id": str(r.record_id), "object": str(r.object)}
            for r in picked.itertuples()]


@flow(name="map_crm_reconcile", log_prints=False)
def map_crm_reconcile(config_path: str = "leadflow.yaml", lookback_days: int | None = None) -> dict[str, Any]:
    """Compare the MAP's and the CRM's leads by normalized e-mail (everything, or changed in the last
    `lookback_days`); returns the counts and publishes them with examples."""
    rules = load_rules(Path(config_path) if config_path else None)
    for system in ("salesforce", "marketo"):
        if system not in rules.systems.names:
            raise ConfigError(rules.source, f"{system} is not configured: reconcile needs both the CRM (salesforce) "
                              "and the MAP (marketo)", yaml_path=f"systems.{system}")
    since = datetime.now(UTC) - timedelta(days=lookback_days) if lookback_days else None
    crm = crm_emails(connect("salesforce", rules.systems, origin=rules.source), since)
    mapped = map_emails(connect("marketo", rules.systems, origin=rules.source), since)
    result = reconcile(crm, mapped)
    counts = {k: v for k, v in result.items() if not k.endswith("_examples")}
    get_run_logger().info("reconcile: %s", counts)
    rows = [{"side": "MAP only (never reached the CRM)", **e} for e in result["map_only_examples"]] + \
           [{"side": "CRM only (not in the MAP)", **e} for e in result["crm_only_examples"]]
    create_table_artifact(key="map-crm-reconcile-examples", table=rows or [{"side": "none", "email": "",
                                                                            "record_id": "", "object": ""}],
                          description="Examples of leads on one side only")
    window = f"changed in the last {lookback_days} days" if lookback_days else "all records"
    lines = [f"# MAP ↔ CRM reconcile ({window})", "", "| | count |", "| --- | ---: |",
             *(f"| {k.replace('_', ' ')} | {v} |" for k, v in counts.items()), ""]
    for title, key in (("MAP only (never reached the CRM)", "map_only_examples"),
                       ("CRM only (not in the MAP)", "crm_only_examples")):
        lines += [f"## {title}", ""] + [f"- `{e['email']}` ({e['object']} {e['record_id']})" for e in result[key]]
        lines += [""] if result[key] else ["- none", ""]
    create_markdown_artifact(key="map-crm-reconcile", markdown="\n".join(lines),
                             description=f"{counts['map_only']} MAP-only, {counts['crm_only']} CRM-only")
    return {**counts, "lookback_days": lookback_days, "map_only_examples": result["map_only_examples"],
            "crm_only_examples": result["crm_only_examples"]}
