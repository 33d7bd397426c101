"""The names of issue and delivery states and of findings' severities as staff read them, in the
site's language: the dashboard, job lines, send summaries, ``digest check``. The store keeps the English identifiers (``done``,
``failed_temp``); only what is shown is translated."""

from __future__ import annotations

from collections.abc import Mapping

from digest.catalogue import Translator
from digest.store import (
    FAILED_PERM,
    FAILED_TEMP,
    IN_DOUBT,
    ISSUE_DONE,
    ISSUE_EMPTY,
    ISSUE_PAUSED,
    ISSUE_SENDING,
    ISSUE_SKIPPED,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
)


def issue_status(t: Translator, status: str) -> str:
    """``done`` -> "abgeschlossen": an issue's state as a word."""
    names = {
        ISSUE_SENDING: t.pgettext("issue status", "sending"),
        ISSUE_PAUSED: t.pgettext("issue status", "paused"),
        ISSUE_DONE: t.pgettext("issue status", "done"),
        ISSUE_EMPTY: t.pgettext("issue status", "empty"),
        ISSUE_SKIPPED: t.pgettext("issue status", "skipped"),
    }
    return names.get(status, status)


def delivery_count(t: Translator, state: str, count: int) -> str:
    """``("sent", 2)`` -> "2 gesendet": a number of deliveries in one state."""
    if state == SENT:
        return t.ngettext("%(num)s sent", "%(num)s sent", count)
    if state == PENDING:
        return t.ngettext("%(num)s pending", "%(num)s pending", count)
    if state == SENDING:
        return t.ngettext("%(num)s sending", "%(num)s sending", count)
    if state == FAILED_TEMP:
        return t.ngettext("%(num)s deferred", "%(num)s deferred", count)
    if state == FAILED_PERM:
        return t.ngettext("%(num)s failed", "%(num)s failed", count)
    if state == IN_DOUBT:
        return t.ngettext("%(num)s in doubt", "%(num)s in doubt", count)
    if state == SKIPPED:
        return t.ngettext("%(num)s skipped", "%(num)s skipped", count)
    return f"{count} {state}"


def delivery_summary(t: Translator, counts: Mapping[str, int]) -> str:
    """ "3 sent, 1 in doubt": the states with rows, in ledger order; "" for none."""
    return ", ".join(delivery_count(t, state, count) for state, count in counts.items() if count)


def report_summary(t: Translator, counts: Mapping[str, int]) -> str:
    """The line after a send (CLI, log, dashboard): every outcome named, zeros included."""
    states = (SENT, FAILED_TEMP, FAILED_PERM, IN_DOUBT, SKIPPED, PENDING)
    return ", ".join(delivery_count(t, state, counts[state]) for state in states)


def severity(t: Translator, level: str) -> str:
    """A finding's ``error`` / ``warning`` as a word (the preview; the CLI keeps its tags)."""
    names = {
        "error": t.pgettext("finding", "error"),
        "warning": t.pgettext("finding", "warning"),
    }
    return names.get(level, level)
