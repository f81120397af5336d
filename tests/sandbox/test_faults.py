"""Each fault switched on and off at run time through the admin endpoint, over HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time

import httpx
import pytest

from sandbox.services import SYSTEMS
from tests.sandbox.conftest import RunningSandbox
from tests.sandbox.http import ADMIN, admin_profile, admin_put_faults, client_for
from tests.sandbox.samples import CREATE
from tests.sandbox.sink import WebhookSink


def _injected(url: str) -> list[dict[str, object]]:
    faults: list[dict[str, object]] = httpx.get(f"{url}/admin/faults", headers=ADMIN).json()[
        "injected"
    ]
    return faults


@pytest.mark.parametrize("system", SYSTEMS)
def test_error_rate_answers_5xx_while_on_and_nothing_after(
    sandbox: RunningSandbox, system: str
) -> None:
    url = sandbox.urls[system]
    path, _ = CREATE[system]
    with client_for(url, system) as client:
        admin_put_faults(url, error_rate=1.0)
        statuses = {client.get(path).status_code for _ in range(12)}
        assert statuses <= {500, 502, 503} and len(statuses) >= 2
        admin_put_faults(url, error_rate=0.0)
        assert {client.get(path).status_code for _ in range(5)} == {200}
    assert any(f["kind"] == "error" for f in _injected(url))


def test_an_outage_takes_down_health_and_api_until_switched_off(sandbox: RunningSandbox) -> None:
    url = sandbox.urls["psa"]
    admin_put_faults(url, outage=True)
    assert httpx.get(f"{url}/healthz").status_code == 503
    with client_for(url, "psa") as psa:
        assert psa.get("/api/v1/workspaces").status_code == 503
        # The admin endpoint stays reachable so the outage can be ended.
        admin_put_faults(url, outage=False)
        assert psa.get("/api/v1/workspaces").status_code == 200
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_an_outage_window_on_the_simulated_clock_opens_and_closes(
    sandbox: RunningSandbox,
) -> None:
    url = sandbox.urls["billing"]
    now = sandbox.sim.now()
    window = {"start": now.isoformat(), "end": (now + dt.timedelta(hours=2)).isoformat()}
    admin_put_faults(url, outage_windows=[window])
    assert httpx.get(f"{url}/healthz").status_code == 503
    sandbox.sim.advance(dt.timedelta(hours=2))
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_added_latency_slows_every_request_while_on(sandbox: RunningSandbox) -> None:
    url = sandbox.urls["clm"]
    with client_for(url, "clm") as clm:
        admin_put_faults(url, latency_ms=400)
        started = time.perf_counter()
        assert clm.get("/clm/v2/agreements").status_code == 200
        assert time.perf_counter() - started >= 0.4
        admin_put_faults(url, latency_ms=0)
        started = time.perf_counter()
        assert clm.get("/clm/v2/agreements").status_code == 200
        assert time.perf_counter() - started < 0.4


def test_a_timeout_fault_hangs_past_the_clients_read_timeout(sandbox: RunningSandbox) -> None:
    url = sandbox.urls["erp"]
    with client_for(url, "erp", timeout=0.3) as erp:
        admin_put_faults(url, timeout_rate=1.0, timeout_seconds=1.5)
        with pytest.raises(httpx.ReadTimeout):
            erp.get("/services/rest/record/v1/customers")
        admin_put_faults(url, timeout_rate=0.0)
        assert erp.get("/services/rest/record/v1/customers").status_code == 200
    assert any(f["kind"] == "timeout" for f in _injected(url))


DRIFT = {
    "crm": ("/services/data/v59.0/opportunities", "amount", "totalAmount"),
    "clm": ("/clm/v2/agreements", "legal_entity", "contracting_entity"),
    "psa": ("/api/v1/time_entries", "time_in_minutes", "minutes"),
    "billing": ("/v1/invoices", "amount", "amount_total"),
    "erp": ("/services/rest/record/v1/ar_postings", "tranDate", "trandate"),
}


@pytest.mark.parametrize("system", SYSTEMS)
def test_schema_drift_renames_a_field_while_on(sandbox: RunningSandbox, system: str) -> None:
    url = sandbox.urls[system]
    path, field, renamed = DRIFT[system]
    service = sandbox.services[system]
    resource = next(r for r in service.spec.resources if r.path == path)
    # A record of the drifting kind, as the system's own users would make it.
    record = {"id": f"drift-{system}", "amount": "10.00", "tranDate": "2026-01-05"}
    record["time_in_minutes"] = 60
    record.update({"legal_entity": "US01", "stageName": "Prospecting", "currency": "USD"})
    made = service.store.insert(resource.name, f"drift-{system}", record, sandbox.sim.now())
    assert field in made
    with client_for(url, system) as client:
        admin_put_faults(url, schema_drift=True)
        drifted = client.get(f"{path}/drift-{system}").json()
        assert renamed in drifted and field not in drifted
        admin_put_faults(url, schema_drift=False)
        plain = client.get(f"{path}/drift-{system}").json()
        assert field in plain and renamed not in plain
    assert any(f["kind"] == "schema_drift" for f in _injected(url))


def test_profiles_switch_every_setting_at_once(sandbox: RunningSandbox) -> None:
    url = sandbox.urls["crm"]
    admin_profile(url, "chaos")
    chaos = httpx.get(f"{url}/admin/faults", headers=ADMIN).json()["config"]
    assert chaos["error_rate"] > 0 and chaos["schema_drift"] is True
    assert chaos["token_ttl_seconds"] < 3600
    admin_profile(url, "default")
    default = httpx.get(f"{url}/admin/faults", headers=ADMIN).json()["config"]
    assert 0 < default["error_rate"] < chaos["error_rate"]
    admin_profile(url, "none")
    none = httpx.get(f"{url}/admin/faults", headers=ADMIN).json()["config"]
    assert none["error_rate"] == 0 and none["latency_ms"] == 0


def _won_deal(crm: httpx.Client, n: int) -> str:
    account = crm.post(CREATE["crm"][0], json=CREATE["crm"][1](n)).json()
    opp = crm.post(
        "/services/data/v59.0/opportunities",
        json={
            "name": f"Deal {n}",
            "accountId": account["id"],
            "amount": 100000 + n,
            "currencyIsoCode": "GBP",
            "stageName": "Closed Won",
            "closeDate": "2026-01-30",
        },
    ).json()
    deal_id: str = opp["id"]
    return deal_id


def _flush(url: str) -> None:
    assert httpx.post(f"{url}/admin/webhooks/flush", headers=ADMIN).status_code == 200


def test_webhooks_are_cloudevents_duplicated_and_reordered_when_asked(
    sandbox: RunningSandbox, sink: WebhookSink
) -> None:
    url = sandbox.urls["crm"]
    assert httpx.put(f"{url}/admin/webhooks", json={"url": sink.url}, headers=ADMIN).is_success
    try:
        with client_for(url, "crm") as crm:
            sink.clear()
            deal = _won_deal(crm, 301)
            _flush(url)
            won = [e for e in sink.received() if e["type"] == "q2c.closed_won"]
            assert len(won) == 1
            assert won[0]["specversion"] == "1.0" and won[0]["subject"] == deal
            assert won[0]["data"]["deal_id"] == deal
            assert won[0]["data"]["amount"] == 100301 and won[0]["data"]["currency"] == "GBP"

            sink.clear()
            admin_put_faults(url, webhook_duplicate_rate=1.0)
            _won_deal(crm, 302)
            _flush(url)
            ids = [e["id"] for e in sink.received()]
            assert len(ids) == 2 * len(set(ids)) and len(ids) > 0

            sink.clear()
            admin_put_faults(url, webhook_duplicate_rate=0.0, webhook_late_rate=1.0)
            late = _won_deal(crm, 303)
            _flush(url)
            assert sink.received() == []
            admin_put_faults(url, webhook_late_rate=0.0)
            on_time = _won_deal(crm, 304)
            _flush(url)
            order = [e["subject"] for e in sink.received() if e["type"] == "q2c.closed_won"]
            assert order == [on_time, late]
    finally:
        httpx.put(f"{url}/admin/webhooks", json={"url": None}, headers=ADMIN)
    kinds = {f["kind"] for f in _injected(url)}
    assert {"webhook_duplicate", "webhook_late"} <= kinds


def test_webhooks_are_delivered_at_least_once_when_the_receiver_comes_back(
    sandbox: RunningSandbox,
) -> None:
    service = sandbox.services["billing"]
    down = WebhookSink()  # not started yet: deliveries fail and stay queued
    service.webhooks.subscribe(down.url)
    try:
        schedule = service.create("billing_schedules", CREATE["billing"][1](41))
        assert service.webhooks.deliver_pending() == 0
        assert service.webhooks.pending() >= 1
        down.start()
        deadline = time.monotonic() + 10
        while not any(e["subject"] == schedule["id"] for e in down.received()):
            assert time.monotonic() < deadline, "queued webhook never delivered"
            service.webhooks.deliver_pending()
    finally:
        service.webhooks.subscribe(None)
        down.stop()


def test_webhooks_to_a_subscription_with_a_secret_are_signed(
    sandbox: RunningSandbox, sink: WebhookSink
) -> None:
    url = sandbox.urls["clm"]
    subscribed = httpx.put(
        f"{url}/admin/webhooks", json={"url": sink.url, "secret": "s3cret"}, headers=ADMIN
    )
    assert subscribed.json() == {"url": sink.url, "signed": True}
    try:
        sink.clear()
        with client_for(url, "clm") as clm:
            clm.post(CREATE["clm"][0], json=CREATE["clm"][1](501)).raise_for_status()
        _flush(url)
        assert sink.signatures
        for body, signature in sink.signatures:
            expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
            assert signature == f"sha256={expected}"
    finally:
        httpx.put(f"{url}/admin/webhooks", json={"url": None}, headers=ADMIN)
