"""The dashboard in a real headless Chromium: sign in, read the cash-conversion page, click
from a blocker into its deal, and replay a dead letter as on-call. Screenshots land in
docs/screenshots/ (the README shows them)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from dashboard.launch import streamlit_command
from store import migrate
from store.access import AuditEntry
from store.engine import make_engine
from store.outbox import Replay
from store.states import Role
from tests.conftest import free_port, require_binary
from tests.dashboard.seed import NOW, PASSWORD, seed
from throughline.commands.users import add_user
from throughline.config import Settings

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WAIT = 30


@contextlib.contextmanager
def serve_dashboard(url: str, cwd: Path, port: int | None = None) -> Iterator[str]:
    """The dashboard started as `throughline dashboard` starts it; yields its base URL."""
    port = port or free_port()
    env = {
        **os.environ,
        "THROUGHLINE_DATABASE__URL": url,
        "THROUGHLINE_DASHBOARD__PORT": str(port),
    }
    env.pop("THROUGHLINE_CONFIG", None)
    settings = Settings(dashboard={"port": port})  # type: ignore[arg-type]
    proc = subprocess.Popen(
        streamlit_command(settings),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited: {proc.communicate()[0]}")
        try:
            if httpx.get(f"{base}/_stcore/health", timeout=1).text == "ok":
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("streamlit did not come up in 60 s")
        time.sleep(0.3)
    try:
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def seeded_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'throughline.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    seed(engine)
    engine.dispose()
    return url


SSO_EMAIL = "dana@example.com"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One seeded store and one dashboard for the module, with single sign-on configured
    against a local mock OIDC provider (the password form is there as well)."""
    from oidc_provider_mock import User as OidcUser
    from oidc_provider_mock import run_server_in_thread

    folder = tmp_path_factory.mktemp("browser")
    url = seeded_store(folder)
    engine = make_engine(url)
    add_user(engine, SSO_EMAIL, Role.FINANCE, None, NOW)
    engine.dispose()
    claims = {"email": SSO_EMAIL, "name": "Dana"}
    with run_server_in_thread(user_claims=[OidcUser(sub=SSO_EMAIL, claims=claims)]) as oidc:
        port = free_port()
        secrets = folder / ".streamlit" / "secrets.toml"
        secrets.parent.mkdir()
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            'cookie_secret = "a-test-cookie-secret-of-some-length"\n'
            'client_id = "throughline"\n'
            'client_secret = "not-a-real-secret"\n'
            f'server_metadata_url = "http://localhost:{oidc.server_port}'
            '/.well-known/openid-configuration"\n'
        )
        with serve_dashboard(url, folder, port) as base:
            yield base, url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        require_binary("chromium", "chromium")
        require_binary("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1440,1800",
    ):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(
        service=Service(executable_path="/usr/bin/chromedriver"), options=options
    )
    yield driver
    driver.quit()


def _sign_in(driver: object, base: str, username: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT)  # type: ignore[arg-type]
    driver.get(base)  # type: ignore[attr-defined]
    driver.delete_all_cookies()  # type: ignore[attr-defined]  # no single-sign-on identity
    driver.get(base)  # type: ignore[attr-defined]
    user = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "input[aria-label='User name']"))
    )
    user.send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "input[aria-label='Password']").send_keys(PASSWORD)  # type: ignore[attr-defined]
    driver.find_element(By.XPATH, "//button[.//p[text()='Sign in']]").click()  # type: ignore[attr-defined]
    wait.until(ec.presence_of_element_located((By.XPATH, "//h1[contains(., 'Cash conversion')]")))


def _settle(driver: object) -> None:
    """Wait until Streamlit has finished the script run (no running indicator)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT).until(  # type: ignore[arg-type]
        lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']")
    )
    time.sleep(0.5)


def test_sign_in_blocker_to_deal_and_replay_as_oncall(
    served: tuple[str, str], browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, url = served
    driver = browser
    wait = WebDriverWait(driver, WAIT)  # type: ignore[arg-type]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    _sign_in(driver, base, "fin")
    wait.until(
        ec.presence_of_element_located((By.XPATH, "//*[contains(., 'Blockers by money at risk')]"))
    )
    blocker = wait.until(
        ec.element_to_be_clickable((By.XPATH, "//a[contains(., 'D2 · Account D2')]"))
    )
    _settle(driver)
    driver.save_screenshot(str(SCREENSHOTS / "cash-conversion.png"))  # type: ignore[attr-defined]
    blocker.click()
    wait.until(ec.presence_of_element_located((By.XPATH, "//h2[contains(., 'D2')]")))
    wait.until(ec.presence_of_element_located((By.XPATH, "//*[contains(., 'Sync steps')]")))
    _settle(driver)
    driver.save_screenshot(str(SCREENSHOTS / "deal.png"))  # type: ignore[attr-defined]

    driver.find_element(By.XPATH, "//button[.//p[text()='Sign out']]").click()  # type: ignore[attr-defined]
    _sign_in(driver, base, "ops")
    wait.until(
        ec.element_to_be_clickable((By.XPATH, "//a[contains(., 'Integration health')]"))
    ).click()
    replay = wait.until(
        ec.element_to_be_clickable((By.XPATH, "(//button[.//p[text()='Replay this one']])[1]"))
    )
    _settle(driver)
    replay.click()
    wait.until(
        ec.presence_of_element_located(
            (By.XPATH, "//*[contains(., 'pending until an outbox worker runs them')]")
        )
    )
    _settle(driver)
    driver.save_screenshot(str(SCREENSHOTS / "integration-health.png"))  # type: ignore[attr-defined]

    engine = make_engine(url)
    with engine.connect() as conn:
        replays = conn.execute(select(Replay.requested_by, Replay.outcome)).all()
    engine.dispose()
    assert [tuple(r) for r in replays] == [("ops", "pending")]


def test_single_sign_on_through_a_mock_oidc_provider(
    served: tuple[str, str], browser: object
) -> None:
    """`st.login` against a local OIDC provider: the identity's e-mail must be an account
    (added with --sso, no password), whose role the dashboard then applies."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, url = served
    driver = browser
    wait = WebDriverWait(driver, WAIT)  # type: ignore[arg-type]
    driver.get(base)  # type: ignore[attr-defined]
    wait.until(
        ec.element_to_be_clickable(
            (By.XPATH, "//button[.//p[text()='Sign in with single sign-on']]")
        )
    ).click()
    wait.until(ec.element_to_be_clickable((By.NAME, "sub"))).send_keys(SSO_EMAIL)
    driver.find_element(By.XPATH, "//button[text()='Authorize']").click()  # type: ignore[attr-defined]
    wait.until(ec.presence_of_element_located((By.XPATH, "//h1[contains(., 'Cash conversion')]")))
    wait.until(
        ec.presence_of_element_located(
            (By.XPATH, f"//*[contains(., '{SSO_EMAIL}') and contains(., 'finance')]")
        )
    )
    # The finance role: no integration health page in the navigation.
    assert not driver.find_elements(By.XPATH, "//a[contains(., 'Integration health')]")  # type: ignore[attr-defined]
    engine = make_engine(url)
    with engine.connect() as conn:
        audited = conn.execute(
            select(AuditEntry.actor, AuditEntry.note).where(
                AuditEntry.action == "dashboard.sign_in"
            )
        ).all()
    engine.dispose()
    assert (SSO_EMAIL, "via sso") in [tuple(a) for a in audited]
