"""The send progress bar of ``digest send`` on a terminal: "sending ━━━━ 120/500 85 msg/s 0:00:04".

Silent when stderr is not a terminal. The total is the number of messages due, known once the
issue is confirmed; the rate is a whole number (one decimal below 10) and a dash until rich
has measured one, never "None" or sixteen digits.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def format_rate(speed: float | None) -> str:
    if speed is None:
        return "– msg/s"
    if speed < 10:
        return f"{speed:.1f} msg/s"
    return f"{speed:,.0f} msg/s"


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(format_rate(task.finished_speed or task.speed), style="progress.data.speed")


class SendProgress:
    """``expect(total)`` once the number of messages is known, ``advance`` per result."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console
        self.total: int | None = None
        self.bar: Progress | None = None
        self.task: Any = None

    @property
    def shown(self) -> bool:
        return self.console is not None or sys.stderr.isatty()

    def expect(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.update(self.task, total=total)

    def advance(self, status: str) -> None:
        if not self.shown:
            return
        if self.bar is None:
            self.bar = Progress(
                TextColumn("sending"),
                BarColumn(),
                MofNCompleteColumn(),
                RateColumn(),
                TimeRemainingColumn(),
                console=self.console or Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("send", total=self.total)
        self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
