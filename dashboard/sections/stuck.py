"""Sections of the stuck-work page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from connectors.approvals import DecisionError, decide
from dashboard import cached_queries as cq
from dashboard.accounts import audit
from dashboard.components import deal_picker
from dashboard.formatting import money
from dashboard.resources import allowed, current_user, engine, now
from dashboard.roles import Permission
from dashboard.sections.context import PageContext
from store.states import ProbeKind

SORTS = {
    "money at risk": "money_at_risk",
    "age": "age_days",
    "stage": "stage",
    "owner": "owner",
    "cause": "cause",
}
SHOWN = [
    "object_type",
    "object_id",
    "deal_id",
    "account_name",
    "stage",
    "waiting_for",
    "system",
    "cause",
    "owner",
    "age_days",
    "overdue_hours",
    "money_at_risk",
    "legal_entity",
    "practice",
]


def stuck_items(ctx: PageContext) -> pd.DataFrame:
    stuck = ctx.keep_slices(cq.stuck(ctx.url, ctx.key, ctx.settings, ctx.now))
    return stuck.assign(money_at_risk=[ctx.in_view(v) for v in stuck["money_at_risk"]])


def summary(ctx: PageContext, stuck: pd.DataFrame) -> None:
    deals, invoices, total = st.columns(3)
    deals.metric("Deals past SLA", int((stuck["object_type"] == "deal").sum()))
    invoices.metric("Invoices past SLA", int((stuck["object_type"] == "invoice").sum()))
    total.metric(
        "Money at risk",
        money(float(stuck["money_at_risk"].sum()) if len(stuck) else 0.0, ctx.filters.currency),
    )


def sorted_table(ctx: PageContext, stuck: pd.DataFrame) -> pd.DataFrame:
    by, order = st.columns([2, 1])
    sort = by.selectbox("Sort by", list(SORTS), key="stuck_sort")
    descending = order.toggle("Largest first", value=True, key="stuck_desc")
    table = stuck.sort_values(SORTS[sort], ascending=not descending, na_position="last")[SHOWN]
    st.dataframe(
        table,
        hide_index=True,
        key="stuck_table",
        column_config={
            "money_at_risk": st.column_config.NumberColumn(
                f"money at risk ({ctx.filters.currency})", format="%.2f"
            ),
        },
    )
    return table


def open_a_deal(table: pd.DataFrame) -> None:
    deal_picker(table["deal_id"], key="stuck_open", label="Open a deal from this table")


def _audit_export(rows: int) -> None:
    user = current_user()
    if user is not None:
        audit(engine(), user.username, "stuck.export_csv", now(), detail={"rows": rows})


def export_csv(table: pd.DataFrame) -> None:
    if not allowed(Permission.EXPORT):
        return
    st.download_button(
        "Export CSV",
        table.to_csv(index=False).encode(),
        file_name="stuck-work.csv",
        mime="text/csv",
        key="stuck_export",
        on_click=_audit_export,
        args=(len(table),),
    )


def reconciliation(ctx: PageContext) -> None:
    st.subheader("Reconciliation mismatches")
    found = cq.findings(ctx.url, (ProbeKind.RECONCILIATION,))
    if found.empty:
        st.info("No reconciliation findings: the probes found none, or have not run yet.")
        return
    st.dataframe(found, hide_index=True, key="stuck_findings")


def approvals(ctx: PageContext) -> None:
    """Invoices and billables held at an approval checkpoint, and (for finance) the
    decision on them."""
    st.subheader("Waiting for approval")
    waiting = cq.approvals(ctx.url)
    decided = st.session_state.pop(LAST_DECISION, None)
    if decided:
        st.success(decided)
    if waiting.empty:
        limit = ctx.settings.approvals.invoice_above
        st.info(
            "Nothing waits for approval."
            if limit is not None or ctx.settings.approvals.over_cap
            else "No approval checkpoints: set `approvals.invoice_above` to have invoices "
            "above an amount wait for finance before their AR posting."
        )
        return
    shown = waiting.assign(
        waited_hours=[round((now() - t).total_seconds() / 3600, 1) for t in waiting["requested_at"]]
    ).drop(columns=["requested_at"])
    st.dataframe(shown, hide_index=True, key="approvals_table")
    deal_picker(waiting["deal_id"], key="approvals_deal", label="Open a deal from this table")
    if not allowed(Permission.APPROVE):
        return
    ids = [int(i) for i in waiting["id"]]
    chosen = st.multiselect("Approvals", ids, key="approvals_chosen")
    note = st.text_input("Note (audited; required to reject)", key="approvals_note")
    yes, no = st.columns(2)
    if yes.button(f"Approve ({len(chosen)})", key="approvals_approve", disabled=not chosen):
        _decide(chosen, True, note)
    if no.button(
        f"Reject ({len(chosen)})", key="approvals_reject", disabled=not chosen or not note.strip()
    ):
        _decide(chosen, False, note)


LAST_DECISION = "approvals_last_decision"


def _decide(ids: list[int], approve: bool, note: str) -> None:
    user = current_user()
    assert user is not None
    try:
        decisions = decide(
            engine(), ids, approve=approve, actor=user.username, note=note or None, now=now()
        )
    except DecisionError as exc:
        st.error(f"Nothing decided: {exc}")
        return
    what = "approved: the outbox workers post them next" if approve else "rejected: dead letters"
    st.session_state[LAST_DECISION] = f"{len(decisions)} {what}."
    cq.forget_outbox_reads()
    st.rerun()
