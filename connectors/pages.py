"""Paginators for the page styles the systems use. Each knows how to ask for the next page
and how to find the records and the next token in a body; every one of them refuses to
loop on a token it has seen before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.errors import FatalError

Fetch = Callable[[dict[str, Any]], Any]


class Paginator(Protocol):
    def pages(self, fetch: Fetch, resource: str) -> Iterator[list[dict[str, Any]]]: ...


class RepeatedToken(FatalError):
    error_class = "pagination_loop"


def _guard(seen: set[Any], token: Any) -> None:
    if token in seen:
        raise RepeatedToken(f"the system returned page token {token!r} twice")
    seen.add(token)


@dataclass(frozen=True)
class CursorPages:
    """`?limit&cursor` -> `{records, done, nextCursor}` (Salesforce-like)."""

    limit: int = 200

    def pages(self, fetch: Fetch, resource: str) -> Iterator[list[dict[str, Any]]]:
        cursor: str | None = None
        seen: set[Any] = set()
        while True:
            body = fetch({"limit": self.limit, **({"cursor": cursor} if cursor else {})})
            yield body["records"]
            if body.get("done", True) or not body.get("nextCursor"):
                return
            cursor = body["nextCursor"]
            _guard(seen, cursor)


@dataclass(frozen=True)
class TokenPages:
    """`?page_size&page_token` -> `{<resource>: [...], next_page_token}` (CLM)."""

    limit: int = 100

    def pages(self, fetch: Fetch, resource: str) -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        seen: set[Any] = set()
        while True:
            body = fetch({"page_size": self.limit, **({"page_token": token} if token else {})})
            yield body[resource]
            token = body.get("next_page_token")
            if not token:
                return
            _guard(seen, token)


@dataclass(frozen=True)
class SideloadPages:
    """`?page&per_page` -> `{results: [{key, id}], <resource>: {id: record}, meta}`
    (Kantata-like: the order lives in `results`, the records in a map)."""

    limit: int = 200

    def pages(self, fetch: Fetch, resource: str) -> Iterator[list[dict[str, Any]]]:
        page = 1
        while True:
            body = fetch({"page": page, "per_page": self.limit})
            records = body.get(resource, {})
            yield [records[ref["id"]] for ref in body["results"]]
            if page >= body["meta"]["page_count"]:
                return
            page += 1


@dataclass(frozen=True)
class NumberedPages:
    """`?page&per_page` -> `{data, has_more}` (Zuora/Stripe-like)."""

    limit: int = 100

    def pages(self, fetch: Fetch, resource: str) -> Iterator[list[dict[str, Any]]]:
        page = 1
        while True:
            body = fetch({"page": page, "per_page": self.limit})
            yield body["data"]
            if not body.get("has_more"):
                return
            page += 1


@dataclass(frozen=True)
class OffsetPages:
    """`?limit&offset` -> `{items, count, hasMore}` (NetSuite-like)."""

    limit: int = 500

    def pages(self, fetch: Fetch, resource: str) -> Iterator[list[dict[str, Any]]]:
        offset = 0
        while True:
            body = fetch({"limit": self.limit, "offset": offset})
            yield body["items"]
            if not body.get("hasMore") or not body.get("count"):
                return
            offset += int(body["count"])
