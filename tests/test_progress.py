"""The send progress bar (observation 10 of #10): a known total, a readable rate."""

from __future__ import annotations

import io
import re

from rich.console import Console

from digest.progress import SendProgress, format_rate


def rendered(progress: SendProgress) -> str:
    assert progress.bar is not None
    out = Console(file=io.StringIO(), width=100, color_system=None)
    out.print(progress.bar.make_tasks_table(progress.bar.tasks))
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def test_the_bar_shows_done_of_total_and_a_rounded_rate() -> None:
    progress = SendProgress(Console(file=io.StringIO(), force_terminal=True, width=100))
    progress.expect(3)
    progress.advance("sent")
    first = rendered(progress)
    assert "1/3" in first and "None" not in first and "?" not in first
    assert "– msg/s" in first  # no rate measured yet: a dash
    for _ in range(2):
        progress.advance("sent")
    done = rendered(progress)
    progress.close()
    assert "3/3" in done
    rate = re.search(r"([\d.,]+) msg/s", done)
    assert rate is not None and re.fullmatch(r"\d{1,3}(,\d{3})*|\d\.\d", rate.group(1))


def test_rates_are_rounded() -> None:
    assert format_rate(176.06852023241527) == "176 msg/s"
    assert format_rate(1705.2) == "1,705 msg/s"
    assert format_rate(3.14159) == "3.1 msg/s"
    assert format_rate(None) == "– msg/s"


def test_silent_when_not_a_terminal() -> None:
    progress = SendProgress()  # pytest captures stderr: not a terminal
    progress.advance("sent")
    assert progress.bar is None
