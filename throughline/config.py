"""Settings: one YAML file, overridden by `THROUGHLINE_...` environment variables,
validated by pydantic. Built once at the edge (command line, app entry) and passed down.

With no file every default holds, and the defaults run the demo against the sandbox.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from store.states import ALL_STAGES, DealStage, InvoiceStage, Severity, System

ENV_PREFIX = "THROUGHLINE_"
DEFAULT_CONFIG_FILE = Path("throughline.yaml")


# --- durations ----------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|bd)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Duration:
    """A span of time as people write it in SLAs: `90m`, `24h`, `30d`, or `5bd` (business
    days, Monday to Friday, counted by the stuck-work logic rather than as 24 h blocks)."""

    amount: int
    unit: Literal["s", "m", "h", "d", "bd"]

    @property
    def business_days(self) -> bool:
        return self.unit == "bd"

    @property
    def timedelta(self) -> dt.timedelta:
        """Calendar length; business days count as whole days (an upper bound is not
        needed here, the SLA evaluator counts them properly)."""
        seconds = self.amount * (86400 if self.unit == "bd" else _UNIT_SECONDS[self.unit])
        return dt.timedelta(seconds=seconds)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(
            f"not a duration: {value!r} (write e.g. 90m, 24h, 30d, or 5bd for business days)"
        )
    return Duration(int(match.group(1)), match.group(2))  # type: ignore[arg-type]


# NoDecode: from the environment a duration is its text (`1d`), not JSON to decode first.
DurationField = Annotated[Duration, BeforeValidator(parse_duration), PlainSerializer(str), NoDecode]


def _positive(value: Duration) -> Duration:
    if value.amount <= 0:
        raise ValueError(f"must be longer than 0 (got {value})")
    return value


PositiveDuration = Annotated[DurationField, AfterValidator(_positive)]
"""An interval, a window, a timeout or a retention: 0 would mean a job with no tick (the
scheduler divides by the interval), an empty window or deleting everything, so it is
refused."""
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
Port = Annotated[int, Field(ge=1, le=65535)]


class Section(BaseModel):
    """Every config section refuses unknown keys, so a typo is an error, not a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- systems ------------------------------------------------------------------------------


class OAuth2Auth(Section):
    kind: Literal["oauth2"] = "oauth2"
    token_path: str = "/oauth/token"
    client_id: str
    client_secret: SecretStr


class ApiKeyAuth(Section):
    kind: Literal["api_key"] = "api_key"
    header: str = "X-API-Key"
    api_key: SecretStr


class TrytonAuth(Section):
    """A Tryton ERP server: JSON-RPC login to `database` as `username`."""

    kind: Literal["tryton"] = "tryton"
    database: str
    username: str = "admin"
    password: SecretStr


Auth = Annotated[OAuth2Auth | ApiKeyAuth | TrytonAuth, Field(discriminator="kind")]


class RateLimit(Section):
    requests_per_second: PositiveFloat = 20.0
    burst: PositiveInt = 40


class Timeouts(Section):
    connect_seconds: PositiveFloat = 5.0
    read_seconds: PositiveFloat = 30.0


class SystemSettings(Section):
    base_url: AnyHttpUrl
    auth: Auth
    rate_limit: RateLimit = RateLimit()
    timeouts: Timeouts = Timeouts()
    webhook_secret: SecretStr | None = None
    enabled: bool = True


def _sandbox_system(system: System, port: int) -> SystemSettings:
    auth: OAuth2Auth | ApiKeyAuth
    if system in (System.CRM, System.ERP):
        auth = OAuth2Auth(client_id="throughline", client_secret=SecretStr(f"sandbox-{system}"))
    else:
        auth = ApiKeyAuth(api_key=SecretStr(f"sandbox-{system}-key"))
    return SystemSettings(base_url=AnyHttpUrl(f"http://127.0.0.1:{port}"), auth=auth)


class Systems(Section):
    """The five systems. Defaults point at the sandbox firm on ports 8601-8605."""

    crm: SystemSettings = _sandbox_system(System.CRM, 8601)
    clm: SystemSettings = _sandbox_system(System.CLM, 8602)
    psa: SystemSettings = _sandbox_system(System.PSA, 8603)
    billing: SystemSettings = _sandbox_system(System.BILLING, 8604)
    erp: SystemSettings = _sandbox_system(System.ERP, 8605)

    def get(self, system: System) -> SystemSettings:
        value: SystemSettings = getattr(self, system.value)
        return value


# --- SLAs, KPIs, alerts, retention --------------------------------------------------------

Stage = Literal[ALL_STAGES]  # type: ignore[valid-type]


class StageSla(Section):
    """`from` -> `to` must happen within `within`, optionally only for one legal entity or
    for deals of at least `min_amount` (the most specific matching rule wins)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_stage: Stage = Field(alias="from")
    to_stage: Stage = Field(alias="to")
    within: PositiveDuration
    plus_billing_cycle: bool = False
    legal_entity: str | None = None
    min_amount: float | None = Field(default=None, ge=0)


def _default_slas() -> list[StageSla]:
    return [
        StageSla(
            from_stage="closed_won", to_stage="contract_executed", within=parse_duration("5bd")
        ),
        StageSla(
            from_stage="contract_executed",
            to_stage="project_activated",
            within=parse_duration("24h"),
        ),
        StageSla(
            from_stage="project_activated",
            to_stage="billing_scheduled",
            within=parse_duration("24h"),
        ),
        StageSla(
            from_stage="billable_approved",
            to_stage="invoiced",
            within=parse_duration("3d"),
            plus_billing_cycle=True,
        ),
        StageSla(from_stage="invoiced", to_stage="posted", within=parse_duration("1h")),
    ]


class KpiSettings(Section):
    windows: list[PositiveDuration] = Field(
        default_factory=lambda: [parse_duration(w) for w in ("1d", "7d", "30d", "90d")],
        min_length=1,
    )
    reporting_currency: CurrencyCode = "USD"
    fx_rates: dict[CurrencyCode, PositiveFloat] = Field(
        default_factory=lambda: {"USD": 1.0, "GBP": 1.27, "EUR": 1.08},
        description="value of one unit of each currency in the reporting currency",
    )
    billing_cycle: PositiveDuration = parse_duration("30d")
    leakage_grace: DurationField = parse_duration("5d")
    refresh_interval: PositiveDuration = parse_duration("60s")

    @field_validator("windows")
    @classmethod
    def _distinct_windows(cls, windows: list[Duration]) -> list[Duration]:
        seen: dict[dt.timedelta, Duration] = {}
        for window in windows:
            first = seen.setdefault(window.timedelta, window)
            if first is not window:
                raise ValueError(f"{window} is the same window as {first}, listed before it")
        return windows


class ApprovalSettings(Section):
    """Approval checkpoints: steps that wait for a person on purpose (their SLA clock keeps
    running). Approve or reject with `throughline approvals` or the REST API."""

    invoice_above: PositiveFloat | None = Field(
        default=None,
        description="an invoice worth more than this, in kpis.reporting_currency (converted "
        "with kpis.fx_rates), waits for approval before its AR posting; unset: none waits",
    )
    over_cap: bool = Field(
        default=False,
        description="a billable that would take a capped contract past its cap waits for "
        "approval (approved: charged anyway) instead of being rejected by validation",
    )


class SlackChannel(Section):
    kind: Literal["slack"] = "slack"
    webhook_url: AnyHttpUrl


class PagerDutyChannel(Section):
    kind: Literal["pagerduty"] = "pagerduty"
    routing_key: SecretStr
    events_url: AnyHttpUrl = AnyHttpUrl("https://events.pagerduty.com/v2/enqueue")


class EmailChannel(Section):
    kind: Literal["email"] = "email"
    smtp_host: str = "127.0.0.1"
    smtp_port: Port = 25
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    recipients: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False


class WebhookChannel(Section):
    kind: Literal["webhook"] = "webhook"
    url: AnyHttpUrl
    secret: SecretStr | None = None


Channel = Annotated[
    SlackChannel | PagerDutyChannel | EmailChannel | WebhookChannel, Field(discriminator="kind")
]


class AlertRule(Section):
    """`stage_sla`: objects past a stage SLA; `dead_letters`: dead letters at or above
    `threshold`; `probe`: a probe (`probe` name, or all) failing; `kpi`: a KPI beyond
    `threshold`."""

    name: str = Field(min_length=1)
    kind: Literal["stage_sla", "dead_letters", "probe", "kpi"]
    severity: Severity = Severity.WARNING
    channels: list[str] = Field(default_factory=list)
    threshold: float | None = None
    probe: str | None = None
    kpi: str | None = None
    for_duration: DurationField = Field(default=parse_duration("0s"), alias="for")
    repeat_every: PositiveDuration = parse_duration("4h")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _default_rules() -> list[AlertRule]:
    return [
        AlertRule(name="stage-sla-breached", kind="stage_sla", severity=Severity.WARNING),
        AlertRule(
            name="dead-letters", kind="dead_letters", severity=Severity.CRITICAL, threshold=1
        ),
        AlertRule(name="probe-failing", kind="probe", severity=Severity.CRITICAL),
    ]


class AlertSettings(Section):
    evaluation_interval: PositiveDuration = parse_duration("60s")
    channels: dict[str, Channel] = Field(default_factory=dict)
    rules: list[AlertRule] = Field(default_factory=_default_rules)


class RetentionSettings(Section):
    spans: PositiveDuration = parse_duration("30d")
    sync_attempts: PositiveDuration = parse_duration("90d")
    probe_results: PositiveDuration = parse_duration("90d")
    interval: PositiveDuration = parse_duration("1h")


class ProbeSettings(Section):
    """How often each kind of probe runs, how long one may take, and what counts as late."""

    health_interval: PositiveDuration = parse_duration("1m")
    reconciliation_interval: PositiveDuration = parse_duration("15m")
    freshness_interval: PositiveDuration = parse_duration("5m")
    stuck_interval: PositiveDuration = parse_duration("5m")
    timeout: PositiveDuration = Field(
        default=parse_duration("2m"),
        description="a probe still running after this is stopped and reported as failed",
    )
    latency_warn_ms: PositiveFloat = 2000.0
    rate_limit_headroom_warn: float = Field(default=0.1, ge=0, le=1)
    credential_expiry_warn: DurationField = parse_duration("7d")
    flows_expected_every: dict[str, PositiveDuration] = Field(
        default_factory=dict,
        description="dead man's switch per flow, e.g. {posting: 2h}: the flow must have "
        "synced successfully within that time",
    )
    webhooks_expected_every: dict[str, PositiveDuration] = Field(
        default_factory=dict,
        description="per CloudEvents source (e.g. /billing): a webhook must arrive within "
        "that time",
    )
    outbox_stall_after: DurationField = Field(
        default=parse_duration("15m"),
        description="due sync messages older than this mean no worker is running them",
    )


class SchedulerSettings(Section):
    """The scheduler that runs probes, syncs, KPI refresh and retention in `serve`."""

    enabled: bool = True
    jitter: DurationField = Field(
        default=parse_duration("5s"),
        description="each run starts up to this much after its tick, so processes and "
        "jobs do not hit the systems in lockstep",
    )
    misfire_grace: DurationField = Field(
        default=parse_duration("5m"),
        description="a run missed by less than this (a busy or restarted process) still "
        "runs, once; older misses are skipped",
    )
    job_timeout: PositiveDuration = Field(
        default=parse_duration("10m"),
        description="a job (other than a probe) still running after this is reported failed",
    )
    sync_interval: DurationField = Field(
        default=parse_duration("30s"),
        description="how often `serve` polls the systems and runs the outbox (0s: never, "
        "leave syncing to `throughline worker`)",
    )


class DatabaseSettings(Section):
    url: str = "sqlite:///var/throughline.db"

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {value!r}") from exc
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
        return value


class ServerSettings(Section):
    """The collector: OTLP/HTTP on the standard port 4318, REST API, /metrics, /healthz."""

    host: str = "127.0.0.1"
    port: Port = 4318
    max_body_bytes: PositiveInt = 16 * 1024 * 1024
    queue_max_spans: PositiveInt = 200_000
    demo_mode: bool = Field(
        default=True, description="no ingest token needed while bound to loopback"
    )
    sdk_queue_max_spans: PositiveInt = 65_536
    otlp_forward_endpoint: AnyHttpUrl | None = Field(
        default=None,
        description="also send our own spans to this OTLP/HTTP traces URL "
        "(an OpenTelemetry Collector, Jaeger or Tempo), e.g. http://otel:4318/v1/traces",
    )


class DashboardSettings(Section):
    host: str = "127.0.0.1"
    port: Port = 8501


class SandboxSettings(Section):
    """The sandbox firm: its seed, fault profile, history, live speed-up, where its five
    systems keep their SQLite files, and the key of their admin endpoints."""

    seed: int = 42
    faults: Literal["none", "default", "chaos"] = "default"
    history_days: PositiveInt = 90
    speedup: PositiveFloat = 60.0
    directory: Path = Path("var/sandbox")
    admin_key: SecretStr = SecretStr("sandbox-admin")
    system_faults: dict[System, dict[str, Any]] = Field(
        default_factory=dict,
        description="per system, fault settings laid over the profile, e.g. "
        "{erp: {error_rate: 0.2}} (see docs/sandbox.md)",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    dashboard: DashboardSettings = DashboardSettings()
    systems: Systems = Systems()
    slas: list[StageSla] = Field(default_factory=_default_slas)
    kpis: KpiSettings = KpiSettings()
    approvals: ApprovalSettings = ApprovalSettings()
    alerts: AlertSettings = AlertSettings()
    retention: RetentionSettings = RetentionSettings()
    probes: ProbeSettings = ProbeSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    sandbox: SandboxSettings = SandboxSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML document arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)


# --- loading and reporting problems -------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """Every problem found in a configuration, each with its key path."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(
            f"{source}: {len(self.problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems)
        )


def format_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_FRIENDLY = {
    "url_parsing": "not a URL",
    "url_scheme": "not an http(s) URL",
    "url_type": "not a URL",
    "missing": "required, but missing",
    "extra_forbidden": "unknown key",
    "union_tag_invalid": "unknown kind",
    "union_tag_not_found": "needs a `kind`",
}


_UNION_TAGS = frozenset({"oauth2", "api_key", "tryton", "slack", "pagerduty", "email", "webhook"})


def _known_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Field names (and aliases) valid at `loc`, to suggest a fix for an unknown key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", {})
        field = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if field is None:
            return []
        current = _model_in(field.annotation)
    fields = getattr(current, "model_fields", {})
    return [f.alias or name for name, f in fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def problems_from(
    error: ValidationError, environ: Mapping[str, str], model: type[BaseModel] = Settings
) -> list[Problem]:
    import difflib

    problems = []
    for item in error.errors(include_url=False):
        # A discriminated union puts the tag in the path (`auth.oauth2.client_id`): drop it.
        loc = list(item["loc"])
        tag = next((i for i, part in enumerate(loc) if part in _UNION_TAGS), None)
        if tag is not None and tag + 1 < len(loc):
            del loc[tag]
        message = _FRIENDLY.get(item["type"], item["msg"])
        if item["type"] == "extra_forbidden" and loc:
            close = difflib.get_close_matches(str(loc[-1]), _known_keys(model, loc), n=1)
            if close:
                message += f" (did you mean `{close[0]}`?)"
        elif item["type"] in ("url_parsing", "url_scheme", "url_type"):
            message += f": {item['input']!r}"
        elif item["type"] == "union_tag_invalid":
            message += f" {item['ctx']['tag']!r} (one of {item['ctx']['expected_tags']})"
        elif item["type"] == "string_pattern_mismatch":
            message = f"{item['input']!r} does not match {item['ctx']['pattern']}"
        elif item["type"] == "value_error":
            message = str(item["ctx"].get("error", item["msg"])) if "ctx" in item else item["msg"]
        # Name the environment variable when the bad value came from one.
        candidates = (
            ENV_PREFIX + "__".join(str(p).upper() for p in loc[:n]) for n in range(len(loc), 0, -1)
        )
        variable = next((name for name in candidates if name in environ), None)
        if variable is not None:
            message += f" (from ${variable})"
        problems.append(Problem(format_path(loc), message))
    return problems


def semantic_problems(settings: Settings) -> list[Problem]:
    """What a schema cannot say: references between sections and impossible combinations."""
    problems: list[Problem] = []
    channels = settings.alerts.channels
    names: set[str] = set()
    for i, rule in enumerate(settings.alerts.rules):
        if rule.name in names:
            problems.append(Problem(f"alerts.rules[{i}].name", f"duplicate rule {rule.name!r}"))
        names.add(rule.name)
        for j, channel in enumerate(rule.channels):
            if channel not in channels:
                known = ", ".join(sorted(channels)) or "none defined"
                problems.append(
                    Problem(
                        f"alerts.rules[{i}].channels[{j}]",
                        f"unknown channel {channel!r} (alerts.channels: {known})",
                    )
                )
        if rule.kind in ("dead_letters", "kpi") and rule.threshold is None:
            problems.append(
                Problem(f"alerts.rules[{i}].threshold", f"required for kind {rule.kind}")
            )
        if rule.kind == "kpi" and not rule.kpi:
            problems.append(Problem(f"alerts.rules[{i}].kpi", "required for kind kpi"))
    order = {s: n for n, s in enumerate([*DealStage, *InvoiceStage])}
    for i, sla in enumerate(settings.slas):
        deal_stages = {s.value for s in DealStage}
        if (sla.from_stage in deal_stages) != (sla.to_stage in deal_stages):
            problems.append(
                Problem(f"slas[{i}]", "`from` and `to` must both be deal or both invoice stages")
            )
        elif order[sla.from_stage] >= order[sla.to_stage]:
            problems.append(
                Problem(f"slas[{i}].to", f"{sla.to_stage} does not come after {sla.from_stage}")
            )
    if settings.kpis.reporting_currency not in settings.kpis.fx_rates:
        problems.append(
            Problem(
                "kpis.fx_rates",
                f"no rate for the reporting currency {settings.kpis.reporting_currency}",
            )
        )
    ports = {
        "server.port": settings.server.port,
        "dashboard.port": settings.dashboard.port,
    }
    ports.update(
        {f"systems.{s.value}.base_url": settings.systems.get(s).base_url.port or 0 for s in System}
    )
    local = {
        k: v
        for k, v in ports.items()
        if not k.startswith("systems.")
        or (
            settings.systems.get(System(k.split(".")[1])).base_url.host
            in ("127.0.0.1", "localhost")
        )
    }
    seen: dict[int, str] = {}
    for key, port in local.items():
        if port in seen:
            problems.append(Problem(key, f"port {port} is also used by {seen[port]}"))
        seen.setdefault(port, key)
    return problems


def read_yaml(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [Problem("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(source, [Problem("", f"cannot read: {exc.strerror}")]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [Problem("", f"{where}YAML syntax error: {problem}")]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            source, [Problem("", f"the top level must be a mapping, not {type(document).__name__}")]
        )
    return document


def overlay(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`, mappings merged key by key. A mapping whose `kind`
    changes (another auth or channel type) replaces the old one instead of merging."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if (
            isinstance(old, dict)
            and isinstance(value, Mapping)
            and value.get("kind", old.get("kind")) == old.get("kind")
        ):
            merged[key] = overlay(old, value)
        else:
            merged[key] = value
    return merged


def find_config_file(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """`--config FILE`, else `$THROUGHLINE_CONFIG`, else `./throughline.yaml` if present."""
    if explicit is not None:
        return explicit
    if environ.get(f"{ENV_PREFIX}CONFIG"):
        return Path(environ[f"{ENV_PREFIX}CONFIG"])
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def _unreadable_variable(exc: SettingsError) -> str:
    match = re.search(r'field "([^"]+)"', str(exc))
    section = match.group(1) if match else ""
    names = sorted(n for n in os.environ if n.startswith(f"{ENV_PREFIX}{section.upper()}__"))
    where = ", ".join(f"${n}" for n in names) or f"a {ENV_PREFIX}{section.upper()}__* variable"
    return (
        f"{section}: cannot read {where}: a list or map must be JSON, "
        'e.g. {"invoice_to_ar": "2h"}'
    )


def load_settings(path: Path | None = None) -> Settings:
    """Read `path` (or nothing: defaults), apply the environment, validate everything and
    raise `ConfigError` listing every problem with its key path."""
    document = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    # Lay the file over the defaults, so a file or a variable can change one key of a
    # section (`systems.erp.base_url`) without restating the rest of it.
    defaults = Settings.model_construct().model_dump(by_alias=True)
    try:
        settings = Settings(**overlay(defaults, document))
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc, os.environ)) from None
    except SettingsError as exc:  # a variable holding a list or map that is not JSON
        raise ConfigError(source, [Problem("", _unreadable_variable(exc))]) from None
    problems = semantic_problems(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings
