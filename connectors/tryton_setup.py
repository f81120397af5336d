"""Build a ready Tryton database: the modules a firm needs, a company with a chart of
accounts, fiscal years with invoice sequences, a payment term and a revenue journal.

    python -m connectors.tryton_setup DIRECTORY [--name firm] [--password admin]

Runs `trytond-admin` (about 20 s) and then Tryton's own test helpers in-process through
proteus; run it while no server uses that database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

MODULES = ("account_invoice", "project_invoice", "sale_opportunity", "timesheet")


def write_config(directory: Path, port: int) -> Path:
    config = directory / "trytond.conf"
    config.write_text(
        f"[database]\nuri = sqlite://\npath = {directory.resolve()}\n"
        f"[web]\nlisten = 127.0.0.1:{port}\n"
    )
    return config


def _trytond_admin() -> str:
    found = shutil.which("trytond-admin", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("trytond is not installed: pip install 'throughline[tryton]'")
    return found


def build_database(directory: Path, name: str = "firm", password: str = "admin") -> Path:
    """Create `<directory>/<name>.sqlite`, initialised and set up for accounting."""
    directory.mkdir(parents=True, exist_ok=True)
    config = write_config(directory, 8000)
    database = directory / f"{name}.sqlite"
    database.unlink(missing_ok=True)
    database.touch()
    secret = directory / "admin-password"
    secret.write_text(password)
    subprocess.run(
        [
            _trytond_admin(),
            "-c",
            str(config),
            "-d",
            name,
            "-u",
            *MODULES,
            "--activate-dependencies",
            "--email",
            "admin@example.com",
        ],
        env={**os.environ, "TRYTONPASSFILE": str(secret)},
        check=True,
        capture_output=True,
        timeout=600,
    )
    subprocess.run(
        [sys.executable, "-m", "connectors.tryton_setup", "--accounting", str(config), name],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return database


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (a plain copy of a live WAL file loses rows)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _set_up_accounting(config: str, name: str) -> None:
    from decimal import Decimal

    from proteus import Model
    from proteus import config as proteus_config

    proteus_config.set_trytond(database=name, config_file=config)
    from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, get_accounts
    from trytond.modules.account_invoice.tests.tools import (
        create_payment_term,
        set_fiscalyear_invoice_sequences,
    )
    from trytond.modules.company.tests.tools import create_company, get_company

    party = Model.get("party.party")(name="Throughline Demo Firm")
    party.save()
    create_company(party=party)
    company = get_company()
    create_chart(company)
    today = dt.date.today()
    for year in (today.year - 1, today.year, today.year + 1):
        fiscalyear = set_fiscalyear_invoice_sequences(
            create_fiscalyear(company, today=dt.date(year, 6, 1))
        )
        fiscalyear.click("create_period")
    create_payment_term()
    category = Model.get("product.category")(name="Services", accounting=True)
    category.account_revenue = get_accounts(company)["revenue"]
    category.save()
    (unit,) = Model.get("product.uom").find([("name", "=", "Unit")])
    template = Model.get("product.template")(
        name="Professional services", type="service", default_uom=unit, list_price=Decimal(0)
    )
    template.account_category = category
    template.save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounting", nargs=2, metavar=("CONFIG", "NAME"), help=argparse.SUPPRESS)
    parser.add_argument("directory", nargs="?", type=Path)
    parser.add_argument("--name", default="firm")
    parser.add_argument("--password", default="admin")
    args = parser.parse_args()
    if args.accounting:
        _set_up_accounting(*args.accounting)
        return
    if args.directory is None:
        parser.error("DIRECTORY is required")
    print(build_database(args.directory, args.name, args.password))


if __name__ == "__main__":
    main()
