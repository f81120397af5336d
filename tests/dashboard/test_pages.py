"""Every page as each role against a seeded store: the numbers shown are the KPI module's,
and what a role may not do is not there."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select
from streamlit.testing.v1 import AppTest

from dashboard.formatting import kpi_text
from dashboard.sections.cash import TILES
from kpis.snapshots import latest_snapshots
from store.access import AuditEntry
from store.outbox import Approval, DeadLetter, Replay, SyncMessage
from tests.dashboard.conftest import open_app, sign_in
from tests.dashboard.seed import ago
from throughline.config import Settings

HEALTH = "app_pages/integration_health.py"
STUCK = "app_pages/stuck_work.py"
DEAL = "app_pages/deal.py"
AUDIT = "app_pages/audit_log.py"
PAGES = {HEALTH: "Integration health", STUCK: "Stuck work", DEAL: "Deal", AUDIT: "Audit log"}
ALLOWED = {
    "exec": set(),
    "fin": {STUCK, DEAL},
    "ops": {HEALTH, STUCK, DEAL},
    "root": {HEALTH, STUCK, DEAL, AUDIT},
}


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table shown that has these columns."""
    for frame in at.dataframe:
        value: pd.DataFrame = frame.value
        if set(columns) <= set(value.columns):
            return value
    raise AssertionError(f"no table with {columns}")


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_wrong_password_is_refused_and_audited(seeded: Engine) -> None:
    at = sign_in(open_app(), "fin", "not the password")
    assert [e.value for e in at.error] == ["Unknown user name or wrong password."]
    assert "Cash conversion" not in titles(at)
    with seeded.connect() as conn:
        actions = conn.execute(select(AuditEntry.actor, AuditEntry.action)).all()
    assert ("fin", "dashboard.sign_in_failed") in [tuple(a) for a in actions]


@pytest.mark.parametrize(
    ("database_url", "username"),
    # Every role on SQLite; admin, who opens every page, on PostgreSQL too.
    [
        ("sqlite", "exec"),
        ("sqlite", "fin"),
        ("sqlite", "ops"),
        ("sqlite", "root"),
        ("postgresql", "root"),
    ],
    indirect=["database_url"],
    ids=["sqlite-exec", "sqlite-fin", "sqlite-ops", "sqlite-root", "postgresql-root"],
)
def test_each_role_sees_the_kpis_and_only_its_pages(
    app_as: Callable[[str], AppTest], seeded: Engine, username: str
) -> None:
    at = app_as(username)
    assert titles(at) == ["Cash conversion"]
    settings = Settings()
    expected = {
        s.kpi: kpi_text(s.value, s.unit, settings, "USD", compact=True)
        for s in latest_snapshots(seeded)
        if s.window in ("30d", "now") and s.dimension == "all"
    }
    shown = metrics(at)
    for label, kpi, _ in TILES:
        assert shown[label] == expected[kpi], label
    # Worked by hand: contracts 100,000 USD + 50,000 GBP (63,500) + 80,000 USD, less
    # 20,000 + 30,000 invoiced.
    assert shown["Backlog"] == "USD 193,500"
    deal_links = [p.label for p in at.get("page_link")]
    if username == "exec":
        assert deal_links == []
    else:
        assert any(label.startswith("D2") for label in deal_links)
    for page, title in PAGES.items():
        if page not in ALLOWED[username]:
            # Not in the role's navigation at all, so it cannot be opened.
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(page)
            continue
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert title in titles(at)
        if username not in ("ops", "root"):
            assert not [b for b in buttons(at) if b.startswith("Replay")]
        if username == "exec":
            assert not at.get("download_button")


def test_currency_view_converts_money_at_the_configured_rate(
    app_as: Callable[[str], AppTest],
) -> None:
    at = app_as("exec")
    at.selectbox(key="filter_currency").select("GBP").run()
    assert metrics(at)["Backlog"] == f"GBP {193500 / 1.27:,.0f}"
    at.switch_page("app_pages/cash_conversion.py").run()
    at.run()  # a rerun keeps the filter (session state)
    assert at.selectbox(key="filter_currency").value == "GBP"
    assert metrics(at)["Backlog"] == f"GBP {193500 / 1.27:,.0f}"


def test_stuck_work_lists_what_is_past_sla_with_money_and_cause(
    app_as: Callable[[str], AppTest],
) -> None:
    at = app_as("fin")
    at.switch_page(STUCK).run()
    shown = metrics(at)
    assert shown["Deals past SLA"] == "2"
    assert shown["Invoices past SLA"] == "1"
    # D2 contract 50,000 GBP x 1.27 + D3 deal 20,000 EUR x 1.08 + invoice I4 30,000 USD
    assert shown["Money at risk"] == "USD 115,100"
    table = table_with(at, "object_id", "cause")
    assert list(table["object_id"]) == ["D2", "I4", "D3"]
    assert list(table["cause"]) == [
        "dead letter: ValidationError",
        "dead letter: ErpTimeout",
        "no activity: waiting for contract_executed",
    ]
    assert [b.label for b in at.get("download_button")] == ["Export CSV"]


def test_a_filter_narrows_stuck_work_and_holds_across_pages(
    app_as: Callable[[str], AppTest],
) -> None:
    at = app_as("fin")
    at.selectbox(key="filter_legal_entity").select("uk").run()
    at.switch_page(STUCK).run()
    assert list(table_with(at, "object_id", "cause")["object_id"]) == ["D2"]


def test_deal_page_found_by_invoice_id_shows_the_lifecycle(
    app_as: Callable[[str], AppTest],
) -> None:
    at = app_as("fin")
    at.switch_page(DEAL).run()
    at.text_input(key="deal_search").input("I1").run()
    assert not at.exception
    assert at.header[0].value.startswith("D1")
    assert metrics(at)["Stage"] == "first_cash"
    invoices = table_with(at, "amount_paid", "has_exception")
    assert list(invoices["id"]) == ["I1"] and list(invoices["stage"]) == ["paid"]
    marks = table_with(at, "mark")
    assert set(marks["mark"]) == {"met"}
    assert at.get("plotly_chart")  # timeline, SLA clocks and the span waterfall


def test_oncall_replays_a_whole_error_class_and_sees_it_pending(
    app_as: Callable[[str], AppTest], seeded: Engine
) -> None:
    at = app_as("ops")
    at.switch_page(HEALTH).run()
    assert "Replay all 2 in group" in buttons(at)
    at.text_input(key="reason_ValidationError").input("rate card fixed").run()
    at.button(key="replay_all_ValidationError").click().run()
    assert not at.exception
    assert "2 pending until an outbox worker runs them" in at.success[0].value
    outcome = table_with(at, "replay", "outcome", "dead_letter")
    assert list(outcome["outcome"]) == ["pending", "pending"]
    with seeded.connect() as conn:
        replays = conn.execute(select(Replay.dead_letter_id, Replay.requested_by)).all()
        states = dict(conn.execute(select(DeadLetter.id, DeadLetter.state)).all())
        audited = conn.execute(
            select(AuditEntry.actor, AuditEntry.note).where(AuditEntry.action == "dlq.replay")
        ).all()
    assert sorted(tuple(r) for r in replays) == [(1, "ops"), (2, "ops")]
    assert states == {1: "replaying", 2: "replaying", 3: "open"}
    assert [tuple(a) for a in audited] == [("ops", "rate card fixed")] * 2


def test_two_filters_compute_live_and_agree_with_the_one_slice_snapshot(
    app_as: Callable[[str], AppTest], seeded: Engine
) -> None:
    # In the seed every `us` deal is in `amer`: us + amer (computed now, no snapshot holds
    # two dimensions) must show what the stored legal_entity=us slice holds.
    at = app_as("exec")
    at.selectbox(key="filter_legal_entity").select("us").run()
    at.selectbox(key="filter_region").select("amer").run()
    assert not at.exception
    assert "Computed now" in at.caption[0].value
    settings = Settings()
    expected = {
        s.kpi: kpi_text(s.value, s.unit, settings, "USD", compact=True)
        for s in latest_snapshots(seeded)
        if s.window in ("30d", "now") and (s.dimension, s.dimension_value) == ("legal_entity", "us")
    }
    shown = metrics(at)
    compared = [(label, kpi) for label, kpi, _ in TILES if kpi in expected]
    assert len(compared) >= 6  # snapshots keep no slice without members (no WIP here)
    for label, kpi in compared:
        assert shown[label] == expected[kpi], label


def test_an_empty_store_says_how_to_start(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.dashboard.seed import NOW, PASSWORD, USERS
    from throughline.commands.users import add_user

    monkeypatch.setenv("THROUGHLINE_DATABASE__URL", database_url)
    first = open_app()
    assert "throughline users add NAME --role admin" in first.info[0].value
    add_user(engine, "exec", USERS["exec"], PASSWORD, NOW, rounds=4)
    at = sign_in(open_app(), "exec")
    assert not at.exception
    assert "make run" in at.info[0].value


def test_a_store_not_migrated_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THROUGHLINE_DATABASE__URL", f"sqlite:///{tmp_path / 'empty.db'}")
    at = open_app()
    assert not at.exception
    assert "run `throughline migrate`" in at.error[0].value
    assert not at.text_input  # no sign-in form over a store that cannot answer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_oncall_replays_one_and_a_selection(
    app_as: Callable[[str], AppTest], seeded: Engine
) -> None:
    at = app_as("ops")
    at.switch_page(HEALTH).run()
    at.selectbox(key="one_ErpTimeout").select(3).run()
    at.button(key="replay_one_ErpTimeout").click().run()
    assert list(table_with(at, "replay", "outcome", "dead_letter")["dead_letter"]) == [3]
    at.multiselect(key="sel_ValidationError").select(2).run()
    at.button(key="replay_sel_ValidationError").click().run()
    assert not at.exception
    assert list(table_with(at, "replay", "outcome", "dead_letter")["dead_letter"]) == [2]
    with seeded.connect() as conn:
        states = dict(conn.execute(select(DeadLetter.id, DeadLetter.state)).all())
    assert states == {1: "open", 2: "replaying", 3: "replaying"}
    # The letter still open is the only one offered for replay in its group.
    assert at.selectbox(key="one_ValidationError").options == ["1"]


def test_a_tile_shows_millions_whole_instead_of_cut() -> None:
    # A tile is about 13 characters wide: USD 2,425,123 was shown as "USD 2,425,…".
    settings = Settings()
    assert kpi_text(2_425_123.4, "USD", settings, "USD", compact=True) == "USD 2.43 M"
    assert kpi_text(2_425_123.4, "USD", settings, "USD") == "USD 2,425,123"
    assert kpi_text(571_379.67, "USD", settings, "USD", compact=True) == "USD 571,380"
    # in another currency view, converted first (1 GBP = 1.27 USD)
    assert kpi_text(1_270_000.0, "USD", settings, "GBP", compact=True) == "GBP 1.00 M"


def test_finance_approves_an_invoice_held_for_approval_and_oncall_may_not(
    app_as: Callable[[str], AppTest], seeded: Engine
) -> None:
    with seeded.begin() as conn:
        conn.execute(
            insert(SyncMessage),
            [
                {
                    "id": 10,
                    "flow": "invoice_to_ar",
                    "step": "post",
                    "system": "erp",
                    "idempotency_key": "invoice_to_ar.post:I9",
                    "deal_id": "D1",
                    "payload": {},
                    "state": "held",
                    "attempts": 0,
                    "next_attempt_at": ago(hours=5),
                    "created_at": ago(hours=5),
                    "updated_at": ago(hours=5),
                }
            ],
        )
        conn.execute(
            insert(Approval),
            [
                {
                    "key": "invoice:I9",
                    "message_id": 10,
                    "flow": "invoice_to_ar",
                    "object_type": "invoice",
                    "object_id": "I9",
                    "deal_id": "D1",
                    "amount": Decimal("90000.00"),
                    "currency": "EUR",
                    "reason": "invoice of 90,000.00 EUR is above the approval limit",
                    "state": "open",
                    "requested_at": ago(hours=5),
                }
            ],
        )
    oncall = app_as("ops")
    oncall.switch_page(STUCK).run()
    assert not oncall.exception
    waiting = table_with(oncall, "object_id", "waited_hours")
    assert list(waiting["object_id"]) == ["I9"] and list(waiting["amount"]) == [90000.0]
    assert not any(label.startswith("Approve") for label in buttons(oncall))  # finance's call

    at = app_as("fin")
    at.switch_page(STUCK).run()
    assert at.button(key="approvals_approve").disabled  # nothing chosen yet
    at.multiselect(key="approvals_chosen").select(1).run()
    assert at.button(key="approvals_reject").disabled  # a rejection needs its reason
    at.text_input(key="approvals_note").input("signed off by the CFO").run()
    at.button(key="approvals_approve").click().run()
    assert not at.exception
    assert "1 approved" in at.success[0].value
    with seeded.connect() as conn:
        decided = conn.execute(select(Approval.state, Approval.decided_by, Approval.note)).one()
        message = conn.execute(select(SyncMessage.state).where(SyncMessage.id == 10)).scalar()
        audited = conn.execute(
            select(AuditEntry.actor, AuditEntry.note).where(AuditEntry.action == "approval.approve")
        ).all()
    assert tuple(decided) == ("approved", "fin", "signed off by the CFO")
    assert message == "pending"  # due again: the next worker round posts it
    assert [tuple(a) for a in audited] == [("fin", "signed off by the CFO")]
    shown = [t.value for t in at.dataframe if "waited_hours" in t.value.columns]
    assert shown == []  # it no longer waits: the table is gone
