"""Each system's API as data: where its collections live, how they page, which query
parameter asks for changes since a moment, and which field says when a record changed.
The mapping of their shapes to ours lives with the flows that use them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.http import SystemClient
from connectors.pages import (
    CursorPages,
    NumberedPages,
    OffsetPages,
    Paginator,
    SideloadPages,
    TokenPages,
)
from store.states import System


@dataclass(frozen=True)
class Collection:
    system: System
    name: str
    path: str
    paginator: Paginator
    since_param: str
    changed_field: str


CRM_API = "/services/data/v59.0"
CLM_API = "/clm/v2"
PSA_API = "/api/v1"
BILLING_API = "/v1"
ERP_API = "/services/rest/record/v1"


def _c(
    system: System, name: str, path: str, pages: Paginator, since: str, changed: str
) -> Collection:
    return Collection(system, name, path, pages, since, changed)


COLLECTIONS: dict[tuple[System, str], Collection] = {
    (c.system, c.name): c
    for c in (
        _c(
            System.CRM,
            "accounts",
            f"{CRM_API}/accounts",
            CursorPages(),
            "modifiedSince",
            "lastModifiedDate",
        ),
        _c(
            System.CRM,
            "opportunities",
            f"{CRM_API}/opportunities",
            CursorPages(),
            "modifiedSince",
            "lastModifiedDate",
        ),
        _c(
            System.CLM,
            "agreements",
            f"{CLM_API}/agreements",
            TokenPages(),
            "modified_after",
            "modified_at",
        ),
        _c(
            System.CLM,
            "amendments",
            f"{CLM_API}/amendments",
            TokenPages(),
            "modified_after",
            "modified_at",
        ),
        _c(
            System.PSA,
            "workspaces",
            f"{PSA_API}/workspaces",
            SideloadPages(),
            "updated_after",
            "updated_at",
        ),
        # Users answer `updated_since` (not `updated_after` like the PSA's other lists).
        _c(
            System.PSA,
            "users",
            f"{PSA_API}/users",
            SideloadPages(),
            "updated_since",
            "updated_at",
        ),
        _c(
            System.PSA,
            "stories",
            f"{PSA_API}/stories",
            SideloadPages(),
            "updated_after",
            "updated_at",
        ),
        _c(
            System.PSA,
            "time_entries",
            f"{PSA_API}/time_entries",
            SideloadPages(),
            "updated_after",
            "updated_at",
        ),
        _c(
            System.BILLING,
            "billing_schedules",
            f"{BILLING_API}/billing_schedules",
            NumberedPages(),
            "updated_since",
            "updated_at",
        ),
        _c(
            System.BILLING,
            "charges",
            f"{BILLING_API}/charges",
            NumberedPages(),
            "updated_since",
            "updated_at",
        ),
        _c(
            System.BILLING,
            "invoices",
            f"{BILLING_API}/invoices",
            NumberedPages(),
            "updated_since",
            "updated_at",
        ),
        _c(
            System.BILLING,
            "credit_notes",
            f"{BILLING_API}/credit_notes",
            NumberedPages(),
            "updated_since",
            "updated_at",
        ),
        _c(
            System.ERP,
            "customers",
            f"{ERP_API}/customers",
            OffsetPages(),
            "lastModifiedDate",
            "lastModifiedDate",
        ),
        _c(
            System.ERP,
            "ar_postings",
            f"{ERP_API}/ar_postings",
            OffsetPages(),
            "lastModifiedDate",
            "lastModifiedDate",
        ),
        _c(
            System.ERP,
            "payments",
            f"{ERP_API}/payments",
            OffsetPages(),
            "lastModifiedDate",
            "lastModifiedDate",
        ),
    )
}


def collection(system: System, name: str) -> Collection:
    return COLLECTIONS[(system, name)]


class Api:
    """Typed access to one system's collections through its client."""

    def __init__(self, client: SystemClient) -> None:
        self.client = client
        self.system = client.system

    def records(
        self,
        name: str,
        filters: Mapping[str, Any] | None = None,
        since: dt.datetime | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        coll = collection(self.system, name)
        base = dict(filters or {})
        if since is not None:
            base[coll.since_param] = since.isoformat()

        def fetch(page: dict[str, Any]) -> Any:
            return self.client.request(
                "GET", coll.path, params={**base, **page}, attributes=attributes
            )

        for page in coll.paginator.pages(fetch, name):
            yield from page

    def first(
        self, name: str, filters: Mapping[str, Any], attributes: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        return next(iter(self.records(name, filters, attributes=attributes)), None)

    def get(self, name: str, record_id: str, attributes: Mapping[str, Any] | None = None) -> Any:
        return self.client.request(
            "GET", f"{collection(self.system, name).path}/{record_id}", attributes=attributes
        )

    def create(
        self, name: str, body: dict[str, Any], key: str, attributes: Mapping[str, Any] | None = None
    ) -> Any:
        return self.client.request(
            "POST",
            collection(self.system, name).path,
            json=body,
            idempotency_key=key,
            attributes=attributes,
        )

    def update(
        self,
        name: str,
        record_id: str,
        body: dict[str, Any],
        key: str,
        attributes: Mapping[str, Any] | None = None,
    ) -> Any:
        return self.client.request(
            "PATCH",
            f"{collection(self.system, name).path}/{record_id}",
            json=body,
            idempotency_key=key,
            attributes=attributes,
        )
