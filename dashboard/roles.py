"""What each role may see and do on the dashboard (issue 8): `executive` sees money and
KPIs; `finance` adds drill-down, exports and approval decisions; `oncall` adds
integration health and replays (not approvals: deciding on invoices is finance's);
`admin` everything, including the audit log."""

from __future__ import annotations

import enum

from store.states import Role


class Permission(enum.StrEnum):
    VIEW_KPIS = "view_kpis"
    DRILL_DOWN = "drill_down"
    EXPORT = "export"
    VIEW_HEALTH = "view_health"
    REPLAY = "replay"
    VIEW_AUDIT = "view_audit"
    APPROVE = "approve"


_FINANCE = frozenset({Permission.VIEW_KPIS, Permission.DRILL_DOWN, Permission.EXPORT})
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.EXECUTIVE: frozenset({Permission.VIEW_KPIS}),
    Role.FINANCE: _FINANCE | {Permission.APPROVE},
    Role.ONCALL: _FINANCE | {Permission.VIEW_HEALTH, Permission.REPLAY},
    Role.ADMIN: frozenset(Permission),
}


def can(role: Role | str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(Role(role), frozenset())
