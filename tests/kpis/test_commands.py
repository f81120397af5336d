"""`throughline kpis`, `kpis refresh`, `export ocel` (validated against the OCEL 2.0 JSON
schema) and `export csv`, driven through the real command line in-process."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.kpis.firm import firm_log
from tests.kpis.stores import module_store
from throughline.cli import app

SCHEMA = json.loads((Path(__file__).parent / "ocel20-schema-json.json").read_text())
AS_OF = "2026-06-30T12:00:00Z"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Engine]:
    with module_store(request) as engine:
        firm_log().write(engine)
        yield engine


def run(engine: Engine, *args: str) -> str:
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, list(args), env={"THROUGHLINE_DATABASE__URL": url})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_kpis_prints_json_for_a_window_and_slice(store: Engine) -> None:
    rows = json.loads(
        run(store, "kpis", "--window", "7d", "--by", "entity", "--format", "json", "--as-of", AS_OF)
    )
    values = {(r["kpi"], r["window"], r["slice"]): r["value"] for r in rows}
    assert values[("posting_success_rate", "7d", "uk")] == 1.0
    assert values[("unbilled_wip", "now", "uk")] == 1016.0
    assert {r["dimension"] for r in rows} == {"legal_entity"}
    assert {r["window"] for r in rows} == {"7d", "now"}


def test_kpis_prints_csv_and_a_table(store: Engine) -> None:
    rows = list(csv.DictReader(io.StringIO(run(store, "kpis", "-f", "csv", "--as-of", AS_OF))))
    dso = next(r for r in rows if r["kpi"] == "dso")
    assert float(dso["value"]) == pytest.approx(34020 / 68100 * 90)
    table = run(store, "kpis", "--as-of", AS_OF)
    assert "invoice_exception_rate" in table and "40.00%" in table


def test_the_table_shows_whole_names_readable_durations_and_money(store: Engine) -> None:
    # 80 columns (the runner's width): names that share a prefix must not be cut to it
    table = run(store, "kpis", "--as-of", AS_OF)
    lines = {line.split("│")[1].strip(): line for line in table.splitlines() if "│" in line}
    assert "activation_pending_count_31_60d" in lines and "activation_pending_value_61_90d" in lines
    assert "…" not in table
    assert "2d 6h" in lines["activation_latency_p50"]  # 194,400 s
    assert "10,000.00 USD" in lines["activation_pending_value_61_90d"]
    assert "as of 2026-06-30 12:00 UTC, 30d window" in table
    by_entity = run(store, "kpis", "--as-of", AS_OF, "--by", "entity", "-w", "7d")
    header = next(line for line in by_entity.splitlines() if "kpi" in line)
    assert header.split("┃")[3].strip() == "entity"
    assert any(line.split("│")[3].strip() == "uk" for line in by_entity.splitlines() if "│" in line)


def test_an_unknown_slice_is_refused_with_the_choices(store: Engine) -> None:
    url = store.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        app, ["kpis", "--by", "country"], env={"THROUGHLINE_DATABASE__URL": url}
    )
    assert result.exit_code == 2
    assert "--by: unknown slice 'country'" in result.stderr
    assert "entity, legal_entity, region, practice, currency, flow, system" in result.stderr
    assert result.stdout == ""
    empty = CliRunner().invoke(app, ["kpis", "-w", "0d"], env={"THROUGHLINE_DATABASE__URL": url})
    assert empty.exit_code == 2
    assert "--window: must be longer than 0 (got 0d)" in empty.stderr


def test_an_empty_store_says_why_every_value_is_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    env = {"THROUGHLINE_DATABASE__URL": url}
    assert CliRunner().invoke(app, ["migrate"], env=env).exit_code == 0
    result = CliRunner().invoke(app, ["kpis"], env=env)
    assert result.exit_code == 0, result.output
    assert "The store holds no deals yet" in result.stdout


def test_refresh_then_export_snapshots_as_csv(store: Engine, tmp_path: Path) -> None:
    assert "changed since the previous refresh and stored" in run(
        store, "kpis", "refresh", "--as-of", AS_OF
    )
    out = tmp_path / "kpis.csv"
    run(store, "export", "csv", "--out", str(out), "--latest")
    rows = list(csv.DictReader(out.open()))
    wip = next(r for r in rows if (r["kpi"], r["dimension"]) == ("unbilled_wip", "all"))
    assert float(wip["value"]) == 4016.0 and wip["unit"] == "USD"
    assert rows[0]["as_of"].startswith("2026-06-30T12:00:00")
    assert {r["superseded_at"] for r in rows} == {""}  # --latest: the current values


def test_refresh_before_the_latest_is_refused_with_the_reason(store: Engine) -> None:
    run(store, "kpis", "refresh", "--as-of", AS_OF)
    url = store.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        app,
        ["kpis", "refresh", "--as-of", "2026-06-01T00:00:00Z"],
        env={"THROUGHLINE_DATABASE__URL": url},
    )
    assert result.exit_code == 2
    assert "before the latest stored one (2026-06-30T12:00:00+00:00)" in result.output


def test_export_ocel_is_valid_ocel_2_json_with_object_links(store: Engine, tmp_path: Path) -> None:
    out = tmp_path / "log.json"
    run(store, "export", "ocel", "--out", str(out))
    log = json.loads(out.read_text())
    jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(log)
    types = {o["type"] for o in log["objects"]}
    assert types == {"deal", "contract", "project", "invoice", "posting", "billable_item"}
    ids = {o["id"] for o in log["objects"]}
    for event in log["events"]:
        assert {r["objectId"] for r in event["relationships"]} <= ids
    posted = next(e for e in log["events"] if e["type"] == "posted")
    assert {(r["objectId"], r["qualifier"]) for r in posted["relationships"]} == {
        ("I4", "invoice"),
        ("D2", "deal"),
        ("ar-posting:I4", "posting"),
    }
    times = [e["time"] for e in log["events"]]
    assert times == sorted(times) and times[0] == "2026-03-01T00:00:00Z"
    assert len(log["events"]) == 20  # one per lifecycle row of the firm


def test_an_export_that_fails_leaves_the_previous_file_whole(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "log.json"
    run(store, "export", "ocel", "--out", str(out))
    before = out.read_text()

    def breaks_halfway(engine: Engine, handle: io.TextIOBase) -> tuple[int, int]:
        handle.write('{"objectTypes": [')
        raise ConnectionError("the store went away")

    monkeypatch.setattr("kpis.ocel.write_ocel", breaks_halfway)
    url = store.url.render_as_string(hide_password=False)
    env = {"THROUGHLINE_DATABASE__URL": url}
    result = CliRunner().invoke(app, ["export", "ocel", "--out", str(out)], env=env)
    assert isinstance(result.exception, ConnectionError)
    assert out.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["log.json"]  # no temporary left


def test_an_export_into_a_missing_directory_is_refused(store: Engine, tmp_path: Path) -> None:
    url = store.url.render_as_string(hide_password=False)
    for command in ("ocel", "csv"):
        out = tmp_path / "nowhere" / f"kpis.{command}"
        result = CliRunner().invoke(
            app, ["export", command, "--out", str(out)], env={"THROUGHLINE_DATABASE__URL": url}
        )
        assert result.exit_code == 2
        assert f"--out: the directory {tmp_path / 'nowhere'} does not exist" in result.stderr
