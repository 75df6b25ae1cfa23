"""Limit + cursor pagination (keyset on ``id``): constant cost at any depth, unlike OFFSET."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel

from infra_mgr.errors import Invalid

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    results: list[T]
    next: str | None = None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id":
            raise ValueError(kind)
        last = int(value)
        if last < 0 or last > 2**63 - 1:
            raise ValueError(value)
        return last
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid("not a cursor returned by this API", field="cursor") from exc


Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (max 1000)")]
Cursor = Annotated[str | None, Query(max_length=64, description="Opaque cursor from a previous page's `next`")]
ObjId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Object id")]
MAX_ID = 2**63 - 1
