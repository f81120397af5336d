"""The collector app's operational endpoints."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from collector.api import create_app
from store.engine import make_engine


def test_healthz_is_503_with_the_fix_when_the_schema_is_behind(tmp_path: Path) -> None:
    client = TestClient(create_app(make_engine(f"sqlite:///{tmp_path}/empty.db")))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "run `throughline migrate`" in response.json()["store"]


def test_metrics_read_the_outbox_from_the_store(engine: Engine) -> None:
    registry = CollectorRegistry()
    client = TestClient(create_app(engine, registry))
    assert client.get("/healthz").status_code == 200
    assert registry.get_sample_value("throughline_store_up") == 1
    assert registry.get_sample_value("throughline_sync_messages", {"state": "dead"}) == 0
    assert "throughline_store_up 1.0" in client.get("/metrics").text
