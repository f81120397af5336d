"""The five sandbox systems on free ports, on manual clocks the tests move."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.clock import ManualClock
from sandbox.faults import profile
from sandbox.servers import SandboxServers
from sandbox.service import SystemService
from sandbox.services import SYSTEMS, build_services
from tests.sandbox.sink import WebhookSink

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@dataclass
class RunningSandbox:
    urls: dict[str, str]
    services: dict[str, SystemService]
    sim: ManualClock
    wall: ManualClock


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    sim, wall = ManualClock(START), ManualClock(START)
    services = build_services(
        Path(tmp_path_factory.mktemp("sandbox")),
        seed=7,
        faults={s: profile("none") for s in SYSTEMS},
        sim_clock=sim,
        wall_clock=wall,
        admin_key="test-admin",
    )
    servers = SandboxServers(services, dict.fromkeys(SYSTEMS, 0))
    servers.start()
    yield RunningSandbox(servers.urls, services, sim, wall)
    servers.stop()


@pytest.fixture(autouse=True)
def _faults_off_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        running: RunningSandbox = request.getfixturevalue("sandbox")
        for service in running.services.values():
            service.faults.use_profile("none")


@pytest.fixture(scope="session")
def sink() -> Iterator[WebhookSink]:
    receiver = WebhookSink()
    receiver.start()
    yield receiver
    receiver.stop()
