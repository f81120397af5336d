"""Prometheus collector for values that live in the database, read at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from store.outbox import DeadLetter, SyncMessage
from store.states import DeadLetterState, MessageState

logger = logging.getLogger(__name__)


class StoreCollector(Collector):
    """Outbox depth by state and open dead letters by flow, straight from the store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("throughline_store_up", "1 if the store answered the scrape")
        messages = GaugeMetricFamily(
            "throughline_sync_messages", "Outbox messages by state", labels=["state"]
        )
        dead = GaugeMetricFamily(
            "throughline_dead_letters_open", "Open dead letters by flow", labels=["flow"]
        )
        try:
            with self._engine.connect() as conn:
                by_state = dict(
                    conn.execute(
                        select(SyncMessage.state, func.count()).group_by(SyncMessage.state)
                    ).all()
                )
                by_flow = conn.execute(
                    select(DeadLetter.flow, func.count())
                    .where(DeadLetter.state == DeadLetterState.OPEN)
                    .group_by(DeadLetter.flow)
                ).all()
        except SQLAlchemyError:
            logger.exception("store unreachable during scrape")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for state in MessageState:
            messages.add_metric([state.value], by_state.get(state, 0))
        for flow, count in by_flow:
            dead.add_metric([flow], count)
        yield from (up, messages, dead)
