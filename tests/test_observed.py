"""What a new user saw (observation 10 of #10): status keeps a seconds cron's seconds, log
lines carry their zone."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from digest.logs import ZonedFormatter
from tests.conftest import CliRunner, Site

pytestmark = pytest.mark.both_databases


def test_status_keeps_the_seconds_of_a_seconds_schedule(site: Site, cli: CliRunner) -> None:
    site.replace_in_config('schedule: "0 7 * * mon"', 'schedule: "30 0 7 * * mon"')
    status = cli("-c", site.config, "status")
    assert status.code == 0, status.err
    line = next(line for line in status.out.splitlines() if "next fire:" in line)  # weekly's
    assert re.search(r"next fire: \d{4}-\d\d-\d\dT07:00:30\+0[12]:00 \(", line), line


def test_a_minute_schedule_is_shown_to_the_minute(site: Site, cli: CliRunner) -> None:
    status = cli("-c", site.config, "status")
    assert re.search(r"next fire: \d{4}-\d\d-\d\dT07:00\+0[12]:00 \(", status.out), status.out


def test_log_times_carry_their_zone() -> None:
    record = logging.LogRecord("digest", logging.INFO, __file__, 1, "weekly: sent", None, None)
    record.created = datetime(2017, 11, 20, 6, 0, 3, tzinfo=UTC).timestamp()
    winter = ZonedFormatter(ZoneInfo("Europe/Berlin")).format(record)
    assert winter == "2017-11-20T07:00:03+01:00 INFO weekly: sent"
    assert ZonedFormatter(UTC).format(record).startswith("2017-11-20T06:00:03+00:00 ")
