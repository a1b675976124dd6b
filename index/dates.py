"""Dates: the one place that reads, checks and converts them.

Articles carry `published` as ISO 8601 (a date or a datetime) or empty. Filters and the store
use a publication day as a YYYYMMDD integer, which Chroma can range-filter and SQLite can
index. User bounds ("since", "until") are strict YYYY-MM-DD days.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from index.errors import DateError

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(value: str) -> str:
    """ISO 8601 for a date written any common way ("" when it cannot be read)."""
    value = value.strip()
    if not value:
        return ""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    import dateparser  # slow to import; only free-form dates need it

    parsed = dateparser.parse(value, settings={"PREFER_DAY_OF_MONTH": "first",
                                               "REQUIRE_PARTS": ["year", "month"]})
    if parsed is None:
        return ""
    if (parsed.hour, parsed.minute, parsed.second) == (0, 0, 0) and ":" not in value:
        return parsed.date().isoformat()
    return parsed.isoformat()


def is_iso(value: str) -> bool:
    """Whether `value` is an ISO 8601 date or datetime."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        try:
            date.fromisoformat(value)
        except ValueError:
            return False
    return True


def check_iso(value: str, name: str) -> str:
    """`value` unchanged when empty or ISO 8601; DateError naming `name` otherwise."""
    if value and not is_iso(value):
        raise DateError(f"{name} must be an ISO 8601 date, got {value!r}")
    return value


def as_date(published: str) -> date:
    """The day of an ISO 8601 date or datetime; ValueError when it is neither."""
    try:
        return datetime.fromisoformat(published).date()
    except ValueError:
        return date.fromisoformat(published[:10])


def day_int(day: date) -> int:
    """A date as the integer YYYYMMDD."""
    return day.year * 10000 + day.month * 100 + day.day


def published_day(published: str) -> int:
    """ISO date -> YYYYMMDD as an int (0 when unknown), the form filters compare."""
    return day_int(as_date(published)) if published else 0


def day_number(value: str | date | None) -> int | None:
    """A user's date bound (YYYY-MM-DD or date) -> YYYYMMDD int; None and "" pass as None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise DateError(f"not a date (use YYYY-MM-DD): {value!r}") from None
    return day_int(value)


def parse_day(value: str | date | None, field: str) -> str:
    """A strict YYYY-MM-DD bound as text ("" when blank); DateError naming `field` otherwise."""
    if isinstance(value, date):
        return value.isoformat()
    text = (value or "").strip()
    if not text:
        return ""
    if not _DAY.match(text):
        raise DateError(f"{field} must be a date like 2019-07-31, got {text!r}")
    try:
        date.fromisoformat(text)
    except ValueError:
        raise DateError(f"{field} is not a real date: {text!r}") from None
    return text
