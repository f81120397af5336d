"""Health probes, one per system: reachable, credentials accepted (and how long they stay
valid where the system says: token lifetime, key expiry headers, the TLS certificate),
latency, rate-limit headroom from the response headers, and schema drift (the fields our
flows read are still in the records the API returns)."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.errors import AuthFailed, ConnectorError
from connectors.resources import COLLECTIONS, Collection
from probes.base import Finding, Outcome, ProbeContext
from store.states import ProbeKind, ProbeStatus, System


@dataclass(frozen=True)
class Endpoint:
    """The collection a health probe reads one record of, and the fields our flows need."""

    collection: str
    fields: tuple[str, ...]


# What the flows in connectors/flows read from each system; a missing one breaks a sync.
ENDPOINTS: dict[System, Endpoint] = {
    System.CRM: Endpoint(
        "opportunities", ("id", "accountId", "amount", "currencyIsoCode", "lastModifiedDate")
    ),
    System.CLM: Endpoint("agreements", ("id", "counterparty", "status", "modified_at")),
    System.PSA: Endpoint("workspaces", ("id", "currency", "rate_card", "updated_at")),
    System.BILLING: Endpoint("invoices", ("id", "amount", "currency", "lines", "updated_at")),
    System.ERP: Endpoint(
        "customers", ("id", "externalId", "currency", "subsidiary", "lastModifiedDate")
    ),
}

# Where systems tell how long a credential stays valid, and which API version answered.
EXPIRY_HEADERS = ("X-API-Key-Expires-At", "X-Credential-Expires-At")
VERSION_HEADERS = ("X-API-Version", "API-Version", "Sforce-Api-Version")


@dataclass(frozen=True)
class HealthThresholds:
    latency_warn_ms: float = 2000.0
    headroom_warn_ratio: float = 0.1
    credential_warn: dt.timedelta = dt.timedelta(days=7)


def _header(headers: httpx.Headers, names: Iterable[str]) -> str | None:
    for name in names:
        if name in headers:
            return headers[name]
    return None


def _int_header(headers: httpx.Headers, *names: str) -> int | None:
    raw = _header(headers, names)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def certificate_expiry(response: httpx.Response) -> dt.datetime | None:
    """When the server's TLS certificate expires (`notAfter`), for an https answer."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    not_after = cert.get("notAfter") if cert else None
    if not not_after:
        return None
    return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC)


def _no_answer(exc: ConnectorError) -> Outcome:
    """A failed result for a system that did not answer, or refused our login."""
    what = "login refused" if isinstance(exc, AuthFailed) else "unreachable"
    return Outcome(
        ProbeStatus.FAIL,
        observed=f"{what}: {exc}",
        expected="an answer",
        detail={"error": str(exc), "error_class": exc.error_class},
    )


def _records(collection: Collection, body: Any) -> list[dict[str, Any]]:
    """The records of the first page, unwrapped by the collection's own paginator."""
    return next(iter(collection.paginator.pages(lambda _params: body, collection.name)), [])


def _has(record: Mapping[str, Any], path: str) -> bool:
    """Whether `a.b` is present (a nested field), in the first record."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return True


class HealthProbe:
    kind = ProbeKind.HEALTH
    flow = None

    def __init__(
        self,
        system: System,
        endpoint: Endpoint | None = None,
        thresholds: HealthThresholds = HealthThresholds(),
    ) -> None:
        self.system: str | None = system.value
        self._system = system
        self._endpoint = endpoint or ENDPOINTS[system]
        self._thresholds = thresholds
        self.name = f"health.{system.value}"
        self.description = (
            f"{system.value.upper()} reachable, credentials valid, latency, rate-limit headroom "
            f"and the fields of {self._endpoint.collection} our flows read"
        )

    def run(self, ctx: ProbeContext) -> Outcome:
        client = ctx.apis[self._system].client
        collection = COLLECTIONS[(self._system, self._endpoint.collection)]
        path = collection.path
        limits = self._thresholds
        started = time.perf_counter()
        try:
            response = client.check(path, {"limit": 1})
        except ConnectorError as exc:
            return _no_answer(exc)
        latency_ms = (time.perf_counter() - started) * 1000
        detail: dict[str, Any] = {
            "latency_ms": round(latency_ms, 1),
            "status_code": response.status_code,
        }
        problems: list[str] = []
        failed = False
        if response.status_code in (401, 403):
            failed = True
            problems.append(f"credentials refused ({response.status_code})")
        elif response.status_code >= 500:
            failed = True
            problems.append(f"answered {response.status_code}")
        elif response.status_code >= 400 and response.status_code != 429:
            failed = True
            problems.append(f"answered {response.status_code} to GET {path}")

        limit = _int_header(response.headers, "X-RateLimit-Limit", "RateLimit-Limit")
        remaining = _int_header(response.headers, "X-RateLimit-Remaining", "RateLimit-Remaining")
        if limit is not None and remaining is not None:
            detail["rate_limit_limit"] = limit
            detail["rate_limit_remaining"] = remaining
            if limit > 0 and remaining / limit <= limits.headroom_warn_ratio:
                problems.append(f"rate-limit headroom {remaining}/{limit}")
        if response.status_code == 429:
            problems.append("rate limited (429)")

        token_left = client.credential_seconds_left()
        if token_left is not None:
            detail["token_expires_in_s"] = round(token_left)
        expires_raw = _header(response.headers, EXPIRY_HEADERS)
        if expires_raw:
            try:
                expires = dt.datetime.fromisoformat(expires_raw)
                left = expires - ctx.now()
                detail["credential_expires_at"] = expires.isoformat()
                detail["credential_days_left"] = round(left.total_seconds() / 86400, 1)
                if left <= dt.timedelta(0):
                    failed = True
                    problems.append("credential expired")
                elif left < limits.credential_warn:
                    problems.append(f"credential expires in {left.days} day(s)")
            except ValueError:
                problems.append(f"unreadable credential expiry {expires_raw!r}")
        cert_expires = certificate_expiry(response)
        if cert_expires is not None:
            left = cert_expires - dt.datetime.now(dt.UTC)
            detail["certificate_expires_at"] = cert_expires.isoformat()
            detail["certificate_days_left"] = round(left.total_seconds() / 86400, 1)
            if left < limits.credential_warn:
                problems.append(f"TLS certificate expires in {max(0, left.days)} day(s)")
        version = _header(response.headers, VERSION_HEADERS)
        if version:
            detail["api_version"] = version

        findings: list[Finding] = []
        if response.status_code < 300:
            records = _records(collection, response.json()) if response.content else []
            if records:
                missing = [f for f in self._endpoint.fields if not _has(records[0], f)]
                detail["fields_checked"] = list(self._endpoint.fields)
                if missing:
                    detail["missing_fields"] = missing
                    problems.append(f"schema drift: {', '.join(missing)} missing")
                    findings.append(
                        Finding(
                            "schema_drift",
                            self._endpoint.collection,
                            str(records[0].get("id")) if "id" in records[0] else None,
                            system=self._system.value,
                            detail={"missing_fields": missing},
                        )
                    )
            else:
                detail["fields_checked"] = []
        if latency_ms > limits.latency_warn_ms:
            problems.append(f"slow: {latency_ms:.0f} ms")

        status = ProbeStatus.FAIL if failed else ProbeStatus.WARN if problems else ProbeStatus.OK
        return Outcome(
            status,
            value=round(latency_ms, 1),
            observed="; ".join(problems) or f"ok in {latency_ms:.0f} ms",
            expected=f"200 within {limits.latency_warn_ms:.0f} ms",
            detail=detail,
            findings=findings,
        )


class TrytonHealthProbe:
    """A Tryton ERP speaks JSON-RPC: reachable, the login still accepted (the user's
    preferences read with our session), latency, and the server version."""

    kind = ProbeKind.HEALTH
    flow = None
    system: str | None = System.ERP.value
    name = "health.erp"

    def __init__(self, database: str, thresholds: HealthThresholds = HealthThresholds()) -> None:
        self._database = database
        self._thresholds = thresholds
        self.description = f"Tryton ERP (database {database}) reachable, login accepted, latency"

    def run(self, ctx: ProbeContext) -> Outcome:
        client = ctx.apis[System.ERP].client
        path = f"/{self._database}/rpc/"
        limit_ms = self._thresholds.latency_warn_ms
        started = time.perf_counter()
        try:
            answer = client.check(
                path,
                json={"id": 1, "method": "model.res.user.get_preferences", "params": [True, {}]},
            )
            version = client.check(  # served outside any database
                "/rpc/", json={"id": 2, "method": "common.server.version", "params": []}
            )
        except ConnectorError as exc:
            return _no_answer(exc)
        latency_ms = (time.perf_counter() - started) * 1000 / 2
        detail: dict[str, Any] = {"latency_ms": round(latency_ms, 1)}
        if version.status_code == 200 and "result" in version.json():
            detail["api_version"] = str(version.json()["result"])
        body = answer.json() if answer.status_code == 200 else {}
        if answer.status_code in (401, 403):
            status, observed = ProbeStatus.FAIL, f"login refused ({answer.status_code})"
        elif answer.status_code != 200 or "error" in body:
            status = ProbeStatus.FAIL
            observed = f"answered {answer.status_code}: {str(body.get('error'))[:200]}"
        elif latency_ms > limit_ms:
            status, observed = ProbeStatus.WARN, f"slow: {latency_ms:.0f} ms"
        else:
            status, observed = ProbeStatus.OK, f"ok in {latency_ms:.0f} ms"
        return Outcome(
            status,
            value=round(latency_ms, 1),
            observed=observed,
            expected=f"an answer within {limit_ms:.0f} ms",
            detail=detail,
        )


def health_probes(
    systems: Iterable[System] = tuple(System), thresholds: HealthThresholds = HealthThresholds()
) -> list[HealthProbe]:
    return [HealthProbe(system, thresholds=thresholds) for system in systems]
