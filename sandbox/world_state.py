"""What the world remembers between days: which record in each system stands for which
person, customer or deal of the script, and the last simulated day. Kept as JSON next
to the systems' SQLite files."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass
class WorldState:
    seed: int
    start: str
    last_day: str | None = None
    account_ids: dict[str, str] = field(default_factory=dict)  # account key -> CRM id
    opportunity_ids: dict[str, str] = field(default_factory=dict)  # deal key -> CRM id
    closed: list[str] = field(default_factory=list)  # deal keys closed in CRM
    user_ids: dict[str, str] = field(default_factory=dict)  # consultant key -> PSA id

    _inverted: dict[str, tuple[int, dict[str, str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def _inverse(self, name: str, mapping: dict[str, str]) -> dict[str, str]:
        """`mapping` inverted, rebuilt only when it has grown (the maps only grow)."""
        cached = self._inverted.get(name)
        if cached is None or cached[0] != len(mapping):
            cached = (len(mapping), {v: k for k, v in mapping.items()})
            self._inverted[name] = cached
        return cached[1]

    def deal_for_opportunity(self, opportunity_id: str) -> str | None:
        return self._inverse("opportunities", self.opportunity_ids).get(opportunity_id)

    def account_for_crm_id(self, crm_id: str) -> str | None:
        return self._inverse("accounts", self.account_ids).get(crm_id)

    def consultant_for_user(self, user_id: str) -> str | None:
        return self._inverse("users", self.user_ids).get(user_id)

    @property
    def last(self) -> dt.date | None:
        return dt.date.fromisoformat(self.last_day) if self.last_day else None

    def save(self, path: Path) -> None:
        saved = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        path.write_text(json.dumps(saved, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> WorldState | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))
