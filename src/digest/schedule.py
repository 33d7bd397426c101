"""Cron schedules and the periods they cut time into. Pure: "now" is always passed in.

A digest's period is ``(previous fire, this fire]`` of its cron schedule in the digest's time
zone. APScheduler 3.x numbers weekdays from Monday = 0, unlike crontab (Sunday = 0, as users
write it), so numeric weekdays are translated to names (:mod:`digest.weekdays`) before
APScheduler sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from digest.weekdays import weekday_names


def _second_occurrence(local: datetime) -> bool:
    """True for the later of two instants that share a wall-clock time (DST fall-back)."""
    if local.fold != 1:
        return False
    return local.replace(fold=0).utcoffset() != local.utcoffset()


@dataclass(frozen=True)
class Period:
    """``(start, end]``; ``start`` is None for an open-ended first period."""

    start: datetime | None
    end: datetime

    def contains(self, moment: datetime) -> bool:
        # Compare in UTC: aware datetimes sharing a tzinfo compare by wall clock, which is
        # wrong across a DST fold.
        utc = moment.astimezone(UTC)
        return utc <= self.end.astimezone(UTC) and (
            self.start is None or utc > self.start.astimezone(UTC)
        )

    @property
    def key(self) -> str:
        """Stable ledger key of the issue that closes this period (its cutoff, local time).
        Minutes, as schedules fire at second 0; a seconds schedule keeps its seconds."""
        return self.end.isoformat(timespec="seconds" if self.end.second else "minutes")

    @property
    def slug(self) -> str:
        """URL-safe name of the issue, e.g. ``2017-11-20-0700``."""
        return self.end.strftime("%Y-%m-%d-%H%M")


@dataclass(frozen=True)
class Schedule:
    expression: str
    trigger: CronTrigger
    timezone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, timezone: ZoneInfo) -> Schedule:
        fields = expression.split()
        # An optional sixth field in front is seconds (as APScheduler allows): meant for
        # tests and demos that need a schedule of a few seconds, not for real digests.
        second = fields.pop(0) if len(fields) == 6 else "0"
        if len(fields) != 5:
            raise ValueError(
                f"cron schedule {expression!r} needs 5 fields (minute hour day month weekday), "
                f"got {len(expression.split())}"
            )
        minute, hour, day, month, weekday = fields
        try:
            trigger = CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=weekday_names(weekday),
                timezone=timezone,
            )
        except ValueError as exc:
            raise ValueError(f"invalid cron schedule {expression!r}: {exc}") from None
        return cls(expression=expression, trigger=trigger, timezone=timezone)

    def next_fire(self, after: datetime) -> datetime:
        """First fire time strictly after ``after``.

        Works in UTC around two APScheduler 3 habits at a DST fall-back: it returns the
        repeated wall time twice (02:30 CEST, then 02:30 CET) and, asked again from the second,
        returns it forever. Like cron, a wall time that occurs twice fires once, the first time.
        """
        query = after.astimezone(UTC)
        for _ in range(100_000):
            fire = self.trigger.get_next_fire_time(
                None, (query + timedelta(microseconds=1)).astimezone(self.timezone)
            )
            if fire is None:
                break
            fire_utc: datetime = fire.astimezone(UTC)
            if fire_utc <= query:
                query += timedelta(minutes=1)
                continue
            local = fire_utc.astimezone(self.timezone)
            if _second_occurrence(local):
                query = fire_utc
                continue
            return local
        raise ValueError(f"schedule {self.expression!r} never fires after {after}")

    def last_fire(self, at: datetime) -> datetime:
        """Latest fire time at or before ``at``. The window looked at doubles from one
        second, so a seconds schedule costs a few fires, not an hour's worth."""
        window = timedelta(seconds=1)
        while window < timedelta(days=4 * 366):
            fires = self.fires_between(at - window, at)
            if fires:
                return fires[-1]
            window *= 2
        raise ValueError(f"schedule {self.expression!r} did not fire in the four years before {at}")

    def latest_fires(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """The last ``limit`` fire times in ``[start, end]``, oldest first, found backwards
        from ``end``: however long the gap (a seconds schedule after a month's pause), never
        more than ``limit`` steps."""
        fires: list[datetime] = []
        at = end
        while len(fires) < limit:
            try:
                fire = self.last_fire(at)
            except ValueError:  # nothing in the four years before: none in range either
                break
            if fire < start:
                break
            fires.append(fire)
            at = fire - timedelta(microseconds=1)
        fires.reverse()
        return fires

    def fires_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Fire times in ``[start, end]``."""
        fires: list[datetime] = []
        limit = end.astimezone(UTC)
        fire = self.next_fire(start - timedelta(microseconds=1))
        while fire.astimezone(UTC) <= limit:
            fires.append(fire)
            fire = self.next_fire(fire)
        return fires

    def period_ending(self, at: datetime) -> Period:
        """The period whose cutoff is the last fire at or before ``at``."""
        end = self.last_fire(at)
        return Period(start=self.last_fire(end - timedelta(microseconds=1)), end=end)
