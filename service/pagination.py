"""Keyset pagination of the list routes: newest first, with an opaque cursor.

A cursor encodes (created_at, id) of the last row of a page. The next page contains the rows that
sort after it in (created_at desc, id desc) order, so rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session

from service.errors import ApiError

LimitQuery = Annotated[int, Query(ge=1, le=200, description="items per page")]
CursorQuery = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]


def encode_cursor(row: Any) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        created, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        created_at = dt.datetime.fromisoformat(created)
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=dt.UTC)
        return created_at, uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(
            422, "invalid_cursor", "cursor: not a cursor returned by this endpoint", "cursor"
        ) from error


def newest_first_page(
    session: Session, statement: Select, model: Any, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """Return one page of `statement`'s rows, newest first, and the cursor of the next page or None."""
    if cursor:
        created_at, row_id = decode_cursor(cursor)
        statement = statement.where(tuple_(model.created_at, model.id) < tuple_(created_at, row_id))
    rows = session.scalars(
        statement.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    ).all()
    page = list(rows[:limit])
    next_cursor = encode_cursor(page[-1]) if len(rows) > limit else None
    return page, next_cursor
