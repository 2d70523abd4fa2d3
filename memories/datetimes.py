"""The one rule for a date and time the service stores: inside years 1–9999 *in UTC*.

``9999-12-31T23:59:59-12:00`` is a valid ISO 8601 value, but it is year 10000 in UTC:
PostgreSQL stores it, and Python cannot read it back, so every read of its namespace
would fail. The API's ``EventTimeField`` and the import both apply this rule.
"""

from datetime import UTC, datetime

#: The bound, worded for messages ("must be …", "Must be a date and time …").
UTC_YEAR_RANGE = "between years 1 and 9999 in UTC"


class DatetimeOutOfRange(ValueError):
    """The value cannot be expressed in UTC within years 1–9999."""


def datetime_in_utc(value: datetime) -> datetime:
    """``value`` converted to UTC; raises :class:`DatetimeOutOfRange` outside years 1–9999.

    ``value`` must carry its time zone (a naive value would be read as local time)."""
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise DatetimeOutOfRange(f"must be {UTC_YEAR_RANGE}") from None
