"""Sections of the integration-health page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from connectors.replay import replay_statuses, request_replay
from dashboard import cached_queries as cq
from dashboard import charts
from dashboard.components import deal_link, deal_picker
from dashboard.resources import allowed, current_user, engine, now
from dashboard.roles import Permission
from dashboard.sections.context import PageContext
from store.states import ProbeKind

LAST_REPLAYS = "last_replays"
REPLAY_CHUNK = 20


def system_flow_matrix(ctx: PageContext) -> None:
    st.subheader("Systems by flow")
    matrix = cq.sync_matrix(ctx.url, ctx.now - ctx.window)
    if matrix.empty:
        st.info(
            f"No sync messages in the last {ctx.filters.window} and no probe results yet: the "
            "syncs and probes write here once they run (`make run` starts them with the demo)."
        )
        return
    st.plotly_chart(charts.health_matrix_figure(matrix), key="health_matrix")
    st.dataframe(matrix, hide_index=True, key="health_table")


def probe_states(ctx: PageContext) -> None:
    probes = cq.probes(ctx.url)
    if probes.empty:
        st.caption("No probe results yet: health probes report here once they run.")
        return
    st.dataframe(probes, hide_index=True, key="probe_table")


def _replay(ids: list[int], reason: str) -> None:
    """Queue replays in chunks with a progress bar; remember them to show their outcome."""
    user = current_user()
    assert user is not None
    progress = st.progress(0.0, text=f"Replaying {len(ids)} dead letter(s)...")
    queued = []
    for start in range(0, len(ids), REPLAY_CHUNK):
        chunk = ids[start : start + REPLAY_CHUNK]
        queued += request_replay(engine(), chunk, user.username, reason or None, now())
        done = min(start + REPLAY_CHUNK, len(ids))
        progress.progress(done / len(ids), text=f"Queued {done} of {len(ids)}")
    st.session_state[LAST_REPLAYS] = [r.replay_id for r in queued]
    cq.forget_outbox_reads()
    st.rerun()


def replay_outcome() -> None:
    ids = st.session_state.get(LAST_REPLAYS)
    if not ids:
        return
    statuses = replay_statuses(engine(), ids)
    table = pd.DataFrame(
        [
            {
                "replay": s.replay_id,
                "dead_letter": s.dead_letter_id,
                "outcome": s.outcome.value,
                "detail": s.detail,
                "requested_by": s.requested_by,
                "finished_at": s.finished_at,
            }
            for s in statuses
        ]
    )
    pending = int((table["outcome"] == "pending").sum()) if not table.empty else 0
    st.success(
        f"Replay requested for {len(statuses)} dead letter(s); {pending} pending until an "
        "outbox worker runs them."
    )
    st.dataframe(table, hide_index=True, key="replay_outcome")
    st.button("Refresh outcome", key="refresh_replays")


def dead_letter_groups(ctx: PageContext) -> None:
    st.subheader("Dead letters by error class")
    letters = cq.dead_letters(ctx.url)
    replay_outcome()
    if letters.empty:
        st.success("No open dead letters.")
        return
    may_replay = allowed(Permission.REPLAY)
    counts = letters.groupby("error_class").size().sort_values(ascending=False)
    for error_class in counts.index:
        group = letters[letters["error_class"] == error_class]
        openable = [int(i) for i in group.loc[group["state"] == "open", "id"]]
        with st.expander(f"{error_class} — {len(group)} dead letter(s)", expanded=True):
            st.dataframe(
                group.drop(columns=["error_class"]), hide_index=True, key=f"dl_{error_class}"
            )
            deal_picker(group["deal_id"], key=f"dl_deal_{error_class}")
            if not may_replay or not openable:
                continue
            reason = st.text_input("Reason (audited)", key=f"reason_{error_class}")
            one, selected, everything = st.columns(3)
            pick = one.selectbox("One dead letter", openable, key=f"one_{error_class}")
            if one.button("Replay this one", key=f"replay_one_{error_class}"):
                _replay([int(pick)], reason)
            chosen = selected.multiselect("Selected", openable, key=f"sel_{error_class}")
            if selected.button(
                f"Replay selected ({len(chosen)})",
                key=f"replay_sel_{error_class}",
                disabled=not chosen,
            ):
                _replay([int(i) for i in chosen], reason)
            if everything.button(
                f"Replay all {len(openable)} in group", key=f"replay_all_{error_class}"
            ):
                _replay(openable, reason)


def recent_replays(ctx: PageContext) -> None:
    replays = cq.replays(ctx.url)
    if replays.empty:
        return
    st.subheader("Recent replays")
    st.dataframe(replays, hide_index=True, key="recent_replays")
    deal_picker(replays["deal_id"], key="replay_deal")


def failed_traces(ctx: PageContext) -> None:
    st.subheader("Recent failed traces")
    traces = cq.failed_traces(ctx.url, ctx.now - ctx.window)
    if traces.empty:
        st.success(f"No failed spans in the last {ctx.filters.window}.")
        return
    st.dataframe(traces, hide_index=True, key="failed_traces")
    chosen = st.selectbox("Trace", list(traces["trace_id"]), key="failed_trace")
    row = traces[traces["trace_id"] == chosen].iloc[0]
    deal_link(row["deal_id"] if pd.notna(row["deal_id"]) else None)
    st.plotly_chart(charts.waterfall_figure(cq.trace(ctx.url, str(chosen))), key="trace_fall")


def findings(ctx: PageContext) -> None:
    st.subheader("Reconciliation and freshness")
    found = cq.findings(ctx.url, (ProbeKind.RECONCILIATION, ProbeKind.FRESHNESS))
    if found.empty:
        st.info(
            "No reconciliation or freshness findings: either the probes found nothing or "
            "they have not run yet (see the probe states above)."
        )
        return
    st.dataframe(found, hide_index=True, key="findings")
