"""A stand-in for the connectors (a later issue): carries records between the sandbox
systems over their HTTP APIs, with idempotency keys, as perfect syncs would. Only tests
use it; the sandbox itself never carries records between systems."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx

from tests.sandbox.http import client_for


def _pages(client: httpx.Client, system: str, path: str, params: dict[str, Any]) -> Iterator[Any]:
    """Every record of a list, whatever the system's page style."""
    if system == "crm":
        cursor: str | None = None
        while True:
            body = client.get(
                path, params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
            )
            data = body.raise_for_status().json()
            yield from data["records"]
            if data["done"]:
                return
            cursor = data["nextCursor"]
    elif system == "clm":
        token: str | None = None
        key = path.rsplit("/", 1)[-1]
        while True:
            p = {**params, "page_size": 100, **({"page_token": token} if token else {})}
            data = client.get(path, params=p).raise_for_status().json()
            yield from data[key]
            token = data["next_page_token"]
            if token is None:
                return
    elif system == "psa":
        page, key = 1, path.rsplit("/", 1)[-1]
        while True:
            data = (
                client.get(path, params={**params, "page": page, "per_page": 200})
                .raise_for_status()
                .json()
            )
            for ref in data["results"]:
                yield data[key][ref["id"]]
            if page >= data["meta"]["page_count"]:
                return
            page += 1
    elif system == "billing":
        page = 1
        while True:
            data = (
                client.get(path, params={**params, "page": page, "per_page": 100})
                .raise_for_status()
                .json()
            )
            yield from data["data"]
            if not data["has_more"]:
                return
            page += 1
    else:
        offset = 0
        while True:
            data = (
                client.get(path, params={**params, "limit": 500, "offset": offset})
                .raise_for_status()
                .json()
            )
            yield from data["items"]
            if not data["hasMore"]:
                return
            offset += data["count"]


class ConnectorStandIn:
    def __init__(self, urls: dict[str, str]) -> None:
        self.c = {system: client_for(url, system) for system, url in urls.items()}
        self.since: str | None = None
        self.provisioned: set[str] = set()
        self._workspaces: dict[str, dict[str, Any]] = {}
        self._schedules: dict[str, str] = {}  # CLM agreement id -> billing schedule id

    def close(self) -> None:
        for client in self.c.values():
            client.close()

    def _post(self, system: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.c[system].post(path, json=body, headers={"Idempotency-Key": key})
        assert response.status_code == 201, (system, path, response.text)
        record: dict[str, Any] = response.json()
        return record

    def _since(self, name: str) -> dict[str, str]:
        return {name: self.since} if self.since else {}

    def sync(self, now: dt.datetime) -> None:
        """One pass of every flow, reading what changed since the last pass."""
        crm, clm, psa, billing = (self.c[s] for s in ("crm", "clm", "psa", "billing"))
        opps = "/services/data/v59.0/opportunities"
        for opp in _pages(crm, "crm", opps, {"isWon": "true", **self._since("modifiedSince")}):
            account = crm.get(f"/services/data/v59.0/accounts/{opp['accountId']}").json()
            self._post(
                "clm",
                "/clm/v2/agreements",
                f"clm-agreement:{opp['id']}",
                {
                    "title": opp["name"],
                    "source_ref": {"opportunity_id": opp["id"]},
                    "counterparty": {"name": account["name"], "crm_account_id": account["id"]},
                    "legal_entity": account["legalEntity"],
                    "practice": opp["practice"],
                    "estimated_value": {
                        "amount": f"{opp['amount']:.2f}",
                        "currency": opp["currencyIsoCode"],
                    },
                },
            )
        executed = {"status": "executed", **self._since("modified_after")}
        for agreement in _pages(clm, "clm", "/clm/v2/agreements", executed):
            if agreement["id"] not in self.provisioned:
                self._provision(agreement)
                self.provisioned.add(agreement["id"])
        for amendment in _pages(clm, "clm", "/clm/v2/amendments", self._since("modified_after")):
            schedule = next(
                _pages(
                    billing,
                    "billing",
                    "/v1/billing_schedules",
                    {"contract_number": amendment["agreement_id"]},
                )
            )
            change: dict[str, Any] = {}
            if "cap" in amendment["changes"]:
                change["cap_amount"] = amendment["changes"]["cap"]["amount"]
            if "term_months" in amendment["changes"]:
                change["term_months"] = amendment["changes"]["term_months"]
            billing.patch(f"/v1/billing_schedules/{schedule['id']}", json=change).raise_for_status()
        approved = {"approved": "true", **self._since("updated_after")}
        for entry in _pages(psa, "psa", "/api/v1/time_entries", approved):
            workspace = self._workspace(entry["workspace_id"])
            if workspace["billing_mode"] != "time_and_materials":
                continue
            self._charge(
                workspace,
                entry["id"],
                entry["role"],
                entry["time_in_minutes"] / 60,
                entry["rate_in_cents"] / 100,
                entry["date_performed"],
            )
        for story in _pages(
            psa, "psa", "/api/v1/stories", {"state": "approved", **self._since("updated_after")}
        ):
            workspace = self._workspace(story["workspace_id"])
            self._charge(
                workspace, story["id"], None, 1, story["price_in_cents"] / 100, story["approved_at"]
            )
        for invoice in _pages(billing, "billing", "/v1/invoices", self._since("updated_since")):
            self._post(
                "erp",
                "/services/rest/record/v1/ar_postings",
                f"ar-posting:{invoice['id']}",
                {
                    "externalId": invoice["id"],
                    "entity": {"id": invoice["customer_account_number"]},
                    "tranDate": invoice["invoice_date"],
                    "dueDate": invoice["due_date"],
                    "currency": {"refName": invoice["currency"]},
                    "amount": float(invoice["amount"]),
                    "otherRefNum": invoice["po_number"],
                    "custbody_deal_id": invoice["deal_id"],
                },
            )
        self.since = (now + dt.timedelta(seconds=1)).isoformat()

    def _workspace(self, workspace_id: str) -> dict[str, Any]:
        if workspace_id not in self._workspaces:
            response = self.c["psa"].get(f"/api/v1/workspaces/{workspace_id}").raise_for_status()
            self._workspaces[workspace_id] = response.json()
        return self._workspaces[workspace_id]

    def _provision(self, agreement: dict[str, Any]) -> None:
        terms = agreement["terms"]
        deal_id = agreement["source_ref"]["opportunity_id"]
        account_id = agreement["counterparty"]["crm_account_id"]
        currency = terms["total_value"]["currency"]
        customer = self._post(
            "erp",
            "/services/rest/record/v1/customers",
            f"erp-customer:{account_id}",
            {
                "companyName": agreement["counterparty"]["name"],
                "externalId": account_id,
                "subsidiary": {"id": agreement["legal_entity"]},
                "currency": {"refName": currency},
                "terms": {"refName": f"Net {terms['payment_terms_days']}"},
            },
        )
        psa_mode = {
            "time_and_materials": "time_and_materials",
            "fixed_fee_milestone": "fixed_fee",
            "retainer": "retainer",
        }[terms["billing_model"]]
        workspace = self._post(
            "psa",
            "/api/v1/workspaces",
            f"psa-workspace:{agreement['id']}",
            {
                "title": agreement["title"],
                "external_reference": agreement["id"],
                "deal_reference": deal_id,
                "entity": agreement["legal_entity"],
                "practice": agreement["practice"],
                "currency": currency,
                "billing_mode": psa_mode,
                "price_in_cents": round(float(terms["total_value"]["amount"]) * 100),
                "start_date": terms["start_date"],
                "due_date": terms["end_date"],
                "rate_card": [
                    {
                        "role": r["role"],
                        "rate_in_cents": round(float(r["hourly_rate"]["amount"]) * 100),
                    }
                    for r in terms["rate_card"]
                ],
            },
        )
        for milestone in terms["milestones"]:
            self._post(
                "psa",
                "/api/v1/stories",
                f"psa-story:{milestone['milestone_id']}",
                {
                    "workspace_id": workspace["id"],
                    "title": milestone["name"],
                    "story_type": "milestone",
                    "due_date": milestone["due_date"],
                    "price_in_cents": round(float(milestone["amount"]["amount"]) * 100),
                    "external_reference": milestone["milestone_id"],
                },
            )
        model = {
            "time_and_materials": "time_and_materials",
            "fixed_fee_milestone": "milestone",
            "retainer": "retainer",
        }[terms["billing_model"]]
        self._post(
            "billing",
            "/v1/billing_schedules",
            f"billing-schedule:{agreement['id']}",
            {
                "contract_number": agreement["id"],
                "deal_id": deal_id,
                "customer_account_number": customer["id"],
                "bill_to_name": agreement["counterparty"]["name"],
                "currency": currency,
                "billing_model": model,
                "rate_card": [
                    {"role": r["role"], "unit_price": r["hourly_rate"]["amount"]}
                    for r in terms["rate_card"]
                ],
                "cap_amount": terms["cap"]["amount"] if terms["cap"] else None,
                "po_number": terms["po_number"],
                "monthly_fee": terms["monthly_fee"]["amount"] if terms["monthly_fee"] else None,
                "term_months": terms["term_months"],
                "start_date": terms["start_date"],
                "payment_terms_days": terms["payment_terms_days"],
            },
        )

    def _charge(
        self,
        workspace: dict[str, Any],
        source: str,
        role: str | None,
        quantity: float,
        unit_price: float,
        service_date: str,
    ) -> None:
        agreement_id = workspace["external_reference"]
        if agreement_id not in self._schedules:
            query = {"contract_number": agreement_id}
            found = _pages(self.c["billing"], "billing", "/v1/billing_schedules", query)
            self._schedules[agreement_id] = next(found)["id"]
        self._post(
            "billing",
            "/v1/charges",
            f"billing-charge:{source}",
            {
                "billing_schedule_id": self._schedules[agreement_id],
                "source_reference": source,
                "description": f"{role or 'Milestone'} {service_date}",
                "service_date": service_date[:10],
                "quantity": f"{quantity:.2f}",
                "unit_price": f"{unit_price:.2f}",
                "role": role,
            },
        )
