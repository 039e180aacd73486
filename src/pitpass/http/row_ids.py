"""Row ids in paths (`/requests/{request_id}`): one rule for pages and the API.

The tables' integer keys are PostgreSQL `integer` (int4): an id outside 1..2^31-1 names
no row, and PostgreSQL refuses to even compare one. A path segment made with `row_id()`
matches only ids in that range, so any other is the 404 of a path that does not exist
(never a 500, never a query).
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

MAX_ROW_ID = 2**31 - 1
CONVERTOR = "row_id"


def decimal_range_pattern(maximum: int) -> str:
    """A regex matching the decimal numbers 1..`maximum`, written without leading zeros."""
    digits = str(maximum)
    shorter = f"[1-9][0-9]{{0,{len(digits) - 2}}}" if len(digits) > 1 else None
    same_length = []
    for position, digit in enumerate(digits):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            rest = len(digits) - position - 1
            same_length.append(f"{digits[:position]}[{lowest}-{int(digit) - 1}][0-9]{{{rest}}}")
    same_length.append(digits)
    return "|".join(([shorter] if shorter else []) + same_length)


class RowIdConvertor(Convertor[int]):
    regex = f"(?:{decimal_range_pattern(MAX_ROW_ID)})"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if not 1 <= value <= MAX_ROW_ID:
            raise ValueError(f"{value} is not a row id")
        return str(value)


register_url_convertor(CONVERTOR, RowIdConvertor())


def row_id(name: str) -> str:
    """The path segment `{name}` for a row id, e.g. f"/requests/{row_id('request_id')}"."""
    return f"{{{name}:{CONVERTOR}}}"
