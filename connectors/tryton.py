"""A real ERP: Tryton over JSON-RPC (`POST /<db>/rpc/`).

Login gives a session (`Authorization: Session base64(user:id:session)`); every model call
takes the user's context as its last parameter. Application errors come back as HTTP 200
with an `error` member; protocol errors as 4xx/5xx. Money travels as Decimal objects, never
floats. Tryton has no unique constraint on an invoice's `reference`, so posting searches by
reference first and serialises per reference on our side (../shared/notes/tryton.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import httpx

from connectors.erp import NewCustomer
from connectors.errors import AuthFailed, FatalError, TransportError, ValidationFailed
from connectors.http import SystemClient


def encode(value: Any) -> Any:
    """Python values in Tryton's JSON-RPC encoding."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise TypeError("send Tryton aware datetimes (it keeps timestamps in UTC)")
        utc = value.astimezone(dt.UTC)
        return {
            "__class__": "datetime",
            **{f: getattr(utc, f) for f in ("year", "month", "day", "hour", "minute", "second")},
            "microsecond": utc.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, Mapping):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        kind = value.get("__class__")
        if kind == "Decimal":
            return Decimal(value["decimal"])
        if kind == "date":
            return dt.date(value["year"], value["month"], value["day"])
        if kind == "datetime":  # naive, in UTC (trytond runs with TZ=UTC)
            day = dt.date(value["year"], value["month"], value["day"])
            clock = dt.time(
                value.get("hour", 0),
                value.get("minute", 0),
                value.get("second", 0),
                value.get("microsecond", 0),
                tzinfo=dt.UTC,
            )
            return dt.datetime.combine(day, clock)
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


class TrytonSession:
    """The SystemClient `Auth` for Tryton: logs in lazily, again after a 401."""

    def __init__(
        self, http: httpx.Client, base_url: str, database: str, username: str, password: str
    ) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/{database}/rpc/"
        self._username = username
        self._password = password
        self._header: str | None = None
        self._lock = threading.Lock()

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._header is None:
                self._header = self._login()
            return {"Authorization": self._header}

    def invalidate(self) -> bool:
        with self._lock:
            self._header = None
        return True

    def _login(self) -> str:
        payload = {
            "id": 0,
            "method": "common.db.login",
            "params": [self._username, {"password": self._password}, "en"],
        }
        try:
            response = self._http.post(self._url, json=payload)
        except httpx.HTTPError as exc:
            raise TransportError(f"Tryton login failed: {type(exc).__name__}") from exc
        try:
            body = response.json() if response.content else {}
        except ValueError:  # a refused login answers with an HTML error page
            body = {}
        if response.status_code != 200 or "result" not in body or not body["result"]:
            raise AuthFailed(
                f"Tryton refused the login of {self._username!r} ({response.status_code})",
                status=response.status_code,
            )
        user_id, session = body["result"][0], body["result"][1]
        token = base64.b64encode(f"{self._username}:{user_id}:{session}".encode()).decode()
        return f"Session {token}"


class TrytonRpc:
    def __init__(self, client: SystemClient, database: str) -> None:
        self._client = client
        self._path = f"/{database}/rpc/"
        self._context: dict[str, Any] | None = None
        self._ids = 0

    def call(self, method: str, *params: Any, attributes: Mapping[str, Any] | None = None) -> Any:
        self._ids += 1
        body = self._client.request(
            "POST",
            self._path,
            json={"id": self._ids, "method": method, "params": encode(list(params))},
            attributes={"rpc.method": method, **(attributes or {})},
        )
        if "error" in body:
            raise _error(method, body["error"])
        return decode(body.get("result"))

    def context(self) -> dict[str, Any]:
        if self._context is None:
            self._context = self.call("model.res.user.get_preferences", True, {})
        return self._context

    def model(
        self, model: str, method: str, *params: Any, attributes: Mapping[str, Any] | None = None
    ) -> Any:
        return self.call(f"model.{model}.{method}", *params, self.context(), attributes=attributes)


def _error(method: str, error: Any) -> Exception:
    kind = error[0] if isinstance(error, list) and error else str(error)
    detail = error[1] if isinstance(error, list) and len(error) > 1 else ""
    if kind == "UserError":
        message = detail[0] if isinstance(detail, list) and detail else str(detail)
        return ValidationFailed(f"Tryton refused {method}: {message}")
    # not a refusal of the record: an access, concurrency or server error
    return FatalError(f"Tryton {method} failed: {kind} {str(detail)[:200]}", refused=False)


class TrytonErp:
    """Customers (parties) and AR postings (posted customer invoices) in Tryton."""

    def __init__(self, rpc: TrytonRpc) -> None:
        self.rpc = rpc
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._company: int | None = None
        self._revenue: int | None = None
        self._journal: int | None = None

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def find_customer(self, account_id: str, attributes: Mapping[str, Any]) -> str | None:
        found = self.rpc.model(
            "party.party", "search", [("code", "=", account_id)], 0, 1, None, attributes=attributes
        )
        return str(found[0]) if found else None

    def create_customer(self, customer: NewCustomer, attributes: Mapping[str, Any]) -> str:
        with self._lock(f"party:{customer.account_id}"):
            existing = self.find_customer(customer.account_id, attributes)
            if existing is not None:
                return existing
            [party] = self.rpc.model(
                "party.party",
                "create",
                [
                    {
                        "name": customer.name,
                        "code": customer.account_id,
                        "addresses": [["create", [{}]]],
                    }
                ],
                attributes=attributes,
            )
            return str(party)

    def _company_id(self) -> int:
        if self._company is None:
            self._company = int(self.rpc.context()["company"])
        return self._company

    def _revenue_account(self, attributes: Mapping[str, Any]) -> int:
        if self._revenue is None:
            found = self.rpc.model(
                "account.account",
                "search",
                [("type.revenue", "=", True), ("closed", "!=", True)],
                0,
                1,
                None,
                attributes=attributes,
            )
            if not found:
                raise FatalError(
                    "the Tryton chart of accounts has no revenue account", refused=False
                )
            self._revenue = int(found[0])
        return self._revenue

    def _revenue_journal(self, attributes: Mapping[str, Any]) -> int:
        if self._journal is None:
            found = self.rpc.model(
                "account.journal",
                "search",
                [("type", "=", "revenue")],
                0,
                1,
                None,
                attributes=attributes,
            )
            if not found:
                raise FatalError("the Tryton database has no revenue journal", refused=False)
            self._journal = int(found[0])
        return self._journal

    def find_posting(self, invoice_id: str, attributes: Mapping[str, Any]) -> str | None:
        """The posted invoice for our reference; a draft left by an interrupted run is
        posted now."""
        rows = self.rpc.model(
            "account.invoice",
            "search_read",
            [("reference", "=", invoice_id), ("type", "=", "out")],
            0,
            None,
            None,
            ["id", "state"],
            attributes=attributes,
        )
        for row in rows:
            if row["state"] in ("posted", "paid"):
                return str(row["id"])
        for row in rows:
            if row["state"] in ("draft", "validated"):
                self.rpc.model(
                    "account.invoice",
                    "write",
                    [row["id"]],
                    {"journal": self._revenue_journal(attributes)},
                    attributes=attributes,
                )
                self.rpc.model("account.invoice", "post", [row["id"]], attributes=attributes)
                return str(row["id"])
        return None

    def create_posting(self, invoice: Mapping[str, Any], attributes: Mapping[str, Any]) -> str:
        reference = str(invoice["id"])
        amount = Decimal(str(invoice["amount"])).quantize(Decimal("0.01"))
        if amount <= 0:
            raise ValidationFailed(f"invoice {reference} has no amount to post ({amount})")
        with self._lock(f"invoice:{reference}"):
            existing = self.find_posting(reference, attributes)
            if existing is not None:
                return existing
            party = int(invoice["customer_account_number"])
            values = self.rpc.model(
                "account.invoice",
                "on_change",
                {"type": "out", "party": party, "company": self._company_id()},
                ["party"],
                attributes=attributes,
            )
            header = {
                k: v
                for k, v in (values or {}).items()
                if k in ("account", "invoice_address", "payment_term") and v is not None
            }
            header["journal"] = self._revenue_journal(attributes)
            [created] = self.rpc.model(
                "account.invoice",
                "create",
                [
                    {
                        "type": "out",
                        "company": self._company_id(),
                        "party": party,
                        "reference": reference,
                        "description": f"Invoice {invoice.get('invoice_number') or reference}",
                        "invoice_date": dt.date.fromisoformat(str(invoice["invoice_date"])[:10]),
                        **header,
                        "lines": [
                            [
                                "create",
                                [
                                    {
                                        "type": "line",
                                        "description": f"Services, deal {invoice.get('deal_id')}",
                                        "quantity": 1.0,
                                        "unit_price": amount,
                                        "account": self._revenue_account(attributes),
                                    }
                                ],
                            ]
                        ],
                    }
                ],
                attributes=attributes,
            )
            self.rpc.model("account.invoice", "post", [created], attributes=attributes)
            return str(created)

    def payments(self, since: dt.datetime | None) -> Iterator[dict[str, Any]]:
        """The payment lines on our customer invoices (those with our invoice id as their
        reference) where the line or its invoice changed at or after `since`, less
        PAYMENT_OVERLAP, by line id. Reconciling a full payment rewrites the invoice's
        earlier payment lines too, so they come again: the outbox's keys drop repeats."""
        domain: list[Any] = [
            ("invoice_payment", "!=", None),
            ("invoice_payment.type", "=", "out"),
            ("invoice_payment.reference", "!=", None),
        ]
        if since is not None:
            start = since - PAYMENT_OVERLAP
            domain.append(
                [
                    "OR",
                    ("create_date", ">=", start),
                    ("write_date", ">=", start),
                    ("invoice_payment.write_date", ">=", start),
                ]
            )
        last = 0
        while True:  # pages by line id: lines paid while paging are not skipped
            rows = self.rpc.model(
                "account.move.line",
                "search_read",
                [*domain, ("id", ">", last)],
                0,
                PAGE,
                [["id", "ASC"]],
                PAYMENT_FIELDS,
            )
            yield from (_payment(row) for row in rows)
            if len(rows) < PAGE:
                return
            last = int(rows[-1]["id"])

    def cash_status(
        self, payment: Mapping[str, Any], attributes: Mapping[str, Any]
    ) -> tuple[str, str]:
        [invoice] = self.rpc.model(
            "account.invoice",
            "read",
            [int(payment["arPosting"]["id"])],
            ["state", "party.code"],
            attributes=attributes,
        )
        return str(invoice["party."]["code"]), "paid" if invoice["state"] == "paid" else "current"

    @property
    def has_disputes(self) -> bool:
        """Tryton's customer invoices have no dispute state (a firm handles a dispute
        outside them: dunning, notes), so there is nothing to capture."""
        return False

    def account_of(self, posting: Mapping[str, Any], attributes: Mapping[str, Any]) -> str:
        [invoice] = self.rpc.model(
            "account.invoice", "read", [int(posting["id"])], ["party.code"], attributes=attributes
        )
        return str(invoice["party."]["code"])

    def receivables(self, party: str) -> list[dict[str, Any]]:
        """The party's receivable move lines: what AR holds for it."""
        rows: list[dict[str, Any]] = self.rpc.model(
            "account.move.line",
            "search_read",
            [("party", "=", int(party)), ("account.type.receivable", "=", True)],
            0,
            None,
            None,
            ["debit", "credit", "move.origin"],
        )
        return rows


PAGE = 500
PAYMENT_OVERLAP = dt.timedelta(minutes=10)
"""Re-read before the cursor: Tryton stamps a record with its transaction's start, so one
committed after a later-stamped one would otherwise fall behind the cursor."""
PAYMENT_FIELDS = [
    "date",
    "credit",
    "debit",
    "create_date",
    "write_date",
    "currency.code",
    "party.code",
    "invoice_payment.reference",
    "invoice_payment.create_date",
    "invoice_payment.write_date",
]


def _payment(row: Mapping[str, Any]) -> dict[str, Any]:
    """A payment line as a payment record of the REST ERP's shape (Erp.payments). Dotted
    fields come back nested under `<field>.`; amounts are in the company currency."""
    invoice, party = row["invoice_payment."], row["party."]
    changed = max(
        row["write_date"] or row["create_date"], invoice["write_date"] or invoice["create_date"]
    )
    return {
        "id": f"account.move.line,{row['id']}",
        "tranDate": row["date"].isoformat(),
        "amount": str(row["credit"] - row["debit"]),
        "currency": {"refName": row["currency."]["code"]},
        "invoiceExternalId": invoice["reference"],
        "arPosting": {"id": str(invoice["id"])},
        "customer": {"id": str(party["id"])},
        "lastModifiedDate": changed.isoformat(),
    }
