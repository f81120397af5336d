"""Integration health per flow and system: sync success, retries, dead letters, replays,
first-attempt AR posting success, and per system probe availability, p95 latency and the
least rate-limit headroom the health probes saw."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.context import KpiContext
from kpis.definitions import INTEGRATION_DIMENSIONS
from kpis.frames import Columns, IntegrationFrames
from kpis.slicing import Table, in_window, percentile, ratio
from kpis.values import KpiValue

POSTING_KEY_PREFIX = "ar-posting:"
"""Idempotency keys of AR postings (DESIGN.md: `ar-posting:<invoice id>`)."""


def _with_message(columns: Columns, messages: Columns) -> Columns:
    """`columns` plus the flow, system and idempotency key of their outbox message."""
    at = pd.Index(messages["id"]).get_indexer(pd.Index(columns["message_id"]))
    found = at >= 0
    joined = dict(columns)
    for name in ("flow", "system", "idempotency_key"):
        values = np.full(len(at), None, dtype=object)
        values[found] = messages[name][at[found]]
        joined[name] = values
    return joined


def _table(columns: Columns) -> Table:
    return Table.factorized(columns, INTEGRATION_DIMENSIONS)


def compute_integration(frames: IntegrationFrames, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    now = ctx.now
    dims = INTEGRATION_DIMENSIONS
    messages = _table(frames.messages).rows()
    attempts = _table(_with_message(frames.attempts, frames.messages)).rows()
    replays = _table(_with_message(frames.replays, frames.messages)).rows()
    dead = _table(frames.dead_letters).rows()
    probes = _table(frames.probes).rows()
    health = probes.where(probes["kind"] == "health")
    posting = np.array(
        [str(k).startswith(POSTING_KEY_PREFIX) for k in attempts["idempotency_key"]], dtype=bool
    )
    for window in ctx.windows:
        w, span = window.label, window.seconds
        created = messages.where(in_window(messages["created_at"], now, span))
        finished = created.where(np.isin(created["state"], ["succeeded", "dead"]))
        for dim, dv, group in finished.slices(dims):
            ok = int((group["state"] == "succeeded").sum())
            out.append(
                ctx.value(
                    "sync_success_rate",
                    w,
                    (dim, dv),
                    ratio(ok, len(group)),
                    group.members(),
                    numerator=ok,
                    denominator=len(group),
                )
            )
        started_mask = in_window(attempts["started_at"], now, span)
        started = attempts.where(started_mask)
        retries = started.where(started["attempt_no"] > 1)
        for dim, dv, group in retries.slices(dims):
            out.append(
                ctx.value(
                    "sync_retries", w, (dim, dv), len(group), group.members(column="message_id")
                )
            )
        firsts = attempts.where(started_mask & posting & (attempts["attempt_no"] == 1))
        for dim, dv, group in firsts.slices(dims):
            ok = int((group["outcome"] == "succeeded").sum())
            out.append(
                ctx.value(
                    "first_attempt_posting_success",
                    w,
                    (dim, dv),
                    ratio(ok, len(group)),
                    group.members(column="message_id"),
                    numerator=ok,
                    denominator=len(group),
                )
            )
        died = dead.where(in_window(dead["dead_at"], now, span))
        for dim, dv, group in died.slices(dims):
            out.append(
                ctx.value(
                    "dead_letters", w, (dim, dv), len(group), group.members(column="message_id")
                )
            )
        asked = replays.where(in_window(replays["requested_at"], now, span))
        done = asked.where(asked["outcome"] != "pending")
        for dim, dv, group in done.slices(dims):
            ok = int(np.isin(group["outcome"], ["succeeded", "already_done"]).sum())
            out.append(
                ctx.value(
                    "replay_success_rate",
                    w,
                    (dim, dv),
                    ratio(ok, len(group)),
                    group.members(column="message_id"),
                    numerator=ok,
                    denominator=len(group),
                )
            )
        probed = health.where(in_window(health["started_at"], now, span))
        for dim, dv, group in probed.slices(("system",)):
            up = int(np.isin(group["status"], ["ok", "warn"]).sum())
            ids = group.members()
            out += [
                ctx.value(
                    "probe_availability",
                    w,
                    (dim, dv),
                    ratio(up, len(group)),
                    ids,
                    numerator=up,
                    denominator=len(group),
                ),
                ctx.value(
                    "probe_latency_p95", w, (dim, dv), percentile(group["duration_ms"], 0.95), ids
                ),
            ]
            headroom = np.asarray(group["headroom"], dtype="float64")
            headroom = headroom[~np.isnan(headroom)]
            out.append(
                ctx.value(
                    "rate_limit_headroom_min",
                    w,
                    (dim, dv),
                    float(headroom.min()) if len(headroom) else None,
                    ids,
                )
            )
    return out
