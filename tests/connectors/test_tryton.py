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

from connectors.erp import NewCustomer
from connectors.http import SystemClient
from connectors.ratelimit import TokenBucket
from connectors.resources import Api
from connectors.tryton import TrytonErp, TrytonRpc, TrytonSession
from connectors.tryton_setup import build_database, copy_database, write_config
from probes.base import Outcome
from store import migrate
from store.engine import make_engine
from store.states import System
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

    cache = Path(pytestconfig.cache.mkdir("tryton")) if pytestconfig.cache else Path("/tmp")
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
    try:
        firm.run(60)
        firm.connectors.cycle()  # a second pass finds everything done: nothing doubles
        invoices = firm.world.services["billing"].store.all("invoices")
        agreements = [
            a
            for a in firm.world.services["clm"].store.all("agreements")
            if a["status"] == "executed"
        ]
    finally:
        firm.stop()
    erp = tryton_erp(tryton_url)
    rows = posted(erp)
    by_reference = Counter(r["reference"] for r in rows)
    assert invoices and set(by_reference) == {i["id"] for i in invoices}
    assert max(by_reference.values()) == 1
    amounts = {r["reference"]: r["total_amount"] for r in rows}
    for invoice in invoices:
        assert amounts[invoice["id"]] == Decimal(str(invoice["amount"])).quantize(Decimal("0.01"))
    assert all(r["state"] == "posted" for r in rows)
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
