"""A running collector server (uvicorn on a free port) over a migrated store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from collector.api import create_app
from tests.conftest import free_port
from throughline.config import Settings


@dataclass
class RunningServer:
    url: str
    app: FastAPI
    registry: CollectorRegistry
    engine: Engine

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels or {}) or 0.0


def start_server(app: FastAPI, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("collector server did not start")
        time.sleep(0.02)
    return server, thread


@pytest.fixture
def serve_collector(engine: Engine) -> Iterator[Callable[..., RunningServer]]:
    """Start a collector on the test store; keyword arguments go to the `server` settings."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(settings: dict[str, Any] | None = None, **server: Any) -> RunningServer:
        port = free_port()
        config = Settings(**(settings or {}), server={"port": port, **server})
        registry = CollectorRegistry()
        app = create_app(engine, registry, config)
        running.append(start_server(app, port))
        return RunningServer(f"http://127.0.0.1:{port}", app, registry, engine)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=20)
