"""What the world remembers between days: which record in each system stands for which
person, customer or deal of the script, and the last simulated day. Kept as JSON next
to the systems' SQLite files."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
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

    def deal_for_opportunity(self, opportunity_id: str) -> str | None:
        for key, value in self.opportunity_ids.items():
            if value == opportunity_id:
                return key
        return None

    def account_for_crm_id(self, crm_id: str) -> str | None:
        for key, value in self.account_ids.items():
            if value == crm_id:
                return key
        return None

    def consultant_for_user(self, user_id: str) -> str | None:
        for key, value in self.user_ids.items():
            if value == user_id:
                return key
        return None

    @property
    def last(self) -> dt.date | None:
        return dt.date.fromisoformat(self.last_day) if self.last_day else None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> WorldState | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))
