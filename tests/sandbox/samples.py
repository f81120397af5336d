"""One valid create body per system, and how each system's pages are walked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

# system -> (collection path, body maker)
CREATE: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
    "crm": (
        "/services/data/v59.0/accounts",
        lambda n: {"name": f"Acme {n}", "industry": "Retail", "currencyIsoCode": "USD"},
    ),
    "clm": (
        "/clm/v2/agreements",
        lambda n: {
            "title": f"MSA {n}",
            "source_ref": {"opportunity_id": f"0065g{n:010d}"},
            "counterparty": {"name": f"Acme {n}"},
            "legal_entity": "US01",
            "estimated_value": {"amount": "120000.00", "currency": "USD"},
        },
    ),
    "psa": (
        "/api/v1/workspaces",
        lambda n: {
            "title": f"Acme rollout {n}",
            "external_reference": f"AGR-{n:06d}",
            "deal_reference": f"0065g{n:010d}",
            "entity": "US01",
            "practice": "DATA",
            "currency": "USD",
            "billing_mode": "time_and_materials",
            "price_in_cents": 12_000_000,
            "start_date": "2026-01-12",
            "rate_card": [{"role": "Consultant", "rate_in_cents": 18_000}],
        },
    ),
    "billing": (
        "/v1/billing_schedules",
        lambda n: {
            "contract_number": f"AGR-{n:06d}",
            "deal_id": f"0065g{n:010d}",
            "customer_account_number": str(1000 + n),
            "bill_to_name": f"Acme {n}",
            "currency": "USD",
            "billing_model": "time_and_materials",
            "rate_card": [{"role": "Consultant", "unit_price": "180.00"}],
            "start_date": "2026-01-12",
        },
    ),
    "erp": (
        "/services/rest/record/v1/customers",
        lambda n: {
            "companyName": f"Acme {n}",
            "externalId": f"0015g{n:010d}",
            "subsidiary": {"id": "US01"},
            "currency": {"refName": "USD"},
            "terms": {"refName": "Net 45"},
        },
    ),
}


def walk(system: str, client: httpx.Client, path: str, size: int) -> tuple[list[str], int]:
    """Every id in the collection, fetched `size` at a time in the system's own style;
    also the number of requests it took."""
    ids: list[str] = []
    requests = 0
    if system == "crm":
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": size, **({"cursor": cursor} if cursor else {})}
            body = client.get(path, params=params).raise_for_status().json()
            requests += 1
            ids += [r["id"] for r in body["records"]]
            if body["done"]:
                return ids, requests
            cursor = body["nextCursor"]
    if system == "clm":
        token: str | None = None
        while True:
            params = {"page_size": size, **({"page_token": token} if token else {})}
            body = client.get(path, params=params).raise_for_status().json()
            requests += 1
            ids += [r["id"] for r in body["agreements"]]
            token = body["next_page_token"]
            if token is None:
                return ids, requests
    if system == "psa":
        page = 1
        while True:
            body = client.get(path, params={"page": page, "per_page": size}).raise_for_status()
            data = body.json()
            requests += 1
            ids += [r["id"] for r in data["results"]]
            assert all(r["id"] in data["workspaces"] for r in data["results"])
            if page >= data["meta"]["page_count"]:
                return ids, requests
            page += 1
    if system == "billing":
        page = 1
        while True:
            data = client.get(path, params={"page": page, "per_page": size}).raise_for_status()
            body = data.json()
            requests += 1
            ids += [r["id"] for r in body["data"]]
            if not body["has_more"]:
                return ids, requests
            page += 1
    offset = 0
    while True:
        body = client.get(path, params={"limit": size, "offset": offset}).raise_for_status().json()
        requests += 1
        ids += [r["id"] for r in body["items"]]
        if not body["hasMore"]:
            return ids, requests
        offset += body["count"]
