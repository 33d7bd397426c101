"""Source health: fetch every source now and say how each one is doing.

``digest sources check`` prints :func:`health_table`; ``digest status`` and the dashboard
read the :class:`~digest.models.SourceState` the store keeps from every collection.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from digest.catalogue import Translator, default_translator
from digest.collect import collect, newest_first
from digest.config import LoadedConfig
from digest.models import Problem, SourceState
from digest.sources import build_sources


@dataclass(frozen=True)
class SourceReport:
    name: str
    kind: str  # folder, feed, page
    target: str  # the folder's path or the URL
    state: SourceState  # after this check, merged with what the store knew
    problems: tuple[Problem, ...]
    newest: datetime | None
    seconds: float

    @property
    def status(self) -> str:
        if not self.state.ok:
            return "failed"
        return "warning" if self.problems else "ok"


def check_sources(
    loaded: LoadedConfig, now: datetime, known: Mapping[str, SourceState] | None = None
) -> list[SourceReport]:
    """Fetch every configured source now, unconditionally (no ETag: a real check), one after
    the other; ``known`` (the store's states) supplies the history a failure is added to."""
    entries = {entry.source_name: entry for entry in loaded.config.sources}
    reports: list[SourceReport] = []
    for source in build_sources(loaded):
        entry = entries[source.name]
        started = time.perf_counter()
        result = collect([source], now)
        seconds = time.perf_counter() - started
        fresh = result.states[source.name]
        before = (known or {}).get(source.name) or SourceState()
        if fresh.ok:
            state = before.succeeded(now, fresh.item_count, fresh.etag, fresh.last_modified)
        else:
            state = before.failed(now, fresh.last_error or "failed")
        items = newest_first(result.items)
        reports.append(
            SourceReport(
                name=source.name,
                kind=entry.kind,
                target=entry.target,
                state=state,
                problems=tuple(p for p in result.problems if fresh.ok or p.severity != "error"),
                newest=items[0].published_at if items else None,
                seconds=seconds,
            )
        )
    return reports


_STYLE = {"ok": "green", "warning": "yellow", "failed": "bold red"}


def health_table(reports: Sequence[SourceReport], timezone: ZoneInfo) -> Table:
    table = Table(title="Sources", title_justify="left", expand=False)
    table.add_column("source", overflow="fold", min_width=12)
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("items", justify="right", no_wrap=True)
    table.add_column("newest", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("details", overflow="fold", ratio=1)
    for report in reports:
        state = report.state
        if not state.ok:
            details = state.last_error or ""
            if state.failures > 1 or state.last_success_at is not None:
                last = _when(state.last_success_at, timezone) if state.last_success_at else "never"
                details += f" (failed {state.failures}× in a row; last success: {last})"
        elif report.problems:
            details = report.problems[0].message
            if len(report.problems) > 1:
                details += f" (+{len(report.problems) - 1} more)"
        else:
            details = report.target
        table.add_row(
            Text(report.name),
            report.kind,
            Text(report.status, style=_STYLE[report.status]),
            str(state.item_count) if state.ok else "–",
            _when(report.newest, timezone) if report.newest else "–",
            f"{report.seconds * 1000:.0f} ms",
            Text(details),
        )
    return table


def _when(moment: datetime, timezone: ZoneInfo) -> str:
    return moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M")


def describe_state(state: SourceState, timezone: ZoneInfo, t: Translator | None = None) -> str:
    """One line for ``digest status`` and the dashboard: how the latest collection of a source
    went, in ``t``'s language (English without)."""
    t = t or default_translator()
    never = t.pgettext("last success", "never")
    last = _when(state.last_success_at, timezone) if state.last_success_at else never
    if state.ok:
        return t.ngettext(
            "ok, %(num)s item, last success %(last)s",
            "ok, %(num)s items, last success %(last)s",
            state.item_count,
            last=last,
        )
    return t.gettext(
        "FAILED %(failures)s× in a row: %(error)s; last success: %(last)s",
        failures=state.failures,
        error=state.last_error,
        last=last,
    )
