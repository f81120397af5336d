"""Test clients for the sandbox systems, as a connector would hold them."""

from __future__ import annotations

import httpx

from sandbox.services import OAUTH_CLIENT_ID, default_secret

ADMIN = {"X-Admin-Key": "test-admin"}


def token_for(base_url: str, system: str) -> str:
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": OAUTH_CLIENT_ID,
            "client_secret": default_secret(system),
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def client_for(base_url: str, system: str, timeout: float = 10.0) -> httpx.Client:
    """An authenticated client: a bearer token for CRM and ERP, the API key otherwise."""
    if system in ("crm", "erp"):
        headers = {"Authorization": f"Bearer {token_for(base_url, system)}"}
    else:
        headers = {"X-API-Key": default_secret(system)}
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def admin_put_faults(base_url: str, **settings: object) -> None:
    response = httpx.put(f"{base_url}/admin/faults", json={"settings": settings}, headers=ADMIN)
    assert response.status_code == 200, response.text


def admin_profile(base_url: str, profile: str) -> None:
    response = httpx.put(f"{base_url}/admin/faults", json={"profile": profile}, headers=ADMIN)
    assert response.status_code == 200, response.text
