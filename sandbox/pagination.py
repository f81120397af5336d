"""The pagination styles the systems use: Salesforce-like cursors, page tokens, Kantata
and Zuora pages, NetSuite offsets. Each parses its query and wraps a page in its envelope."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sandbox.records import Page, Record


class BadPageRequest(ValueError):
    """A page parameter the system does not accept (answered 400)."""


@dataclass(frozen=True)
class PageRequest:
    after_seq: int = 0
    offset: int = 0
    limit: int = 100


class Paginator(Protocol):
    def parse(self, query: Mapping[str, str]) -> PageRequest: ...

    def envelope(
        self, resource: str, request: PageRequest, page: Page, items: list[Record]
    ) -> dict[str, Any]: ...


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadPageRequest(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadPageRequest(f"{name} must be between {low} and {high}")
    return value


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = raw.partition(":")
        if prefix != "seq":
            raise ValueError(raw)
        return int(seq)
    except (ValueError, UnicodeDecodeError):
        raise BadPageRequest("invalid cursor") from None


@dataclass(frozen=True)
class CursorPaginator:
    """`?limit=&cursor=` -> `{totalSize, done, records, nextCursor}` (CRM)."""

    max_limit: int = 200

    def parse(self, query: Mapping[str, str]) -> PageRequest:
        cursor = query.get("cursor")
        return PageRequest(
            after_seq=decode_cursor(cursor) if cursor else 0,
            limit=_int(query, "limit", 50, 1, self.max_limit),
        )

    def envelope(
        self, resource: str, request: PageRequest, page: Page, items: list[Record]
    ) -> dict[str, Any]:
        return {
            "totalSize": page.total,
            "done": not page.has_more,
            "records": items,
            "nextCursor": encode_cursor(page.last_seq or 0) if page.has_more else None,
        }


@dataclass(frozen=True)
class PageTokenPaginator:
    """`?page_size=&page_token=` -> `{<resource>: [...], next_page_token}` (CLM)."""

    max_limit: int = 100

    def parse(self, query: Mapping[str, str]) -> PageRequest:
        token = query.get("page_token")
        return PageRequest(
            after_seq=decode_cursor(token) if token else 0,
            limit=_int(query, "page_size", 25, 1, self.max_limit),
        )

    def envelope(
        self, resource: str, request: PageRequest, page: Page, items: list[Record]
    ) -> dict[str, Any]:
        return {
            resource: items,
            "next_page_token": encode_cursor(page.last_seq or 0) if page.has_more else None,
        }


@dataclass(frozen=True)
class KantataPaginator:
    """`?page=&per_page=` -> `{count, results: [{key, id}], <resource>: {id: record}, meta}`."""

    id_field: str = "id"
    max_limit: int = 200

    def parse(self, query: Mapping[str, str]) -> PageRequest:
        per_page = _int(query, "per_page", 20, 1, self.max_limit)
        page = _int(query, "page", 1, 1, 1_000_000)
        return PageRequest(offset=(page - 1) * per_page, limit=per_page)

    def envelope(
        self, resource: str, request: PageRequest, page: Page, items: list[Record]
    ) -> dict[str, Any]:
        return {
            "count": page.total,
            "results": [{"key": resource, "id": str(r[self.id_field])} for r in items],
            resource: {str(r[self.id_field]): r for r in items},
            "meta": {
                "count": page.total,
                "page_count": max(1, math.ceil(page.total / request.limit)),
                "page_number": request.offset // request.limit + 1,
            },
        }


@dataclass(frozen=True)
class PagePaginator:
    """`?page=&per_page=` -> `{data, page, per_page, total, has_more}` (billing)."""

    max_limit: int = 100

    def parse(self, query: Mapping[str, str]) -> PageRequest:
        per_page = _int(query, "per_page", 20, 1, self.max_limit)
        page = _int(query, "page", 1, 1, 1_000_000)
        return PageRequest(offset=(page - 1) * per_page, limit=per_page)

    def envelope(
        self, resource: str, request: PageRequest, page: Page, items: list[Record]
    ) -> dict[str, Any]:
        return {
            "data": items,
            "page": request.offset // request.limit + 1,
            "per_page": request.limit,
            "total": page.total,
            "has_more": page.has_more,
        }


@dataclass(frozen=True)
class OffsetPaginator:
    """`?limit=&offset=` -> `{items, count, hasMore, offset, totalResults}` (ERP)."""

    max_limit: int = 1000

    def parse(self, query: Mapping[str, str]) -> PageRequest:
        return PageRequest(
            offset=_int(query, "offset", 0, 0, 10_000_000),
            limit=_int(query, "limit", 100, 1, self.max_limit),
        )

    def envelope(
        self, resource: str, request: PageRequest, page: Page, items: list[Record]
    ) -> dict[str, Any]:
        return {
            "items": items,
            "count": len(items),
            "hasMore": page.has_more,
            "offset": request.offset,
            "totalResults": page.total,
        }
