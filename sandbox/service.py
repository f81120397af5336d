"""What the five systems share: a resource declaration, the per-system behaviour hooks,
and `SystemService`, which owns one system's records, faults, auth and webhooks. Actors
and the HTTP layer both change records through it, so every change sends its webhook."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from sandbox.auth import Authenticator
from sandbox.clock import Clock
from sandbox.faults import FaultInjector
from sandbox.pagination import PageRequest, Paginator
from sandbox.ratelimit import RateLimiter
from sandbox.records import Page, Record, RecordStore
from sandbox.webhooks import WebhookSender

GroundTruthSource = Callable[[], dict[str, Any]]


def dig(record: Record, dotted: str) -> Any:
    """`record["a"]["b"]` for `a.b`, or None where the path stops."""
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class Rejected(Exception):
    """A request the system refuses on business grounds (answered 422 / 404)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def singular(name: str) -> str:
    """`opportunities` -> `opportunity`, `invoices` -> `invoice`."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name


@dataclass(frozen=True)
class Resource:
    """One collection of a system's API: where it lives and what it accepts."""

    name: str
    path: str
    create: type[BaseModel] | None = None
    update: type[BaseModel] | None = None
    id_field: str = "id"
    filters: Mapping[str, str] = field(default_factory=dict)
    since_param: str = "updated_since"
    references: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """A webhook-worthy change: CloudEvent type, subject and data."""

    type: str
    subject: str
    data: dict[str, Any]


class SystemSpec:
    """A system's API shape. Subclasses declare resources and override the hooks."""

    system: str = ""
    title: str = ""
    resources: tuple[Resource, ...] = ()
    paginator: Paginator
    drift: ClassVar[Mapping[str, Mapping[str, str]]] = {}

    def resource(self, name: str) -> Resource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def new_id(self, resource: Resource, number: int) -> str:
        return f"{resource.name[:3].upper()}-{number:06d}"

    def new_record(
        self, resource: Resource, record_id: str, body: dict[str, Any], now: dt.datetime
    ) -> Record:
        return {resource.id_field: record_id, **body}

    def apply_update(
        self, resource: Resource, record: Record, changes: dict[str, Any], now: dt.datetime
    ) -> Record:
        return {**record, **changes}

    def changes(self, resource: Resource, before: Record | None, after: Record) -> list[Change]:
        return []

    def error_body(self, status: int, code: str, message: str) -> Any:
        return {"error": {"code": code, "message": message}}


class SystemService:
    """One running system: records, faults, auth, rate limits and webhooks together."""

    def __init__(
        self,
        spec: SystemSpec,
        store: RecordStore,
        *,
        sim_clock: Clock,
        wall_clock: Clock,
        injector: FaultInjector,
        auth: Authenticator,
        webhooks: WebhookSender,
        admin_key: str,
        ground_truth: GroundTruthSource | None = None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.sim_clock = sim_clock
        self.wall_clock = wall_clock
        self.faults = injector
        self.auth = auth
        self.webhooks = webhooks
        self.admin_key = admin_key
        self.ground_truth = ground_truth
        self.limiter = RateLimiter(wall_clock)
        self.write_lock = threading.RLock()

    @property
    def system(self) -> str:
        return self.spec.system

    def create(self, resource_name: str, body: dict[str, Any]) -> Record:
        resource = self.spec.resource(resource_name)
        with self.write_lock:
            for field_name, collection in resource.references.items():
                ref = dig(body, field_name)
                if ref is not None and self.store.get(collection, str(ref)) is None:
                    raise Rejected(422, "INVALID_REFERENCE", f"{field_name} {ref!r} not found")
            now = self.sim_clock.now()
            record_id = self.spec.new_id(resource, self.store.next_number(resource.name))
            record = self.spec.new_record(resource, record_id, body, now)
            self.store.insert(resource.name, record_id, record, now)
        self._announce(resource, None, record)
        return record

    def update(self, resource_name: str, record_id: str, changes: dict[str, Any]) -> Record:
        resource = self.spec.resource(resource_name)
        with self.write_lock:
            before = self.store.get(resource.name, record_id)
            if before is None:
                raise Rejected(404, "NOT_FOUND", f"{resource.name} {record_id!r} not found")
            now = self.sim_clock.now()
            after = self.spec.apply_update(resource, before, changes, now)
            self.store.replace(resource.name, record_id, after, now)
        self._announce(resource, before, after)
        return after

    def get(self, resource_name: str, record_id: str) -> Record | None:
        return self.store.get(resource_name, record_id)

    def all(self, resource_name: str, **filters: Any) -> list[Record]:
        if not filters:
            return self.store.all(resource_name)
        return self.store.find(resource_name, {f"$.{k}": v for k, v in filters.items()})

    def list_page(
        self,
        resource_name: str,
        request: PageRequest,
        filters: Mapping[str, Any],
        updated_since: dt.datetime | None,
    ) -> Page:
        return self.store.page(
            resource_name,
            filters=filters,
            updated_since=updated_since,
            after_seq=request.after_seq,
            offset=request.offset,
            limit=request.limit,
        )

    def present(self, resource: Resource, record: Record) -> Record:
        """The record as the API shows it now (schema drift renames a field)."""
        renames = self.spec.drift.get(resource.name, {})
        if not renames or not self.faults.config.schema_drift:
            return record
        return {renames.get(k, k): v for k, v in record.items()}

    def _announce(self, resource: Resource, before: Record | None, after: Record) -> None:
        for change in self.spec.changes(resource, before, after):
            self.webhooks.emit(change.type, change.subject, change.data)
