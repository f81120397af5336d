"""Test clients for the sandbox systems, as a connector would hold them."""

from __future__ import annotations

from collections.abc import Generator

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


class RefreshingToken(httpx.Auth):
    """Client credentials: a token from the start, and a fresh one when the system
    answers 401 (an expired token)."""

    requires_response_body = True

    def __init__(self, base_url: str, system: str) -> None:
        self._base_url = base_url
        self._system = system
        self._token = token_for(base_url, system)

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            f"{self._base_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": OAUTH_CLIENT_ID,
                "client_secret": default_secret(self._system),
            },
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            self._token = (yield self._token_request()).json()["access_token"]
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


def client_for(base_url: str, system: str, timeout: float = 10.0) -> httpx.Client:
    """An authenticated client: a bearer token for CRM and ERP, the API key otherwise."""
    if system in ("crm", "erp"):
        return httpx.Client(
            base_url=base_url, auth=RefreshingToken(base_url, system), timeout=timeout
        )
    headers = {"X-API-Key": default_secret(system)}
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def admin_put_faults(base_url: str, **settings: object) -> None:
    response = httpx.put(f"{base_url}/admin/faults", json={"settings": settings}, headers=ADMIN)
    assert response.status_code == 200, response.text


def admin_profile(base_url: str, profile: str) -> None:
    response = httpx.put(f"{base_url}/admin/faults", json={"profile": profile}, headers=ADMIN)
    assert response.status_code == 200, response.text
