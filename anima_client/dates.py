"""Times typed by a person (``anima query --since``) or a model (``recall(since=…)``):
an ISO 8601 date or datetime, or an age such as ``7d``."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

SINCE_HELP = "an ISO 8601 date or datetime (2026-01-31, 2026-01-31T12:00:00Z) or an age: 30m, 12h, 7d, 2w"


def parse_since(text: str, *, now: datetime | None = None) -> datetime | date:
    """``2026-01-31`` → that date (midnight in the server's time zone); ``2026-01-31T12:00Z``
    → that instant; ``7d`` (``m``, ``h``, ``d``, ``w``) → that long before ``now`` (UTC).
    Raises ``ValueError`` for anything else."""
    value = text.strip()
    age = _AGE.match(value)
    if age:
        amount, unit = float(age.group(1)), _UNITS[age.group(2).lower()]
        return (now or datetime.now(timezone.utc)) - timedelta(**{unit: amount})
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use {SINCE_HELP}") from None
