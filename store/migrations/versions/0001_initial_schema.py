"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 09:39:14.270469
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column(
            "severity",
            sa.Enum("info", "warning", "critical", name="severity", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "firing",
                "acknowledged",
                "resolved",
                name="alertstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("subject_type", sa.String(length=16), nullable=True),
        sa.Column("subject_id", sa.String(length=128), nullable=True),
        sa.Column("deal_id", sa.String(length=128), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("money_at_risk", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alerts_fingerprint_state"), ["fingerprint", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alerts_state_rule"), ["state", "rule"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_api_tokens_name")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_tokens_token_sha256")),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=True),
        sa.Column("object_id", sa.String(length=128), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_actor_at"), ["actor", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "deals",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=True),
        sa.Column("account_name", sa.String(length=256), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("legal_entity", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("practice", sa.String(length=64), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_won_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
    )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deals_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deals_closed_won_at"), ["closed_won_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_deals_stage_stage_entered_at"),
            ["stage", "stage_entered_at"],
            unique=False,
        )

    op.create_table(
        "kpi_snapshots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kpi", sa.String(length=64), nullable=False),
        sa.Column("window", sa.String(length=8), nullable=False),
        sa.Column("dimension", sa.String(length=32), nullable=False),
        sa.Column("dimension_value", sa.String(length=128), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column(
            "meta",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_snapshots")),
        sa.UniqueConstraint(
            "kpi",
            "window",
            "dimension",
            "dimension_value",
            "as_of",
            name=op.f("uq_kpi_snapshots_kpi_window_dimension_dimension_value_as_of"),
        ),
    )
    with op.batch_alter_table("kpi_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kpi_snapshots_as_of"), ["as_of"], unique=False)

    op.create_table(
        "lifecycle_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column(
            "object_type",
            sa.Enum(
                "deal",
                "contract",
                "project",
                "invoice",
                "billable_item",
                "payment",
                name="objecttype",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("object_id", sa.String(length=128), nullable=False),
        sa.Column("deal_id", sa.String(length=128), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "source_system",
            sa.Enum(
                "crm", "clm", "psa", "billing", "erp", name="system", native_enum=False, length=16
            ),
            nullable=True,
        ),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_events")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_lifecycle_events_dedup_key")),
    )
    with op.batch_alter_table("lifecycle_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lifecycle_events_deal_id_occurred_at"),
            ["deal_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_lifecycle_events_object_type_object_id_occurred_at"),
            ["object_type", "object_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_lifecycle_events_stage_occurred_at"),
            ["stage", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "probe_results",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("probe", sa.String(length=128), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "health",
                "reconciliation",
                "freshness",
                "stuck",
                name="probekind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("system", sa.String(length=16), nullable=True),
        sa.Column("flow", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum("ok", "warn", "fail", name="probestatus", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("observed", sa.Text(), nullable=True),
        sa.Column("expected", sa.Text(), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_results")),
    )
    with op.batch_alter_table("probe_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_probe_results_probe_started_at"), ["probe", "started_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_probe_results_status_started_at"), ["status", "started_at"], unique=False
        )

    op.create_table(
        "silences",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "matchers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_silences_ends_at"), ["ends_at"], unique=False)

    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("end_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("unset", "ok", "error", name="spanstatus", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "resource",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "events",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("deal_id", sa.String(length=128), nullable=True),
        sa.Column("contract_id", sa.String(length=128), nullable=True),
        sa.Column("project_id", sa.String(length=128), nullable=True),
        sa.Column("invoice_id", sa.String(length=128), nullable=True),
        sa.Column("system", sa.String(length=16), nullable=True),
        sa.Column("flow", sa.String(length=64), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.PrimaryKeyConstraint("trace_id", "span_id", name=op.f("pk_spans")),
    )
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_spans_deal_id_start_unix_nano"),
            ["deal_id", "start_unix_nano"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_spans_flow_start_unix_nano"), ["flow", "start_unix_nano"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_spans_start_unix_nano"), ["start_unix_nano"], unique=False
        )

    op.create_table(
        "sync_cursors",
        sa.Column(
            "system",
            sa.Enum(
                "crm", "clm", "psa", "billing", "erp", name="system", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("system", "stream", name=op.f("pk_sync_cursors")),
    )
    op.create_table(
        "sync_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column(
            "system",
            sa.Enum(
                "crm", "clm", "psa", "billing", "erp", name="system", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("deal_id", sa.String(length=128), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "running",
                "succeeded",
                "dead",
                name="messagestate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_by", sa.String(length=128), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_class", sa.String(length=64), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_messages")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_sync_messages_idempotency_key")),
    )
    with op.batch_alter_table("sync_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_messages_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sync_messages_flow_state"), ["flow", "state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sync_messages_state_next_attempt_at"),
            ["state", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "users",
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.String(length=128), nullable=True),
        sa.Column(
            "role",
            sa.Enum(
                "executive", "finance", "oncall", "admin", name="role", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_users")),
    )
    op.create_table(
        "alert_notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                "suppressed",
                name="notificationstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_notifications_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
    )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_notifications_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_alert_notifications_status_created_at"),
            ["status", "created_at"],
            unique=False,
        )

    op.create_table(
        "contracts",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("deal_id", sa.String(length=128), nullable=False),
        sa.Column("billing_model", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("value", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("cap", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("po_number", sa.String(length=64), nullable=True),
        sa.Column(
            "rate_card",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_contracts_deal_id_deals"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
    )
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_contracts_stage_stage_entered_at"),
            ["stage", "stage_entered_at"],
            unique=False,
        )

    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column(
            "system",
            sa.Enum(
                "crm", "clm", "psa", "billing", "erp", name="system", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("error_class", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("deal_id", sa.String(length=128), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "replaying",
                "replayed",
                "discarded",
                name="deadletterstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["sync_messages.id"],
            name=op.f("fk_dead_letters_message_id_sync_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("message_id", name=op.f("uq_dead_letters_message_id")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dead_letters_dead_at"), ["dead_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_dead_letters_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_dead_letters_state_error_class"), ["state", "error_class"], unique=False
        )

    op.create_table(
        "probe_findings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "probe_result_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=True),
        sa.Column("object_id", sa.String(length=128), nullable=True),
        sa.Column("deal_id", sa.String(length=128), nullable=True),
        sa.Column("system", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["probe_result_id"],
            ["probe_results.id"],
            name=op.f("fk_probe_findings_probe_result_id_probe_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_findings")),
    )
    with op.batch_alter_table("probe_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_probe_findings_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_probe_findings_probe_result_id"), ["probe_result_id"], unique=False
        )

    op.create_table(
        "sync_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "succeeded",
                "retryable",
                "fatal",
                name="attemptoutcome",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("error_class", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["sync_messages.id"],
            name=op.f("fk_sync_attempts_message_id_sync_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_attempts")),
        sa.UniqueConstraint(
            "message_id", "attempt_no", name=op.f("uq_sync_attempts_message_id_attempt_no")
        ),
    )
    with op.batch_alter_table("sync_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_attempts_started_at"), ["started_at"], unique=False
        )

    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("deal_id", sa.String(length=128), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=True),
        sa.Column("legal_entity", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("amount_paid", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("has_exception", sa.Boolean(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_invoices_contract_id_contracts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_invoices_deal_id_deals"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoices_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoices_issued_at"), ["issued_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_invoices_stage_stage_entered_at"),
            ["stage", "stage_entered_at"],
            unique=False,
        )

    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("deal_id", sa.String(length=128), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("practice", sa.String(length=64), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_projects_contract_id_contracts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_projects_deal_id_deals"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_projects_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_projects_stage_stage_entered_at"),
            ["stage", "stage_entered_at"],
            unique=False,
        )

    op.create_table(
        "replays",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "dead_letter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "pending",
                "succeeded",
                "already_done",
                "failed",
                name="replayoutcome",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dead_letter_id"],
            ["dead_letters.id"],
            name=op.f("fk_replays_dead_letter_id_dead_letters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["sync_messages.id"],
            name=op.f("fk_replays_message_id_sync_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replays")),
    )
    with op.batch_alter_table("replays", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_replays_dead_letter_id"), ["dead_letter_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_replays_requested_at"), ["requested_at"], unique=False)

    op.create_table(
        "billable_items",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("deal_id", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=True),
        sa.Column("invoice_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("rate", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("invoiced_amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("consultant", sa.String(length=128), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invoiced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_billable_items_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_billable_items_invoice_id_invoices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_billable_items_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billable_items")),
    )
    with op.batch_alter_table("billable_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billable_items_approved_at"), ["approved_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_billable_items_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_billable_items_invoice_id"), ["invoice_id"], unique=False
        )

    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("invoice_id", sa.String(length=128), nullable=False),
        sa.Column("deal_id", sa.String(length=128), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deals.id"], name=op.f("fk_payments_deal_id_deals"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_payments_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payments_received_at"), ["received_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_received_at"))
        batch_op.drop_index(batch_op.f("ix_payments_invoice_id"))

    op.drop_table("payments")
    with op.batch_alter_table("billable_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billable_items_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_billable_items_deal_id"))
        batch_op.drop_index(batch_op.f("ix_billable_items_approved_at"))

    op.drop_table("billable_items")
    with op.batch_alter_table("replays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replays_requested_at"))
        batch_op.drop_index(batch_op.f("ix_replays_dead_letter_id"))

    op.drop_table("replays")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_projects_stage_stage_entered_at"))
        batch_op.drop_index(batch_op.f("ix_projects_deal_id"))

    op.drop_table("projects")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_stage_stage_entered_at"))
        batch_op.drop_index(batch_op.f("ix_invoices_issued_at"))
        batch_op.drop_index(batch_op.f("ix_invoices_deal_id"))

    op.drop_table("invoices")
    with op.batch_alter_table("sync_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_attempts_started_at"))

    op.drop_table("sync_attempts")
    with op.batch_alter_table("probe_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_probe_findings_probe_result_id"))
        batch_op.drop_index(batch_op.f("ix_probe_findings_deal_id"))

    op.drop_table("probe_findings")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letters_state_error_class"))
        batch_op.drop_index(batch_op.f("ix_dead_letters_deal_id"))
        batch_op.drop_index(batch_op.f("ix_dead_letters_dead_at"))

    op.drop_table("dead_letters")
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_stage_stage_entered_at"))
        batch_op.drop_index(batch_op.f("ix_contracts_deal_id"))

    op.drop_table("contracts")
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_notifications_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_alert_notifications_alert_id"))

    op.drop_table("alert_notifications")
    op.drop_table("users")
    with op.batch_alter_table("sync_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_messages_state_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_sync_messages_flow_state"))
        batch_op.drop_index(batch_op.f("ix_sync_messages_deal_id"))

    op.drop_table("sync_messages")
    op.drop_table("sync_cursors")
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spans_start_unix_nano"))
        batch_op.drop_index(batch_op.f("ix_spans_flow_start_unix_nano"))
        batch_op.drop_index(batch_op.f("ix_spans_deal_id_start_unix_nano"))

    op.drop_table("spans")
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_silences_ends_at"))

    op.drop_table("silences")
    with op.batch_alter_table("probe_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_probe_results_status_started_at"))
        batch_op.drop_index(batch_op.f("ix_probe_results_probe_started_at"))

    op.drop_table("probe_results")
    with op.batch_alter_table("lifecycle_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lifecycle_events_stage_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_lifecycle_events_object_type_object_id_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_lifecycle_events_deal_id_occurred_at"))

    op.drop_table("lifecycle_events")
    with op.batch_alter_table("kpi_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kpi_snapshots_as_of"))

    op.drop_table("kpi_snapshots")
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deals_stage_stage_entered_at"))
        batch_op.drop_index(batch_op.f("ix_deals_closed_won_at"))
        batch_op.drop_index(batch_op.f("ix_deals_account_id"))

    op.drop_table("deals")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index(batch_op.f("ix_audit_log_actor_at"))

    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_state_rule"))
        batch_op.drop_index(batch_op.f("ix_alerts_fingerprint_state"))
        batch_op.drop_index(batch_op.f("ix_alerts_deal_id"))

    op.drop_table("alerts")
