"""Every sandbox endpoint over real HTTP: health, OpenAPI, auth, pagination, idempotent
creates, updates, business refusals, rate limits and the admin endpoints."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from sandbox.services import SYSTEMS
from tests.sandbox.conftest import RunningSandbox
from tests.sandbox.http import ADMIN, admin_put_faults, client_for, token_for
from tests.sandbox.samples import CREATE, walk

RESOURCE_PATHS = {
    "crm": ["/services/data/v59.0/accounts", "/services/data/v59.0/opportunities"],
    "clm": ["/clm/v2/agreements", "/clm/v2/amendments"],
    "psa": [
        "/api/v1/workspaces",
        "/api/v1/users",
        "/api/v1/stories",
        "/api/v1/assignments",
        "/api/v1/time_entries",
    ],
    "billing": ["/v1/billing_schedules", "/v1/charges", "/v1/invoices", "/v1/credit_notes"],
    "erp": [
        "/services/rest/record/v1/customers",
        "/services/rest/record/v1/ar_postings",
        "/services/rest/record/v1/payments",
    ],
}


@pytest.mark.parametrize("system", SYSTEMS)
def test_each_system_answers_healthz_and_documents_its_own_api(
    sandbox: RunningSandbox, system: str
) -> None:
    url = sandbox.urls[system]
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "system": system}
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    for path in RESOURCE_PATHS[system]:
        assert "get" in paths[path], path
        assert "get" in paths[path + "/{record_id}"], path
    create_path, _ = CREATE[system]
    assert "requestBody" in paths[create_path]["post"]
    # No two systems share one API: their resource paths are disjoint.
    others = {p for s, ps in RESOURCE_PATHS.items() if s != system for p in ps}
    assert not others & set(paths)


@pytest.mark.parametrize("system", SYSTEMS)
def test_requests_without_valid_credentials_are_refused(
    sandbox: RunningSandbox, system: str
) -> None:
    url = sandbox.urls[system]
    path = RESOURCE_PATHS[system][0]
    assert httpx.get(f"{url}{path}").status_code == 401
    wrong = {"Authorization": "Bearer nope"} if system in ("crm", "erp") else {"X-API-Key": "no"}
    refused = httpx.get(f"{url}{path}", headers=wrong)
    assert refused.status_code == 401
    assert "WWW-Authenticate" in refused.headers
    with client_for(url, system) as client:
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("system", SYSTEMS)
def test_pages_walk_every_record_exactly_once_in_the_systems_own_style(
    sandbox: RunningSandbox, system: str
) -> None:
    path, body = CREATE[system]
    with client_for(sandbox.urls[system], system) as client:
        created = [client.post(path, json=body(900 + n)).json()["id"] for n in range(7)]
        ids, requests = walk(system, client, path, size=3)
    assert len(ids) == len(set(ids)), "a record came twice"
    assert set(created) <= set(ids)
    assert requests == -(-len(ids) // 3) or requests == len(ids) // 3 + 1


@pytest.mark.parametrize("system", SYSTEMS)
def test_create_with_idempotency_key_replays_and_refuses_another_body(
    sandbox: RunningSandbox, system: str
) -> None:
    path, body = CREATE[system]
    key = {"Idempotency-Key": f"test:{uuid.uuid4()}"}
    with client_for(sandbox.urls[system], system) as client:
        first = client.post(path, json=body(1), headers=key)
        assert first.status_code == 201, first.text
        replay = client.post(path, json=body(1), headers=key)
        assert replay.status_code == 201
        assert replay.json() == first.json()
        assert replay.headers["Idempotent-Replayed"] == "true"
        conflict = client.post(path, json=body(2), headers=key)
        assert conflict.status_code == 409
        got = client.get(f"{path}/{first.json()['id']}")
        assert got.json() == first.json()
        # Without a key, the same body is a second record.
        again = client.post(path, json=body(1))
        assert again.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("system", SYSTEMS)
def test_bad_requests_are_refused_in_the_systems_own_error_shape(
    sandbox: RunningSandbox, system: str
) -> None:
    path, _ = CREATE[system]
    with client_for(sandbox.urls[system], system) as client:
        invalid = client.post(path, json={"nonsense": True})
        assert invalid.status_code == 422
        missing = client.get(f"{path}/does-not-exist")
        assert missing.status_code == 404
        bad_page = client.get(path, params={"limit": "x", "per_page": "x", "page_size": "x"})
        assert bad_page.status_code == 400
    shapes = {
        "crm": lambda b: b[0]["errorCode"] == "NOT_FOUND",
        "clm": lambda b: b["errors"][0]["code"] == "NOT_FOUND",
        "psa": lambda b: "not found" in b["errors"][0]["message"],
        "billing": lambda b: b["success"] is False and b["reasons"][0]["code"] == "NOT_FOUND",
        "erp": lambda b: b["o:errorDetails"][0]["o:errorCode"] == "NOT_FOUND",
    }
    assert shapes[system](missing.json())


def test_records_must_reference_records_that_exist_in_the_same_system(
    sandbox: RunningSandbox,
) -> None:
    with client_for(sandbox.urls["erp"], "erp") as erp:
        posting = {
            "externalId": "INV00000001",
            "entity": {"id": "999999"},
            "tranDate": "2026-01-31",
            "dueDate": "2026-03-02",
            "currency": {"refName": "USD"},
            "amount": 1000.0,
        }
        refused = erp.post("/services/rest/record/v1/ar_postings", json=posting)
        assert refused.status_code == 422
        customer = erp.post(CREATE["erp"][0], json=CREATE["erp"][1](77)).json()
        posting["entity"] = {"id": customer["id"]}
        accepted = erp.post("/services/rest/record/v1/ar_postings", json=posting)
        assert accepted.status_code == 201
        assert accepted.json()["status"] == "open"
        assert accepted.json()["amountRemaining"] == 1000.0
        by_customer = erp.get(
            "/services/rest/record/v1/ar_postings", params={"entity": customer["id"]}
        ).json()
        assert [p["id"] for p in by_customer["items"]] == [accepted.json()["id"]]


def test_updates_change_state_and_filters_and_incremental_reads_see_them(
    sandbox: RunningSandbox,
) -> None:
    url = sandbox.urls["crm"]
    with client_for(url, "crm") as crm:
        account = crm.post(CREATE["crm"][0], json=CREATE["crm"][1](5)).json()
        opp = crm.post(
            "/services/data/v59.0/opportunities",
            json={
                "name": "Acme data platform",
                "accountId": account["id"],
                "amount": 250000,
                "currencyIsoCode": "USD",
                "stageName": "Negotiation",
                "closeDate": "2026-02-27",
            },
        ).json()
        assert opp["isClosed"] is False
        sandbox.sim.advance(dt.timedelta(hours=1))
        since = sandbox.sim.now().isoformat()
        won = crm.patch(
            f"/services/data/v59.0/opportunities/{opp['id']}", json={"stageName": "Closed Won"}
        ).json()
        assert won["isWon"] is True and won["isClosed"] is True
        changed = crm.get(
            "/services/data/v59.0/opportunities", params={"modifiedSince": since}
        ).json()
        assert [r["id"] for r in changed["records"]] == [opp["id"]]
        winners = crm.get("/services/data/v59.0/opportunities", params={"isWon": "true"}).json()
        assert opp["id"] in [r["id"] for r in winners["records"]]
        unknown = crm.patch("/services/data/v59.0/opportunities/0065g9999999999", json={})
        assert unknown.status_code == 404


@pytest.mark.parametrize("system", ["crm", "erp"])
def test_an_expired_token_gets_401_and_a_fresh_token_works(
    sandbox: RunningSandbox, system: str
) -> None:
    url = sandbox.urls[system]
    path = RESOURCE_PATHS[system][0]
    admin_put_faults(url, token_ttl_seconds=60)
    token = token_for(url, system)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{url}{path}", headers=headers).status_code == 200
    sandbox.wall.advance(dt.timedelta(seconds=61))
    expired = httpx.get(f"{url}{path}", headers=headers)
    assert expired.status_code == 401
    assert "expired" in expired.text
    fresh = {"Authorization": f"Bearer {token_for(url, system)}"}
    assert httpx.get(f"{url}{path}", headers=fresh).status_code == 200
    refused = httpx.post(
        f"{url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "throughline", "client_secret": "x"},
    )
    assert refused.status_code == 401


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_burst_above_the_rate_gets_429_with_retry_after_then_recovers(
    sandbox: RunningSandbox, system: str
) -> None:
    url = sandbox.urls[system]
    path = RESOURCE_PATHS[system][0]
    admin_put_faults(url, rate_limit_per_second=0.5, rate_limit_burst=3)
    with client_for(url, system) as client:
        statuses = [client.get(path) for _ in range(6)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429, 429]
        retry_after = int(statuses[-1].headers["Retry-After"])
        assert retry_after == 2  # one token at 0.5/s
        sandbox.wall.advance(dt.timedelta(seconds=retry_after))
        assert client.get(path).status_code == 200
        assert client.get(path).status_code == 429
        # Another caller has its own bucket.
        with client_for(url, system) as other:
            if system in ("crm", "erp"):
                assert other.get(path).status_code == 200


def test_the_admin_endpoints_need_the_admin_key(sandbox: RunningSandbox) -> None:
    url = sandbox.urls["billing"]
    for method, path in [
        ("GET", "/admin/faults"),
        ("PUT", "/admin/faults"),
        ("GET", "/admin/ground-truth"),
        ("PUT", "/admin/webhooks"),
        ("POST", "/admin/webhooks/flush"),
        ("GET", "/admin/clock"),
    ]:
        assert httpx.request(method, f"{url}{path}", json={}).status_code == 401, path
        wrong = httpx.request(method, f"{url}{path}", json={}, headers={"X-Admin-Key": "x"})
        assert wrong.status_code == 401, path
    faults = httpx.get(f"{url}/admin/faults", headers=ADMIN).json()
    assert faults["profiles"] == ["none", "default", "chaos"]
    clock = httpx.get(f"{url}/admin/clock", headers=ADMIN).json()
    assert clock["simulated"] == sandbox.sim.now().isoformat()
    bad = httpx.put(f"{url}/admin/faults", json={"settings": {"error_rate": 2}}, headers=ADMIN)
    assert bad.status_code == 422


def test_every_update_and_the_remaining_creates_answer_over_http(sandbox: RunningSandbox) -> None:
    urls = sandbox.urls
    with client_for(urls["crm"], "crm") as crm:
        account = crm.post(CREATE["crm"][0], json=CREATE["crm"][1](61)).json()
        paid = crm.patch(f"{CREATE['crm'][0]}/{account['id']}", json={"cashStatus": "paid"})
        assert paid.json()["cashStatus"] == "paid"
        child = crm.post(CREATE["crm"][0], json={"name": "Acme Ltd", "parentId": account["id"]})
        assert child.status_code == 201
        orphan = crm.post(CREATE["crm"][0], json={"name": "Nobody", "parentId": "0015g999"})
        assert orphan.status_code == 422
    with client_for(urls["clm"], "clm") as clm:
        agreement = clm.post(CREATE["clm"][0], json=CREATE["clm"][1](62)).json()
        assert agreement["status"] == "requested"
        cancelled = clm.patch(f"/clm/v2/agreements/{agreement['id']}", json={"status": "cancelled"})
        assert cancelled.json()["status"] == "cancelled"
        assert (
            clm.patch(f"/clm/v2/agreements/{agreement['id']}", json={"status": "x"}).status_code
            == 422
        )
    with client_for(urls["psa"], "psa") as psa:
        workspace = psa.post(CREATE["psa"][0], json=CREATE["psa"][1](63)).json()
        user = sandbox.services["psa"].create(
            "users", {"full_name": "Ada Lovelace", "headline": "Manager", "practice": "DATA"}
        )
        entry = psa.post(
            "/api/v1/time_entries",
            json={
                "workspace_id": workspace["id"],
                "user_id": user["id"],
                "date_performed": "2026-01-09",
                "time_in_minutes": 480,
            },
        )
        assert entry.status_code == 201 and entry.json()["approved"] is False
        story = psa.post(
            "/api/v1/stories",
            json={"workspace_id": workspace["id"], "title": "Design", "due_date": "2026-02-06"},
        )
        assert story.json()["state"] == "not started"
        closed = psa.patch(f"/api/v1/workspaces/{workspace['id']}", json={"status": "closed"})
        assert closed.json()["status"] == "closed"
        listed = psa.get("/api/v1/time_entries", params={"workspace_id": workspace["id"]}).json()
        assert listed["count"] == 1
    with client_for(urls["billing"], "billing") as billing:
        schedule = billing.post(CREATE["billing"][0], json=CREATE["billing"][1](64)).json()
        charge = billing.post(
            "/v1/charges",
            json={
                "billing_schedule_id": schedule["id"],
                "source_reference": "90000001",
                "description": "Consultant week 2",
                "service_date": "2026-01-09",
                "quantity": "7.50",
                "unit_price": "180.00",
            },
        ).json()
        assert charge["amount"] == "1350.00" and charge["status"] == "pending"
        raised = billing.patch(
            f"/v1/billing_schedules/{schedule['id']}", json={"cap_amount": "50000.00"}
        )
        assert raised.json()["cap_amount"] == "50000.00"
        invoice = sandbox.services["billing"].create(
            "invoices", {"deal_id": "0065g1", "amount": "1350.00", "currency": "USD"}
        )
        credit = billing.post(
            "/v1/credit_notes",
            json={"invoice_id": invoice["id"], "amount": "1350.00", "reason": "rejected by ERP"},
        )
        assert credit.status_code == 201 and credit.json()["status"] == "issued"
        assert billing.get(f"/v1/invoices/{invoice['id']}").json()["amount"] == "1350.00"
    with client_for(urls["erp"], "erp") as erp:
        payment = sandbox.services["erp"].create(
            "payments",
            {
                "amount": 10.0,
                "currency": {"refName": "USD"},
                "customer": {"id": "1001"},
                "arPosting": {"id": "50001"},
            },
        )
        got = erp.get(f"/services/rest/record/v1/payments/{payment['id']}").json()
        assert got["amount"] == 10.0
        by_posting = erp.get("/services/rest/record/v1/payments", params={"arPosting": "50001"})
        assert payment["id"] in [p["id"] for p in by_posting.json()["items"]]
