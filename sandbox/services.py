"""Assemble the five systems: specs, SQLite files, credentials, faults, webhooks."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from pathlib import Path

from sandbox.auth import ApiKeyAuth, Authenticator, OAuth2Issuer
from sandbox.clock import Clock
from sandbox.faults import FaultConfig, FaultInjector
from sandbox.records import RecordStore
from sandbox.service import GroundTruthSource, SystemService, SystemSpec
from sandbox.systems.billing import BillingSpec
from sandbox.systems.clm import ClmSpec
from sandbox.systems.crm import CrmSpec
from sandbox.systems.erp import ErpSpec
from sandbox.systems.psa import PsaSpec
from sandbox.webhooks import WebhookSender

SYSTEMS = ("crm", "clm", "psa", "billing", "erp")
OAUTH_CLIENT_ID = "throughline"
DEFAULT_ADMIN_KEY = "sandbox-admin"


def spec_for(system: str) -> SystemSpec:
    specs: dict[str, Callable[[], SystemSpec]] = {
        "crm": CrmSpec,
        "clm": ClmSpec,
        "psa": PsaSpec,
        "billing": BillingSpec,
        "erp": ErpSpec,
    }
    return specs[system]()


def default_secret(system: str) -> str:
    """The credentials `throughline.config.Systems` defaults to for the sandbox."""
    return f"sandbox-{system}" if system in ("crm", "erp") else f"sandbox-{system}-key"


def _token_ttl(injector: FaultInjector) -> Callable[[], int]:
    """Token lifetime follows the fault settings, so it can be shortened at run time."""

    def ttl() -> int:
        return injector.config.token_ttl_seconds

    return ttl


def build_services(
    directory: Path,
    *,
    seed: int,
    faults: Mapping[str, FaultConfig],
    sim_clock: Clock,
    wall_clock: Clock,
    admin_key: str = DEFAULT_ADMIN_KEY,
    secrets: Mapping[str, str] | None = None,
    ground_truth: Mapping[str, GroundTruthSource] | None = None,
) -> dict[str, SystemService]:
    """One service per system, each with its own SQLite file `<directory>/<system>.db`."""
    directory.mkdir(parents=True, exist_ok=True)
    services: dict[str, SystemService] = {}
    for system in SYSTEMS:
        injector = FaultInjector(
            system, faults[system], random.Random(f"{seed}:faults:{system}"), sim_clock
        )
        secret = (secrets or {}).get(system, default_secret(system))
        auth: Authenticator
        if system in ("crm", "erp"):
            auth = OAuth2Issuer(OAUTH_CLIENT_ID, secret, wall_clock, _token_ttl(injector))
        else:
            auth = ApiKeyAuth(secret)
        services[system] = SystemService(
            spec_for(system),
            RecordStore(directory / f"{system}.db"),
            sim_clock=sim_clock,
            wall_clock=wall_clock,
            injector=injector,
            auth=auth,
            webhooks=WebhookSender(f"/sandbox/{system}", injector, sim_clock),
            admin_key=admin_key,
            ground_truth=(ground_truth or {}).get(system),
        )
    return services
