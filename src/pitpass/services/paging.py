"""Numbered pages of a list (every list the pages, API and CLI show)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

Row = TypeVar("Row")


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int
    total: int

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page


def page_of(total: int, number: int, per_page: int = 50) -> Page:
    return Page(max(1, min(number, max(1, -(-total // per_page)))), per_page, total)


def fetch_page(
    db: Session,
    entity: type[Row],
    where: ColumnElement[bool] | None,
    order_by: tuple[Any, ...],
    number: int,
    per_page: int,
) -> tuple[list[Row], Page]:
    """One count and one page of rows; a page number past the end shows the last page."""
    criteria = () if where is None else (where,)
    total = db.scalar(select(func.count()).select_from(entity).where(*criteria)) or 0
    page = page_of(total, number, per_page)
    rows = db.scalars(
        select(entity).where(*criteria).order_by(*order_by).offset(page.offset).limit(per_page)
    )
    return list(rows), page
