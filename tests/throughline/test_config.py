"""Configuration: the example is valid and documents the defaults; every mistake is named by
its key path; the environment overrides the file."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from throughline.config import ConfigError, Settings, load_settings, parse_duration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "throughline.example.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "throughline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _problems(path: Path | None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return [str(p) for p in info.value.problems]


def test_the_example_file_is_valid_and_states_exactly_the_defaults() -> None:
    assert load_settings(EXAMPLE).model_dump() == Settings().model_dump()


def test_no_file_means_the_demo_defaults() -> None:
    settings = load_settings(None)
    assert settings.database.url == "sqlite:///var/throughline.db"
    assert settings.server.port == 4318
    assert str(settings.systems.erp.base_url) == "http://127.0.0.1:8605/"
    assert [(s.from_stage, s.to_stage, str(s.within)) for s in settings.slas][:2] == [
        ("closed_won", "contract_executed", "5bd"),
        ("contract_executed", "project_activated", "24h"),
    ]


def test_three_mistakes_are_all_named_with_their_key_paths(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        systems:
          erp:
            base_url: not a url
            auth: {kind: oauth2, client_id: throughline, client_secret: s}
        server:
          prot: 4318
        slas:
          - {from: closed_won, to: contract_executed, within: 3 weeks}
        """,
    )
    assert _problems(path) == [
        "server.prot: unknown key (did you mean `port`?)",
        "systems.erp.base_url: not a URL: 'not a url'",
        "slas[0].within: not a duration: '3 weeks' "
        "(write e.g. 90m, 24h, 30d, or 5bd for business days)",
    ]


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("database: {url: 'mysql://x/y'}", "database.url: unsupported database 'mysql'"),
        ("server: {port: 70000}", "server.port: Input should be less than or equal to 65535"),
        (
            "systems: {crm: {base_url: 'http://x', auth: {kind: ldap}}}",
            "systems.crm.auth: unknown kind 'ldap'",
        ),
        (
            "systems: {crm: {base_url: 'http://x', auth: {kind: api_key}}}",
            "systems.crm.auth.api_key: required, but missing",
        ),
        ("kpis: {reporting_currency: usd}", "kpis.reporting_currency: 'usd' does not match"),
        (
            "alerts: {rules: [{name: r, kind: probe, channels: [pager]}]}",
            "alerts.rules[0].channels[0]: unknown channel 'pager' (alerts.channels: none defined)",
        ),
        (
            "slas: [{from: posted, to: invoiced, within: 1h}]",
            "slas[0].to: invoiced does not come after posted",
        ),
        ("dashboard: {port: 4318}", "dashboard.port: port 4318 is also used by server.port"),
        ("- just\n- a list", "the top level must be a mapping, not list"),
        ("server:\n  port: [unclosed", "line 3, column 1: YAML syntax error"),
        ("kpis: {windows: [7d, 0d]}", "kpis.windows[1]: must be longer than 0 (got 0d)"),
        (
            "kpis: {windows: [1d, 7d, 24h]}",
            "kpis.windows: 24h is the same window as 1d, listed before it",
        ),
        ("retention: {spans: 0d}", "retention.spans: must be longer than 0 (got 0d)"),
        ("kpis: {refresh_interval: 0s}", "kpis.refresh_interval: must be longer than 0"),
    ],
    ids=[
        "unsupported-database",
        "port-out-of-range",
        "unknown-auth-kind",
        "missing-secret",
        "lowercase-currency",
        "undefined-channel",
        "sla-backwards",
        "port-clash",
        "not-a-mapping",
        "yaml-syntax",
        "zero-window",
        "same-window-twice",
        "retention-deletes-everything",
        "busy-refresh-loop",
    ],
)
def test_each_mistake_is_reported_where_it_is(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    problems = _problems(_write(tmp_path, yaml_text + "\n"))
    assert any(p.startswith(expected) for p in problems), problems


def test_a_missing_file_is_an_error_not_silent_defaults(tmp_path: Path) -> None:
    assert _problems(tmp_path / "nope.yaml") == ["file not found"]


def test_the_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(
        tmp_path,
        """
        database: {url: "sqlite:///from-file.db"}
        server: {port: 5000, host: 0.0.0.0}
        """,
    )
    monkeypatch.setenv("THROUGHLINE_SERVER__PORT", "6000")
    monkeypatch.setenv("THROUGHLINE_SYSTEMS__ERP__BASE_URL", "https://erp.example.com")
    settings = load_settings(path)
    assert settings.server.port == 6000
    assert settings.server.host == "0.0.0.0"  # the rest of the section still comes from the file
    assert settings.database.url == "sqlite:///from-file.db"
    assert str(settings.systems.erp.base_url) == "https://erp.example.com/"
    assert settings.systems.erp.auth.kind == "oauth2"


def test_durations_come_from_the_environment_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THROUGHLINE_KPIS__REFRESH_INTERVAL", "5m")
    monkeypatch.setenv("THROUGHLINE_PROBES__FLOWS_EXPECTED_EVERY", '{"invoice_to_ar": "2h"}')
    settings = load_settings(None)
    assert settings.kpis.refresh_interval.timedelta == dt.timedelta(minutes=5)
    assert settings.probes.flows_expected_every["invoice_to_ar"].timedelta == dt.timedelta(hours=2)
    monkeypatch.setenv("THROUGHLINE_KPIS__REFRESH_INTERVAL", "soon")
    assert _problems(None) == [
        "kpis.refresh_interval: not a duration: 'soon' (write e.g. 90m, 24h, 30d, or 5bd for "
        "business days) (from $THROUGHLINE_KPIS__REFRESH_INTERVAL)"
    ]


def test_a_map_in_the_environment_that_is_not_json_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("THROUGHLINE_PROBES__WEBHOOKS_EXPECTED_EVERY", "{/billing: 30m")
    assert _problems(None) == [
        "probes: cannot read $THROUGHLINE_PROBES__WEBHOOKS_EXPECTED_EVERY: a list or map must "
        'be JSON, e.g. {"invoice_to_ar": "2h"}'
    ]


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THROUGHLINE_SERVER__PORT", "http")
    assert _problems(None) == [
        "server.port: Input should be a valid integer, unable to parse string as an integer "
        "(from $THROUGHLINE_SERVER__PORT)"
    ]


def test_secrets_do_not_show_in_the_settings_repr(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        systems:
          billing:
            base_url: http://127.0.0.1:8604
            auth: {kind: api_key, api_key: hunter2-very-secret}
        """,
    )
    settings = load_settings(path)
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump(mode="json"))
    assert settings.systems.billing.auth.kind == "api_key"


@pytest.mark.parametrize(
    ("text", "seconds", "business"),
    [("90s", 90, False), ("15m", 900, False), ("24h", 86400, False), ("5bd", 432000, True)],
)
def test_durations(text: str, seconds: int, business: bool) -> None:
    duration = parse_duration(text)
    assert duration.timedelta.total_seconds() == seconds
    assert duration.business_days is business
    assert str(duration) == text
