"""A tiny firm with answers worked out by hand (see docs/kpis.md for the formulas).

now = 2026-06-30 12:00 UTC; windows 1d, 7d, 30d, 90d; USD 1, GBP 1.27, EUR 1.08;
billing cycle 30d + grace 5d; invoiced->posted SLA 1h.

Edge cases: events written out of order (D2's activation before its closed_won), a deal
that skipped stages (D2: closed_won -> project_activated), an invoice credited (I3) and
reissued (I4), three currencies, a 1d window with nothing due for posting.
"""

from __future__ import annotations

from tests.kpis.eventlog import EventLog, at

NOW = at("2026-06-30 12:00")


def firm_log() -> EventLog:
    log = EventLog()
    # Out of order on purpose: D2's later events are written before its closed_won.
    log.event("project", "P2", "D2", "project_activated", "2026-06-20 00:00")
    log.event("deal", "D2", "D2", "project_activated", "2026-06-20 00:00")
    log.event("deal", "D2", "D2", "closed_won", "2026-06-10 00:00", 50000, "GBP")
    for stage, when in [
        ("closed_won", "2026-06-01 00:00"),
        ("contract_executed", "2026-06-02 00:00"),
        ("customer_provisioned", "2026-06-02 06:00"),
        ("project_activated", "2026-06-03 06:00"),
        ("billing_scheduled", "2026-06-03 08:00"),
        ("first_invoiced", "2026-03-01 00:00"),
        ("first_posted", "2026-03-01 00:20"),
        ("first_cash", "2026-06-25 00:00"),
    ]:
        log.event("deal", "D1", "D1", stage, when)
    log.event("deal", "D3", "D3", "closed_won", "2026-06-29 00:00", 20000, "EUR")
    log.event("deal", "D3", "D3", "first_invoiced", "2026-06-30 11:30")
    log.event("deal", "D4", "D4", "closed_won", "2026-04-15 00:00", 10000, "USD")
    log.event("deal", "D5", "D5", "closed_won", "2026-06-25 00:00", 8000, "GBP")
    log.event("invoice", "I3", "D2", "invoiced", "2026-06-22 00:00", 10000, "GBP")
    log.event("invoice", "I3", "D2", "credited", "2026-06-23 00:00")
    log.event("invoice", "I4", "D2", "invoiced", "2026-06-24 00:00", 10000, "GBP")
    log.event("invoice", "I4", "D2", "posted", "2026-06-24 00:10")
    log.event("invoice", "I4", "D2", "paid", "2026-06-26 00:00", 4000, "GBP")

    log.deal(
        "D1",
        entity="us",
        region="amer",
        practice="data",
        currency="USD",
        amount=100000,
        stage="first_cash",
        closed_won="2026-06-01 00:00",
    )
    log.deal(
        "D2",
        entity="uk",
        region="emea",
        practice="cloud",
        currency="GBP",
        amount=50000,
        stage="project_activated",
        closed_won="2026-06-10 00:00",
    )
    log.deal(
        "D3",
        entity="de",
        region="emea",
        practice="data",
        currency="EUR",
        amount=20000,
        stage="first_invoiced",
        closed_won="2026-06-29 00:00",
    )
    log.deal(
        "D4",
        entity="us",
        region="amer",
        practice="cloud",
        currency="USD",
        amount=10000,
        stage="closed_won",
        closed_won="2026-04-15 00:00",
    )
    log.deal(
        "D5",
        entity="uk",
        region="emea",
        practice="data",
        currency="GBP",
        amount=8000,
        stage="closed_won",
        closed_won="2026-06-25 00:00",
    )
    log.contract("C1", "D1", "USD", 120000, "2026-06-02 00:00")
    log.contract("C2", "D2", "GBP", 50000, None)
    log.contract("C3", "D3", "EUR", 20000, "2026-06-29 12:00")
    log.project("P1", "D1", "2026-06-03 06:00")
    log.project("P2", "D2", "2026-06-20 00:00")
    log.project("P3", "D3", "2026-06-30 00:00")

    log.invoice(
        "I1",
        "D1",
        entity="us",
        currency="USD",
        amount=30000,
        stage="paid",
        issued="2026-06-05 10:00",
        posted="2026-06-05 10:30",
        paid="2026-06-25 00:00",
        amount_paid=30000,
    )
    log.invoice(
        "I2",
        "D1",
        entity="us",
        currency="USD",
        amount=20000,
        stage="posted",
        issued="2026-06-20 09:00",
        posted="2026-06-20 12:00",
        has_exception=True,
    )
    log.invoice(
        "I3",
        "D2",
        entity="uk",
        currency="GBP",
        amount=10000,
        stage="credited",
        issued="2026-06-22 00:00",
        has_exception=True,
    )
    log.invoice(
        "I4",
        "D2",
        entity="uk",
        currency="GBP",
        amount=10000,
        stage="posted",
        issued="2026-06-24 00:00",
        posted="2026-06-24 00:10",
        amount_paid=4000,
    )
    log.invoice(
        "I5",
        "D3",
        entity="de",
        currency="EUR",
        amount=5000,
        stage="invoiced",
        issued="2026-06-30 11:30",
    )
    log.invoice(
        "I6",
        "D1",
        entity="us",
        currency="USD",
        amount=1000,
        stage="posted",
        issued="2026-03-01 00:00",
        posted="2026-03-01 00:20",
    )

    log.item(
        "B1",
        "D1",
        kind="time",
        quantity=100,
        rate=150,
        currency="USD",
        approved="2026-06-01 00:00",
        stage="invoiced",
        invoice_id="I1",
        invoiced="2026-06-05 10:00",
        invoiced_amount=15000,
    )
    log.item(
        "B2",
        "D1",
        kind="time",
        quantity=100,
        rate=150,
        currency="USD",
        approved="2026-06-02 00:00",
        stage="invoiced",
        invoice_id="I1",
        invoiced="2026-06-05 10:00",
        invoiced_amount=14000,
    )
    log.item(
        "B3",
        "D1",
        kind="milestone",
        quantity=1,
        rate=20000,
        currency="USD",
        approved="2026-06-15 00:00",
        stage="invoiced",
        invoice_id="I2",
        invoiced="2026-06-20 09:00",
        invoiced_amount=20000,
    )
    log.item(
        "B4",
        "D2",
        kind="time",
        quantity=40,
        rate=250,
        currency="GBP",
        approved="2026-06-21 00:00",
        stage="invoiced",
        invoice_id="I4",
        invoiced="2026-06-24 00:00",
        invoiced_amount=10000,
    )
    log.item(
        "B5", "D4", kind="time", quantity=10, rate=200, currency="USD", approved="2026-05-01 00:00"
    )
    log.item(
        "B6", "D5", kind="time", quantity=8, rate=100, currency="GBP", approved="2026-06-28 00:00"
    )
    log.item(
        "B7",
        "D3",
        kind="milestone",
        quantity=1,
        rate=3000,
        currency="EUR",
        approved="2026-06-29 00:00",
        stage="rejected",
    )
    log.item(
        "B8", "D4", kind="time", quantity=5, rate=200, currency="USD", approved="2026-03-01 00:00"
    )

    log.message(1, "invoice_to_ar", "erp", "ar-posting:I1", "succeeded", "2026-06-05 10:00")
    log.attempt(1, 1, "retryable", "2026-06-05 10:00")
    log.attempt(1, 2, "succeeded", "2026-06-05 10:05")
    log.message(2, "invoice_to_ar", "erp", "ar-posting:I4", "succeeded", "2026-06-24 00:05")
    log.attempt(2, 1, "succeeded", "2026-06-24 00:05")
    log.message(3, "closed_won_to_clm", "clm", "clm-contract:D2", "dead", "2026-06-11 00:00")
    for n in (1, 2, 3):
        log.attempt(3, n, "retryable" if n < 3 else "fatal", f"2026-06-11 00:0{n}")
    log.dead_letter(1, 3, "closed_won_to_clm", "clm", "2026-06-11 01:00")
    log.replay(1, 3, "succeeded", "2026-06-12 00:00")
    log.probe("erp", "ok", 120, "2026-06-30 10:00", rate_limit=(30, 40))
    log.probe("erp", "fail", 900, "2026-06-30 11:00")
    log.probe("erp", "ok", 100, "2026-06-30 11:30", rate_limit=(4, 40))
    return log
