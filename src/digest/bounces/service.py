"""The three intakes as library calls the CLI, the scheduler and the web app share: reports
from paths, an IMAP poll, one webhook request. Each records through one
:class:`FeedbackRecorder` and returns its :class:`IntakeResult`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from digest.bounces.config import BouncesConfig
from digest.bounces.events import BounceError
from digest.bounces.hooks import HookRequest, Provider
from digest.bounces.imap import poll
from digest.bounces.intake import Report
from digest.bounces.parse import parse_report
from digest.bounces.record import FeedbackLedger, FeedbackRecorder, IntakeResult
from digest.errors import DigestError

log = logging.getLogger("digest.bounces")


def take_reports(recorder: FeedbackRecorder, reports: Iterable[Report]) -> IntakeResult:
    for report in reports:
        recorder.report(report.data, report.origin, parse_report(report.data))
    return recorder.result


def fetch_imap(
    ledger: FeedbackLedger,
    config: BouncesConfig,
    clock: Callable[[], datetime],
    notify: Callable[[str], None] | None = None,
) -> IntakeResult:
    if config.imap is None:
        raise BounceError("bounces.imap is not configured (host, username, password, folder)")
    recorder = FeedbackRecorder(ledger, config, clock, notify)
    poll(
        config.imap,
        lambda report: recorder.report(report.data, report.origin, parse_report(report.data)),
    )
    return recorder.result


def poll_for_run(
    ledger: FeedbackLedger, config: BouncesConfig, clock: Callable[[], datetime]
) -> None:
    """One IMAP poll of ``digest run``: a failure is logged, never the end of the process."""
    try:
        result = fetch_imap(ledger, config, clock)
    except DigestError as exc:
        log.error("bounces: %s", exc)
        return
    except Exception:  # a database hiccup: try again at the next poll
        log.exception("bounces: unexpected error; polling again later")
        return
    if result.reports:
        log.info("bounces: %s", result.summary())


def take_webhook(
    ledger: FeedbackLedger,
    config: BouncesConfig,
    name: str,
    provider: Provider,
    request: HookRequest,
    clock: Callable[[], datetime],
    notify: Callable[[str], None] | None = None,
) -> IntakeResult:
    """Verify and record one provider request (raises ``WebhookRefused``)."""
    events = provider.events(request, clock())
    recorder = FeedbackRecorder(ledger, config, clock, notify)
    recorder.report(request.body, f"webhook:{name}", events)
    return recorder.result
