"""Five-field cron expressions as APScheduler triggers, with cron's own day numbers.

APScheduler 3 numbers the days of the week from Monday (0) and ``CronTrigger.from_crontab``
passes the field through, so ``0 4 * * 0`` would run on Mondays. Here the day-of-week field
means what it means in crontab(5): 0 and 7 are Sunday, 1 Monday; names work too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str) -> int:
    token = token.lower()
    if token in NAMES:
        return NAMES.index(token)
    if not token.isdigit() or int(token) > 7:
        raise ValueError(f"{token!r} is not a day of the week (0-7 or sun-sat)")
    return int(token) % 7


def cron_days(field: str) -> set[int]:
    """The days (0 = Sunday) a crontab day-of-week field names."""
    days: set[int] = set()
    for part in field.split(","):
        match = re.fullmatch(r"(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(\d+))?", part)
        if match is None:
            raise ValueError(f"{part!r} is not a day-of-week item")
        span, step = match.group(1), int(match.group(2) or 1)
        if step < 1:
            raise ValueError(f"{part!r}: the step must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, high = span.split("-")
            first, last = _day(low), int(high) if high == "7" else _day(high)
        else:
            first = last = _day(span)
        if last < first:
            raise ValueError(f"{part!r}: the range runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return days


def trigger(cron: str) -> CronTrigger:
    """``minute hour day month day-of-week``, in UTC, as a ``CronTrigger``."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields: got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    from apscheduler.triggers.cron import CronTrigger  # loads with the first schedule

    if weekday != "*":
        # APScheduler's numbers: Monday 0 … Sunday 6
        weekday = ",".join(str((d - 1) % 7) for d in sorted(cron_days(weekday)))
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone="UTC"
    )


def crontab_field(value: str | None) -> str | None:
    """A pydantic field check: ``value`` is a five-field cron expression (or absent)."""
    if value is not None:
        try:
            trigger(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a cron expression: {exc}") from exc
    return value
