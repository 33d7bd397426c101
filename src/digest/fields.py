"""Building blocks of the config schema that the modules below :mod:`digest.config` use to
declare their own settings (filters, source kinds): the strict model base and durations."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _parse_duration(value: Any) -> Any:
    """``30d``, ``12h``, ``2w``, ``90m`` (pydantic's own forms, seconds or ISO, also work)."""
    if isinstance(value, str) and not value.strip().upper().startswith("P"):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"duration {value!r} not understood (use e.g. 30d, 12h, 2w)")
        return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]
