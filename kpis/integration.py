"""Integration health per flow and system: sync success, retries, dead letters, replays,
first-attempt AR posting success, and per system probe availability and p95 latency."""

from __future__ import annotations

import pandas as pd

from kpis.context import KpiContext
from kpis.definitions import INTEGRATION_DIMENSIONS
from kpis.frames import IntegrationFrames
from kpis.slicing import UNKNOWN, in_window, percentile, ratio, slices
from kpis.values import KpiValue

POSTING_KEY_PREFIX = "ar-posting:"
"""Idempotency keys of AR postings (DESIGN.md: `ar-posting:<invoice id>`)."""


def _with_message(frame: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    lookup = messages.set_index("id")
    out = frame.assign(
        flow=frame["message_id"].map(lookup["flow"]),
        system=frame["message_id"].map(lookup["system"]),
        idempotency_key=frame["message_id"].map(lookup["idempotency_key"]),
    )
    return _filled(out)


def _filled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        **{d: frame[d].fillna(UNKNOWN).astype(str) for d in INTEGRATION_DIMENSIONS if d in frame}
    )


def compute_integration(frames: IntegrationFrames, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    now = ctx.now
    dims = INTEGRATION_DIMENSIONS
    messages = _filled(frames.messages)
    attempts = _with_message(frames.attempts, frames.messages)
    replays = _with_message(frames.replays, frames.messages)
    dead = _filled(frames.dead_letters)
    probes = _filled(frames.probes)
    health = probes[probes["kind"] == "health"]
    for window in ctx.windows:
        w, span = window.label, window.seconds
        created = messages[in_window(messages["created_at"], now, span)]
        finished = created[created["state"].isin(["succeeded", "dead"])]
        for dim, dv, group in slices(finished, dims):
            ok = int((group["state"] == "succeeded").sum())
            out.append(
                ctx.value(
                    "sync_success_rate",
                    w,
                    (dim, dv),
                    ratio(ok, len(group)),
                    group["id"],
                    numerator=ok,
                    denominator=len(group),
                )
            )
        started = attempts[in_window(attempts["started_at"], now, span)]
        retries = started[started["attempt_no"] > 1]
        for dim, dv, group in slices(retries, dims):
            out.append(ctx.value("sync_retries", w, (dim, dv), len(group), group["message_id"]))
        firsts = started[
            (started["attempt_no"] == 1)
            & started["idempotency_key"].fillna("").astype(str).str.startswith(POSTING_KEY_PREFIX)
        ]
        for dim, dv, group in slices(firsts, dims):
            ok = int((group["outcome"] == "succeeded").sum())
            out.append(
                ctx.value(
                    "first_attempt_posting_success",
                    w,
                    (dim, dv),
                    ratio(ok, len(group)),
                    group["message_id"],
                    numerator=ok,
                    denominator=len(group),
                )
            )
        died = dead[in_window(dead["dead_at"], now, span)]
        for dim, dv, group in slices(died, dims):
            out.append(ctx.value("dead_letters", w, (dim, dv), len(group), group["message_id"]))
        asked = replays[in_window(replays["requested_at"], now, span)]
        done = asked[asked["outcome"] != "pending"]
        for dim, dv, group in slices(done, dims):
            ok = int(group["outcome"].isin(["succeeded", "already_done"]).sum())
            out.append(
                ctx.value(
                    "replay_success_rate",
                    w,
                    (dim, dv),
                    ratio(ok, len(group)),
                    group["message_id"],
                    numerator=ok,
                    denominator=len(group),
                )
            )
        probed = health[in_window(health["started_at"], now, span)]
        for dim, dv, group in slices(probed, ("system",)):
            up = int(group["status"].isin(["ok", "warn"]).sum())
            out += [
                ctx.value(
                    "probe_availability",
                    w,
                    (dim, dv),
                    ratio(up, len(group)),
                    group["id"],
                    numerator=up,
                    denominator=len(group),
                ),
                ctx.value(
                    "probe_latency_p95",
                    w,
                    (dim, dv),
                    percentile(group["duration_ms"].astype("float64"), 0.95),
                    group["id"],
                ),
            ]
    return out
