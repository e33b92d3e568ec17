"""A local firmographics provider: `GET /v1/companies/find?domain=…` over HTTPS on 127.0.0.1, with a bearer key.

Answers are deterministic, derived from a hash of the domain and the seed: about `known_share` of company domains
are known (employees log-uniform 1..200k, annual revenue 150k-300k per employee, one of `INDUSTRIES`); free-mail
domains (gmail.com, …) never are. Unknown → 404, wrong or missing key → 401. `FaultPlan` makes the next N
matching requests fail; the route regex is matched against `GET /v1/companies/find?domain=<domain>`, so a fault
can target one domain. Fault kinds: `status` (`status=500`, optional `retry_after=`), `malformed` (200, not
JSON), `wrong_types` (200, employees as a string), `delay` (`seconds=`, then the normal answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from leadflow.sandbox.faults import FaultPlan
from leadflow.sandbox.server import BackgroundServer
from leadflow.sandbox.tls import self_signed_certificate

FIND_PATH: Final = "/v1/companies/find"
MAX_EMPLOYEES: Final = 200_000
INDUSTRIES: Final[tuple[str, ...]] = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Telecommunications",
    "Energy",
    "Logistics",
    "Media",
    "Construction",
    "Professional Services",
    "Hospitality",
    "Insurance",
    "Real Estate",
)


FREE_EMAIL_DOMAINS: Final = Path(__file__).resolve().parents[1] / "reference" / "free_email_domains.txt"


@cache
def _free_mail() -> tuple[frozenset[str], frozenset[str]]:
    """(exact domains, `name.*` bases) from the reference list; read here so the emulator needs no pipeline code."""
    exact: set[str] = set()
    bases: set[str] = set()
    for line in FREE_EMAIL_DOMAINS.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry.endswith(".*"):
            bases.add(entry[:-2])
        elif entry:
            exact.add(entry)
    return frozenset(exact), frozenset(bases)


def _is_free_domain(domain: str) -> bool:
    # a real provider knows gmail.com is nobody's company; `yahoo.*` covers yahoo.de, yahoo.co.uk, …
    exact, bases = _free_mail()
    return domain in exact or domain.split(".", 1)[0] in bases and domain.count(".") <= 2


@dataclass
class EnrichmentProvider:
    """The emulator's state: the key it accepts, its seed, its faults and how many requests it served."""

    api_key: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    seed: int = 7
    known_share: float = 0.8
    faults: FaultPlan = field(default_factory=FaultPlan)
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def truth(self, domain: str) -> dict[str, Any] | None:
        """The firmographics served for `domain`, or None when the provider does not know it."""
        domain = domain.strip().lower()
        if not domain or "." not in domain or _is_free_domain(domain):
            return None
        digest = hashlib.sha256(f"{self.seed}:{domain}".encode()).digest()
        u = [int.from_bytes(digest[i : i + 8], "big") / 2**64 for i in (0, 8, 16)]
        if u[0] >= self.known_share:
            return None
        employees = max(1, min(MAX_EMPLOYEES, round(math.exp(u[1] * math.log(MAX_EMPLOYEES)))))
        per_employee = 150_000 + 150_000 * u[2]
        return {
            "domain": domain,
            "employees": employees,
            "annual_revenue": float(round(employees * per_employee, -3)),
            "industry": INDUSTRIES[int.from_bytes(digest[24:32], "big") % len(INDUSTRIES)],
        }

    def count(self) -> None:
        with self._lock:
            self.calls += 1


def create_app(provider: EnrichmentProvider) -> FastAPI:
    """The ASGI app serving `provider`."""
    app = FastAPI(title="leadflow enrichment sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(FIND_PATH)
    async def find(request: Request) -> Response:
        provider.count()
        domain = (request.query_params.get("domain") or "").strip().lower()
        fault = provider.faults.take("GET", f"{FIND_PATH}?domain={domain}")
        if fault is not None and fault.kind == "delay":
            # asyncio, so a slow answer holds up only this request, not the whole server
            await asyncio.sleep(float((fault.detail or {}).get("seconds", 1.0)))
            fault = None
        token = request.headers.get("authorization", "")
        if not secrets.compare_digest(token.encode(), f"Bearer {provider.api_key}".encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if fault is not None:
            return _faulty(fault.kind, fault.detail or {}, domain)
        if not domain or "." not in domain:
            return JSONResponse({"error": "invalid_domain"}, status_code=400)
        found = provider.truth(domain)
        if found is None:
            return JSONResponse({"error": "not_found", "domain": domain}, status_code=404)
        return JSONResponse(found)

    return app


def _faulty(kind: str, detail: dict[str, Any], domain: str) -> Response:
    if kind == "status":
        status = int(detail.get("status", 500))
        headers = {"Retry-After": str(detail["retry_after"])} if "retry_after" in detail else None
        return JSONResponse({"error": f"injected {status}"}, status_code=status, headers=headers)
    if kind == "malformed":
        return Response('{"domain": "' + domain + '", "employees": 12', media_type="application/json")
    if kind == "wrong_types":
        return JSONResponse({"domain": domain, "employees": "lots", "annual_revenue": "a few million",
                             "industry": 42})
    raise ValueError(f"unknown enrichment sandbox fault kind {kind!r}")


@dataclass
class RunningEnrichment:
    """A started emulator: its URL, key and certificate, the faults to inject and the requests it served."""

    url: str
    api_key: str = field(repr=False)
    cert_path: Path
    provider: EnrichmentProvider
    _sessions: list[requests.Session] = field(default_factory=list, repr=False)

    @property
    def faults(self) -> FaultPlan:
        return self.provider.faults

    @property
    def calls(self) -> int:
        return self.provider.calls

    def truth(self, domain: str) -> dict[str, Any] | None:
        """What the emulator serves for `domain` (None = 404)."""
        return self.provider.truth(domain)

    def session(self) -> requests.Session:
        """A requests session that trusts the sandbox certificate and ignores proxies / REQUESTS_CA_BUNDLE."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.cert_path)
        self._sessions.append(session)
        return session

    def close_sessions(self) -> None:
        """Close every session handed out: an open TLS keep-alive connection holds up the server's shutdown."""
        for session in self._sessions:
            session.close()


@contextmanager
def running_enrichment(
    folder: Path, *, seed: int = 7, api_key: str | None = None, known_share: float = 0.8
) -> Iterator[RunningEnrichment]:
    """Serve the emulator over HTTPS on 127.0.0.1 (self-signed certificate in `folder`); a random key by default."""
    if not 0 <= known_share <= 1:
        raise ValueError("known_share must be between 0 and 1")
    provider = EnrichmentProvider(api_key=api_key or secrets.token_hex(16), seed=seed, known_share=known_share)
    cert, key = self_signed_certificate(folder)
    with BackgroundServer(create_app(provider), certfile=cert, keyfile=key) as server:
        running = RunningEnrichment(server.url, provider.api_key, cert, provider)
        try:
            yield running
        finally:
            running.close_sessions()
