"""The posting flow against a real Tryton ERP server (trytond on SQLite): customers become
parties, invoices become posted customer invoices in AR, each exactly once."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import AnyHttpUrl, SecretStr
from sqlalchemy import select

from connectors.erp import NewCustomer
from connectors.http import SystemClient
from connectors.ratelimit import TokenBucket
from connectors.resources import Api
from connectors.tryton import TrytonErp, TrytonRpc, TrytonSession
from connectors.tryton_setup import build_database, copy_database, write_config
from probes.base import Outcome
from store import migrate
from store.engine import make_engine
from store.objects import Payment
from store.outbox import SyncMessage
from store.states import MessageState, System
from tests.conftest import free_port, skip_or_fail
from tests.connectors.firm import start_firm
from throughline.config import SystemSettings, TrytonAuth

PASSWORD = "admin"


@pytest.fixture(scope="session")
def tryton_template(pytestconfig: pytest.Config) -> Path:
    """A ready database, built once and cached between local runs (about 30 s to build)."""
    try:
        import trytond  # noqa: F401
    except ImportError:
        skip_or_fail("trytond is not installed: make test installs the `tryton` extra")

    store = getattr(pytestconfig, "cache", None)  # None with `-p no:cacheprovider`
    cache = Path(store.mkdir("tryton")) if store is not None else Path("/tmp")
    template = cache / f"template-{dt.date.today().year}"
    if not (template / "firm.sqlite").exists() or not (template / "ready").exists():
        build_database(template, "firm", PASSWORD)
        (template / "ready").touch()
    return template / "firm.sqlite"


@pytest.fixture
def tryton_url(tryton_template: Path, tmp_path: Path) -> Iterator[str]:
    copy_database(tryton_template, tmp_path / "firm.sqlite")
    port = free_port()
    config = write_config(tmp_path, port)
    trytond = Path(sys.executable).parent / "trytond"
    server = subprocess.Popen(
        [str(trytond), "-c", str(config), "-d", "firm"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.post(
                f"{url}/firm/rpc/",
                json={"id": 0, "method": "common.server.version", "params": []},
                timeout=2,
            )
            break
        except httpx.TransportError:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "trytond did not start"
            time.sleep(0.1)
    yield url
    server.terminate()
    server.wait(timeout=30)


def tryton_client(url: str, http: httpx.Client, password: str = PASSWORD) -> SystemClient:
    return SystemClient(
        System.ERP,
        url,
        http,
        TrytonSession(http, url, "firm", "admin", password),
        TokenBucket(100, 100),
        TracerProvider().get_tracer("t"),
    )


def tryton_erp(url: str) -> TrytonErp:
    return TrytonErp(TrytonRpc(tryton_client(url, httpx.Client(timeout=60)), "firm"))


def posted(erp: TrytonErp) -> list[dict]:  # type: ignore[type-arg]
    rows: list[dict] = erp.rpc.model(  # type: ignore[type-arg]
        "account.invoice",
        "search_read",
        [("type", "=", "out")],
        0,
        None,
        None,
        ["reference", "state", "total_amount", "party.code"],
    )
    return rows


def payment_method(rpc: TrytonRpc) -> int:
    """A payment method on the template's cash journal and account (it has none)."""
    [journal] = rpc.model("account.journal", "search", [("type", "=", "cash")], 0, 1, None)
    [cash] = rpc.model("account.account", "search", [("code", "=", "1.1.1")], 0, 1, None)
    [method] = rpc.model(
        "account.invoice.payment.method",
        "create",
        [{"name": "Cash", "journal": journal, "debit_account": cash, "credit_account": cash}],
    )
    return int(method)


def pay(rpc: TrytonRpc, invoice: int, amount: Decimal, method: int) -> str:
    """A customer payment recorded as a Tryton user records one: the invoice's pay wizard
    (a partial amount stays a payment line, the rest reconciles). Returns the new state."""
    [head] = rpc.model("account.invoice", "read", [invoice], ["party", "currency", "invoice_date"])
    active = {"active_model": "account.invoice", "active_id": invoice, "active_ids": [invoice]}
    context = {**rpc.context(), **active}
    session, _, _ = rpc.call("wizard.account.invoice.pay.create", context)
    try:
        start = {
            "payee": head["party"],
            "amount": amount,
            "currency": head["currency"],
            "payment_method": method,
            "date": head["invoice_date"],
            "description": "customer payment",
        }
        rpc.call("wizard.account.invoice.pay.execute", session, {"start": start}, "pay", context)
    finally:
        rpc.call("wizard.account.invoice.pay.delete", session, context)
    [after] = rpc.model("account.invoice", "read", [invoice], ["state"])
    return str(after["state"])


def test_payments_are_read_back_from_tryton_since_a_cursor(tryton_url: str) -> None:
    erp = tryton_erp(tryton_url)
    party = erp.create_customer(NewCustomer("ACC-7", "Initech", "US01", "USD", 30), {})
    ids = {}
    for ref, amount in (("INV-1", "1000.00"), ("INV-2", "600.00")):
        invoice = {"id": ref, "amount": amount, "customer_account_number": party}
        ids[ref] = int(erp.create_posting({**invoice, "invoice_date": "2026-03-02"}, {}))
    assert list(erp.payments(None)) == []
    method = payment_method(erp.rpc)
    assert pay(erp.rpc, ids["INV-1"], Decimal("1000.00"), method) == "paid"
    assert pay(erp.rpc, ids["INV-2"], Decimal("200.00"), method) == "posted"

    first = list(erp.payments(None))
    assert [(p["invoiceExternalId"], p["amount"], p["tranDate"]) for p in first] == [
        ("INV-1", "1000.00", "2026-03-02"),
        ("INV-2", "200.00", "2026-03-02"),
    ]
    assert first[0]["currency"] == {"refName": "USD"}
    assert first[0]["arPosting"] == {"id": str(ids["INV-1"])}
    assert first[0]["customer"] == {"id": party}
    assert erp.cash_status(first[0], {}) == ("ACC-7", "paid")
    assert erp.cash_status(first[1], {}) == ("ACC-7", "current")

    # the cursor a poll would keep; later payments come after it, earlier ones only
    # within the overlap (the capture's idempotency keys drop those)
    cursor = max(dt.datetime.fromisoformat(p["lastModifiedDate"]) for p in first)
    assert pay(erp.rpc, ids["INV-2"], Decimal("400.00"), method) == "paid"
    later = list(erp.payments(cursor))
    assert {p["amount"] for p in later if p["invoiceExternalId"] == "INV-2"} >= {"400.00"}
    assert erp.cash_status(later[-1], {}) == ("ACC-7", "paid")
    long_after = cursor + dt.timedelta(days=1)
    assert list(erp.payments(long_after)) == []


def test_concurrent_posts_of_one_invoice_make_one_posted_invoice(tryton_url: str) -> None:
    erp = tryton_erp(tryton_url)
    party = erp.create_customer(NewCustomer("ACC-1", "Acme Ltd", "US01", "USD", 30), {})
    assert erp.create_customer(NewCustomer("ACC-1", "Acme Ltd", "US01", "USD", 30), {}) == party
    invoice = {
        "id": "INV-9",
        "amount": "1250.50",
        "customer_account_number": party,
        "invoice_date": "2026-03-02",
        "deal_id": "OPP-9",
    }
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(erp.create_posting(invoice, {})))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    [row] = posted(erp)
    assert (row["reference"], row["state"], row["total_amount"]) == (
        "INV-9",
        "posted",
        Decimal("1250.50"),
    )
    [line] = erp.receivables(party)
    assert line["debit"] == Decimal("1250.50")


def test_the_firms_posting_flow_runs_against_tryton(tryton_url: str, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/store.db", immediate=True)
    migrate.upgrade(engine)
    erp_settings = SystemSettings(
        base_url=AnyHttpUrl(tryton_url),
        auth=TrytonAuth(database="firm", username="admin", password=SecretStr(PASSWORD)),
    )
    firm = start_firm(tmp_path / "firm", engine, seed=42, horizon_days=60, erp=erp_settings)
    erp = tryton_erp(tryton_url)
    try:
        firm.run(60)
        firm.connectors.cycle()  # a second pass finds everything done: nothing doubles
        invoices = firm.world.services["billing"].store.all("invoices")
        agreements = [
            a
            for a in firm.world.services["clm"].store.all("agreements")
            if a["status"] == "executed"
        ]
        rows = posted(erp)
        # customers pay in Tryton: one invoice in full, one of another customer in part
        full = rows[0]
        part = next(r for r in rows if r["party."]["code"] != full["party."]["code"])
        method = payment_method(erp.rpc)
        assert pay(erp.rpc, full["id"], full["total_amount"], method) == "paid"
        half = (part["total_amount"] / 2).quantize(Decimal("0.01"))
        assert pay(erp.rpc, part["id"], half, method) == "posted"
        firm.connectors.cycle()
        firm.connectors.cycle()  # the payments again (cursor overlap): nothing doubles
        firm.flush()
        crm_accounts = {a["id"]: a for a in firm.world.services["crm"].store.all("accounts")}
    finally:
        firm.stop()
    with engine.connect() as conn:
        payments = conn.execute(select(Payment.invoice_id, Payment.amount)).all()
        steps = (
            conn.execute(select(SyncMessage.state).where(SyncMessage.flow == "cash_collected"))
            .scalars()
            .all()
        )
    assert sorted((i, Decimal(str(a))) for i, a in payments) == sorted(
        [(full["reference"], full["total_amount"]), (part["reference"], half)]
    )
    assert steps == [MessageState.SUCCEEDED] * 2  # each payment's account update, once
    assert crm_accounts[full["party."]["code"]]["cashStatus"] == "paid"
    assert crm_accounts[part["party."]["code"]]["cashStatus"] == "current"
    by_reference = Counter(r["reference"] for r in rows)
    assert invoices and set(by_reference) == {i["id"] for i in invoices}
    assert max(by_reference.values()) == 1
    amounts = {r["reference"]: r["total_amount"] for r in rows}
    for invoice in invoices:
        assert amounts[invoice["id"]] == Decimal(str(invoice["amount"])).quantize(Decimal("0.01"))
    assert {r["state"] for r in posted(erp) if r["id"] not in (full["id"], part["id"])} == {
        "posted"
    }
    codes = erp.rpc.model(
        "party.party", "search_read", [("code", "!=", None)], 0, None, None, ["code"]
    )
    parties = Counter(p["code"] for p in codes)
    accounts = {a["counterparty"]["crm_account_id"] for a in agreements}
    assert accounts <= set(parties) and all(parties[a] == 1 for a in accounts)


def test_the_health_probe_reads_a_tryton_erp(tryton_url: str) -> None:
    from probes.base import ProbeContext
    from probes.health import TrytonHealthProbe
    from store.states import ProbeStatus

    def run(password: str) -> Outcome:
        http = httpx.Client(timeout=60)
        api = Api(tryton_client(tryton_url, http, password))
        ctx = ProbeContext(None, {System.ERP: api}, lambda: dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
        try:
            return TrytonHealthProbe("firm").run(ctx)
        finally:
            http.close()

    healthy = run(PASSWORD)
    assert healthy.status is ProbeStatus.OK, healthy.observed
    assert healthy.detail["api_version"].startswith("8.2")
    refused = run("wrong")
    assert refused.status is ProbeStatus.FAIL
    assert (refused.observed or "").startswith("login refused")
