"""What the flows need of an ERP, and the NetSuite-like REST implementation; the Tryton
JSON-RPC one is in `connectors.tryton`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.flows.base import money
from connectors.resources import Api


@dataclass(frozen=True)
class NewCustomer:
    account_id: str  # the CRM account: the customer's external id in the ERP
    name: str
    legal_entity: str
    currency: str
    terms_days: int


class Erp(Protocol):
    def find_customer(self, account_id: str, attributes: Mapping[str, Any]) -> str | None: ...

    def create_customer(self, customer: NewCustomer, attributes: Mapping[str, Any]) -> str:
        """Provision the customer of a CRM account; idempotent by the account id."""
        ...

    def find_posting(self, invoice_id: str, attributes: Mapping[str, Any]) -> str | None: ...

    def create_posting(self, invoice: Mapping[str, Any], attributes: Mapping[str, Any]) -> str:
        """Post a billing invoice to accounts receivable; idempotent by the invoice id."""
        ...

    def payments(self, since: dt.datetime | None) -> Iterator[dict[str, Any]]:
        """Customer payments applied to posted invoices, changed after `since`, as payment
        records of the REST ERP's shape: `id`, `tranDate`, `amount`, `currency.refName`,
        `invoiceExternalId` (our invoice id), `arPosting.id`, `customer.id`,
        `lastModifiedDate` and, where the ERP knows it, `custbody_deal_id`."""
        ...

    def cash_status(
        self, payment: Mapping[str, Any], attributes: Mapping[str, Any]
    ) -> tuple[str, str]:
        """The CRM account of a payment's customer, and `paid` if the posting it went to
        is now paid in full, else `current`: read when the step runs, not when the
        payment was seen."""
        ...

    @property
    def has_disputes(self) -> bool:
        """Whether the ERP records a customer's dispute on an AR posting (`status`
        `disputed`, `disputedOn` in the REST ERP's `ar_postings`): flow 5 then captures
        disputes from that collection."""
        ...

    def account_of(self, posting: Mapping[str, Any], attributes: Mapping[str, Any]) -> str:
        """The CRM account of an AR posting's customer (its external id in the ERP)."""
        ...


class ApiErp:
    """The sandbox ERP (NetSuite-like records: customers, ar_postings)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def find_customer(self, account_id: str, attributes: Mapping[str, Any]) -> str | None:
        found = self.api.first("customers", {"externalId": account_id}, attributes)
        return str(found["id"]) if found else None

    def create_customer(self, customer: NewCustomer, attributes: Mapping[str, Any]) -> str:
        created = self.api.create(
            "customers",
            {
                "companyName": customer.name,
                "externalId": customer.account_id,
                "subsidiary": {"id": customer.legal_entity},
                "currency": {"refName": customer.currency},
                "terms": {"refName": f"Net {customer.terms_days}"},
            },
            key=f"erp-customer:{customer.account_id}",
            attributes=attributes,
        )
        return str(created["id"])

    def find_posting(self, invoice_id: str, attributes: Mapping[str, Any]) -> str | None:
        found = self.api.first("ar_postings", {"externalId": invoice_id}, attributes)
        return str(found["id"]) if found else None

    def create_posting(self, invoice: Mapping[str, Any], attributes: Mapping[str, Any]) -> str:
        invoice_id = str(invoice["id"])
        created = self.api.create(
            "ar_postings",
            {
                "externalId": invoice_id,
                "entity": {"id": str(invoice["customer_account_number"])},
                "tranDate": invoice["invoice_date"],
                "dueDate": invoice["due_date"],
                "currency": {"refName": invoice["currency"]},
                "amount": float(money(invoice["amount"])),
                "otherRefNum": invoice.get("po_number"),
                "custbody_deal_id": str(invoice["deal_id"]),
            },
            key=f"ar-posting:{invoice_id}",
            attributes=attributes,
        )
        return str(created["id"])

    def payments(self, since: dt.datetime | None) -> Iterator[dict[str, Any]]:
        return self.api.records("payments", {}, since)

    def cash_status(
        self, payment: Mapping[str, Any], attributes: Mapping[str, Any]
    ) -> tuple[str, str]:
        posting = self.api.get("ar_postings", str(payment["arPosting"]["id"]), attributes)
        customer = self.api.get("customers", str(payment["customer"]["id"]), attributes)
        return str(customer["externalId"]), "paid" if posting.get("status") == "paid" else "current"

    @property
    def has_disputes(self) -> bool:
        return True

    def account_of(self, posting: Mapping[str, Any], attributes: Mapping[str, Any]) -> str:
        customer = self.api.get("customers", str(posting["entity"]["id"]), attributes)
        return str(customer["externalId"])
