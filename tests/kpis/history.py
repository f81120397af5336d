"""A seeded, randomly generated store history (a few hundred deals over 200 days) for
checking the KPI code against plain SQL. Times are whole seconds."""

from __future__ import annotations

import datetime as dt
import random

from tests.kpis.eventlog import EventLog

NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
ENTITY = {"USD": "us", "GBP": "uk", "EUR": "de"}
REGION = {"us": "amer", "uk": "emea", "de": "emea"}
STAGES = [
    "closed_won",
    "contract_executed",
    "customer_provisioned",
    "project_activated",
    "billing_scheduled",
    "first_invoiced",
    "first_posted",
    "first_cash",
]


def _s(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def history_log(deals: int = 250, seed: int = 7) -> EventLog:
    rng = random.Random(seed)
    cancellations = random.Random(f"cancellations:{seed}")  # leaves `rng`'s draws as they were
    log = EventLog()

    def later(start: dt.datetime, max_days: float) -> dt.datetime:
        return start + dt.timedelta(seconds=rng.randint(60, int(max_days * 86400)))

    for n in range(deals):
        deal = f"D{n:04d}"
        currency = rng.choice(["USD", "GBP", "EUR"])
        entity = ENTITY[currency]
        won = NOW - dt.timedelta(seconds=rng.randint(0, 200 * 86400))
        amount = rng.randint(5, 500) * 1000 + rng.randint(0, 99) / 100
        reached = 0
        if rng.random() < 0.85:
            executed = later(won, 10)
            if executed <= NOW:
                log.contract(
                    f"C{n}", deal, currency, amount * rng.choice([1, 1, 0.8]), _s(executed)
                )
                reached = 2
        activated = later(won, 30) if rng.random() < 0.75 else None
        if activated is not None and activated > NOW:
            activated = None
        log.project(f"P{n}", deal, _s(activated) if activated else None)
        if activated is not None:
            reached = 4
            first_issued: dt.datetime | None = None
            for k in range(rng.randint(0, 3)):
                issued = later(activated, 60)
                if issued > NOW:
                    continue
                invoice = f"I{n}-{k}"
                posted = issued + dt.timedelta(seconds=rng.randint(0, 3 * 3600))
                posted_at = posted if rng.random() < 0.85 and posted <= NOW else None
                paid = later(posted, 90) if posted_at else None
                paid_at = paid if paid and paid <= NOW and rng.random() < 0.6 else None
                value = rng.randint(1, 50) * 500.0
                credited = rng.random() < 0.06
                exception = credited or rng.random() < 0.15
                stage = (
                    "credited"
                    if credited
                    else "paid"
                    if paid_at
                    else "posted"
                    if posted_at
                    else "invoiced"
                )
                log.invoice(
                    invoice,
                    deal,
                    entity=entity,
                    currency=currency,
                    amount=value,
                    stage=stage,
                    issued=_s(issued),
                    posted=_s(posted_at) if posted_at else None,
                    paid=_s(paid_at) if paid_at else None,
                    amount_paid=value if paid_at else rng.choice([0, 0, value / 2]),
                    has_exception=exception,
                )
                first_issued = min(first_issued or issued, issued)
                reached = max(reached, 7 if paid_at else 6 if posted_at else 5)
                for j in range(rng.randint(0, 2)):
                    approved = later(activated, 20)
                    if approved > issued:
                        approved = issued - dt.timedelta(hours=1)
                    quantity = rng.randint(1, 80)
                    rate = rng.choice([100, 150, 200])
                    log.item(
                        f"B{n}-{k}-{j}",
                        deal,
                        kind="time",
                        quantity=quantity,
                        rate=rate,
                        currency=currency,
                        approved=_s(approved),
                        stage="invoiced",
                        invoice_id=invoice,
                        invoiced=_s(issued),
                        invoiced_amount=quantity * rate - rng.choice([0, 0, 0, 250]),
                    )
            for j in range(rng.randint(0, 3)):
                approved = later(activated, 120)
                if approved > NOW:
                    continue
                log.item(
                    f"W{n}-{j}",
                    deal,
                    kind=rng.choice(["time", "milestone"]),
                    quantity=rng.randint(1, 40),
                    rate=rng.choice([120, 180]),
                    currency=currency,
                    approved=_s(approved),
                    stage="rejected" if rng.random() < 0.08 else "billable_approved",
                )
        # a contract cancelled after it was executed: the deal's stage for good
        stage = "cancelled" if reached >= 2 and cancellations.random() < 0.06 else STAGES[reached]
        log.deal(
            deal,
            entity=entity,
            region=REGION[entity],
            practice=rng.choice(["data", "cloud", "apps"]),
            currency=currency,
            amount=amount,
            stage=stage,
            closed_won=_s(won),
        )
        log.event("deal", deal, deal, "closed_won", _s(won), amount, currency)
    return log
