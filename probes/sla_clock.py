"""Stage SLAs as clocks: which rule applies to an object, and when its deadline falls.

Business days (`5bd`) count Monday to Friday: a clock started on a Saturday starts on the
following Monday at midnight, and each business day added skips the weekend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from throughline.config import StageSla

_DAY = dt.timedelta(days=1)


def add_business_days(start: dt.datetime, days: int) -> dt.datetime:
    moment = start
    if moment.weekday() >= 5:
        moment = (moment + _DAY * (7 - moment.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
    added = 0
    while added < days:
        moment += _DAY
        if moment.weekday() < 5:
            added += 1
    return moment


def deadline(rule: StageSla, started_at: dt.datetime, billing_cycle: dt.timedelta) -> dt.datetime:
    """When an object that entered `rule.from_stage` at `started_at` is due at `to_stage`."""
    if rule.within.business_days:
        due = add_business_days(started_at, rule.within.amount)
    else:
        due = started_at + rule.within.timedelta
    return due + billing_cycle if rule.plus_billing_cycle else due


def matching_rule(
    rules: Sequence[StageSla],
    from_stage: str,
    legal_entity: str | None,
    amount: float | None,
) -> StageSla | None:
    """The most specific rule for `from_stage`: one for the object's legal entity beats a
    general one, and among those the highest `min_amount` the amount reaches wins."""
    candidates = [
        r
        for r in rules
        if r.from_stage == from_stage
        and (r.legal_entity is None or r.legal_entity == legal_entity)
        and (r.min_amount is None or (amount is not None and amount >= r.min_amount))
    ]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda r: (r.legal_entity is not None, r.min_amount or 0.0),
    )
