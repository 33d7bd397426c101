"""Crontab weekday syntax, shared by cron schedules and send windows. Pure.

Crontab numbers weekdays from Sunday = 0 (7 is Sunday again); APScheduler 3.x and
``datetime.weekday()`` from Monday = 0. Names (``mon``, ``tue``, ...) mean the same everywhere,
so numbers are translated to names.
"""

from __future__ import annotations

CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def weekday_names(field: str) -> str:
    """Translate crontab weekday numbers (0 or 7 = Sunday) to names APScheduler reads right."""
    if not any(char.isdigit() for char in field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            start, end = base.split("-", 1)
            first, last = _day_number(start), _day_number(end)
        else:
            first = _day_number(base)
            last = 6 if step_text else first
        if first > last:
            raise ValueError(f"weekday range {base!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    if not days:
        raise ValueError(f"weekday field {field!r} selects no day")
    return ",".join(CRON_DAY_NAMES[day] for day in sorted(days))


def _day_number(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit():
        number = int(token)
        if not 0 <= number <= 7:
            raise ValueError(f"weekday {number} out of range 0-7")
        return number
    if token[:3] in CRON_DAY_NAMES:
        return CRON_DAY_NAMES.index(token[:3])
    raise ValueError(f"unknown weekday {token!r}")
