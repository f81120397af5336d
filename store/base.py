"""The declarative base, the shared MetaData and the reusable column types of the schema."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, MetaData, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.types import TypeDecorator

# Named constraints make migrations reproducible on both databases (and SQLite batch mode
# needs names to alter a constraint at all).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite keeps no zone, so values are normalised to UTC on the way in and marked UTC on
    the way out; a naive datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")
# Surrogate keys: 64-bit on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

IdPk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
Timestamp = Annotated[dt.datetime, mapped_column(UTCDateTime())]
Money = Annotated[Decimal, mapped_column(Numeric(18, 2))]
Currency = Annotated[str, mapped_column(String(3))]
ObjectId = Annotated[str, mapped_column(String(128))]
TraceId = Annotated[str, mapped_column(String(32))]
SpanId = Annotated[str, mapped_column(String(16))]
Json = Annotated[dict[str, Any], mapped_column(JSONDoc)]
Name = Annotated[str, mapped_column(String(64))]


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        Decimal: Numeric(18, 2),
        dict[str, Any]: JSONDoc,
        list[Any]: JSONDoc,
    }
