"""Dates: the one place that reads, checks and converts them.

Articles carry `published` as ISO 8601 (a date or a datetime) or empty. Filters and the store
use a publication day as a YYYYMMDD integer, which Chroma can range-filter and SQLite can
index. User bounds ("since", "until") are strict YYYY-MM-DD days. Time words of a question
("this week", "since Monday") become a range of days relative to the question's date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

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


# --- time words ("this week", "since Monday") -> a date range ----------------------------

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Words that name a day of the week or a month, full and abbreviated (lower case).
_MONTH_WORDS = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december", "jan", "feb", "mar", "apr",
                "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")
CALENDAR_WORDS = frozenset(_WEEKDAYS + _MONTH_WORDS)
_MONTHS = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8,
           "sep": 9, "oct": 10, "nov": 11, "dec": 12}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14,
                 "fifteen": 15, "twenty": 20, "thirty": 30, "sixty": 60, "ninety": 90}
_MONTH_NAME = (r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|"
               r"july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|"
               r"dec(?:ember)?)\.?")
_TIME_PHRASE = re.compile(
    r"\b(?:"
    r"(?P<days>(?:in\s+)?(?:the\s+)?(?:past|last)\s+(?P<count>\d{1,3}|"
    + "|".join(_NUMBER_WORDS) + r")\s+(?P<unit>days?|weeks?))"
    r"|(?P<pastweek>(?:in\s+)?(?:the|this)\s+(?:past|last)\s+week|past\s+week)"
    r"|(?P<weekday>since\s+(?:last\s+)?(?P<wday>" + "|".join(_WEEKDAYS) + r"))"
    r"|(?P<since>since\s+(?:the\s+(?P<nth>\d{1,2})(?:st|nd|rd|th)?\s+of\s+)?" + _MONTH_NAME
    + r"(?:\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?)?)"
    r"|(?P<calendar>(?P<which>this|last)\s+(?P<span>week|month|year))"
    r"|(?P<today>today)|(?P<yesterday>yesterday)"
    r")\b", re.IGNORECASE)
#: "USA Today", "Russia Today": a capitalised name before "Today" makes it a name.
_NAME_BEFORE = re.compile(r"[A-Z][\w.]*\s+$")


@dataclass(frozen=True)
class DateRange:
    """The days a time phrase of a question covers (ISO YYYY-MM-DD, both ends included) and
    the phrase itself with its offsets in the text it was found in."""

    since: str
    until: str
    phrase: str
    start: int
    end: int


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _calendar(which: str, span: str, today: date) -> tuple[date, date]:
    """"this/last week|month|year": this one up to today, or the whole previous one."""
    if span == "week":
        start = _monday(today)
        return (start, today) if which == "this" else (start - timedelta(days=7),
                                                       start - timedelta(days=1))
    if span == "month":
        start = _month_start(today)
        if which == "this":
            return start, today
        end = start - timedelta(days=1)
        return _month_start(end), end
    if which == "this":
        return date(today.year, 1, 1), today
    return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)


def _since_month(match: re.Match[str], today: date) -> tuple[date, date] | None:
    """"since March (5)": that day (the 1st without one), in the last year it has passed."""
    month = _MONTHS[match.group("month").lower()[:3]]
    number = match.group("day") or match.group("nth")
    if match.group("month") == "may" and not number:
        return None  # "since may ..." is the verb, not the month
    for year in (today.year, today.year - 1):
        try:
            start = date(year, month, int(number or 1))
        except ValueError:
            return None
        if start <= today:
            return start, today
    return None


def _span(match: re.Match[str], today: date) -> tuple[date, date] | None:
    """The days the matched phrase covers relative to `today` (None when it covers none)."""
    if match.group("today"):
        return today, today
    if match.group("yesterday"):
        return today - timedelta(days=1), today - timedelta(days=1)
    if match.group("pastweek"):
        return today - timedelta(days=6), today
    if match.group("days"):
        count = match.group("count").lower()
        days = int(count) if count.isdigit() else _NUMBER_WORDS[count]
        days *= 7 if match.group("unit").lower().startswith("week") else 1
        return (today - timedelta(days=days - 1), today) if days else None
    if match.group("weekday"):
        back = (today.weekday() - _WEEKDAYS.index(match.group("wday").lower())) % 7 or 7
        return today - timedelta(days=back), today
    if match.group("since"):
        return _since_month(match, today)
    return _calendar(match.group("which").lower(), match.group("span").lower(), today)


def _is_name(text: str, match: re.Match[str]) -> bool:
    """Whether a matched "Today" is part of a name ("USA Today")."""
    return bool(match.group("today")) and match.group(0)[0] == "T" and bool(
        _NAME_BEFORE.search(text[:match.start()]))


def relative_range(text: str, today: date) -> DateRange | None:
    """The days the first time phrase of `text` covers, relative to `today` (the question's
    date): "this week" is Monday..today, "last week" the previous Monday..Sunday, "past week"
    today-6..today, "since Monday" the latest Monday before today..today; None without one."""
    for match in _TIME_PHRASE.finditer(text):
        if _is_name(text, match):
            continue
        span = _span(match, today)
        if span is not None:
            start, end = span
            return DateRange(since=start.isoformat(), until=end.isoformat(),
                             phrase=match.group(0), start=match.start(), end=match.end())
    return None


def time_phrase(text: str) -> str:
    """The first time phrase of `text` ("this week", "since Monday"), "" when none; the
    phrase does not depend on the date, the days it covers do (`relative_range`)."""
    found = relative_range(text, date(2000, 7, 1))
    return found.phrase if found else ""
