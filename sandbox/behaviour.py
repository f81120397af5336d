"""How the firm's people behave, as pure functions of the seed and the record: hours
logged, approval days, billing-run days, when and how customers pay. The actors and the
ground truth both use these, so what should happen and what does happen agree."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from sandbox.scenario import Account, DealPlan, money


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join([str(seed), *map(str, parts)]))


def delivery_weeks(deal: DealPlan) -> list[dt.date]:
    """Mondays of the weeks people work on the deal's project."""
    if deal.billing_model == "retainer":
        months = (deal.term_months or 0) + (
            deal.amendment.extra_months or 0 if deal.amendment else 0
        )
        count = months * 52 // 12
    else:
        count = deal.weeks
    return [deal.project_start + dt.timedelta(weeks=n) for n in range(count)]


def logged_hours(seed: int, deal: DealPlan, consultant_key: str, week: dt.date) -> float:
    """Planned hours give or take a day's slippage, to the half hour."""
    planned = next(a.hours_per_week for a in deal.staffing if a.consultant_key == consultant_key)
    factor = _rng(seed, "hours", deal.key, consultant_key, week).uniform(0.8, 1.12)
    return round(planned * factor * 2) / 2


def timesheet_day(week: dt.date) -> dt.date:
    """Consultants submit on Friday."""
    return week + dt.timedelta(days=4)


def approval_day(submitted: dt.date) -> dt.date:
    """Managers approve the week's timesheets on the following Monday."""
    return submitted + dt.timedelta(days=7 - submitted.weekday())


def milestone_due(deal: DealPlan, due_week: int) -> dt.date:
    return deal.project_start + dt.timedelta(weeks=due_week, days=-3)


def milestone_approved_on(seed: int, deal: DealPlan, milestone_key: str, due: dt.date) -> dt.date:
    return due + dt.timedelta(days=_rng(seed, "milestone", milestone_key).choice([0, 1, 3, 5, 7]))


def amendment_day(deal: DealPlan) -> dt.date | None:
    if deal.amendment is None:
        return None
    return deal.project_start + dt.timedelta(weeks=deal.amendment.after_weeks)


def is_billing_run(day: dt.date) -> bool:
    """Billing runs on the first of each month."""
    return day.day == 1


def billing_runs(first: dt.date, last: dt.date) -> list[dt.date]:
    day = first.replace(day=1)
    runs = []
    while day <= last:
        if day >= first:
            runs.append(day)
        day = (day + dt.timedelta(days=32)).replace(day=1)
    return runs


@dataclass(frozen=True)
class PaymentPlan:
    installments: tuple[tuple[dt.date, Decimal], ...]
    disputed_on: dt.date | None

    @property
    def paid_in_full_on(self) -> dt.date:
        return self.installments[-1][0]


def payment_plan(
    seed: int, account: Account | None, issued: dt.date, amount: Decimal
) -> PaymentPlan:
    """When a customer pays an invoice: its terms plus its habitual lateness; some pay in
    two parts, a few dispute first and pay a month later."""
    terms = account.payment_terms_days if account else 30
    lateness = account.lateness_days if account else 10.0
    rng = _rng(seed, "pay", account.key if account else "-", issued, amount)
    delay = terms + max(-5, round(rng.gauss(lateness, 6.0)))
    roll = rng.random()
    due = issued + dt.timedelta(days=delay)
    if roll < 0.04:
        disputed = issued + dt.timedelta(days=rng.randint(7, 20))
        return PaymentPlan(((due + dt.timedelta(days=30), amount),), disputed)
    if roll < 0.16:
        first = money(amount / 2)
        later = due + dt.timedelta(days=rng.randint(20, 40))
        return PaymentPlan(((due, first), (later, amount - first)), None)
    return PaymentPlan(((due, amount),), None)
