"""The suppression policy, as the trusted list managers do it (Mailman's bounce scores):

- a hard bounce suppresses the address at once (status ``bounced``);
- a complaint unsubscribes at once (status ``complained``): never mail them again;
- a soft bounce scores ``soft_score`` (0.5), at most once a day; when the scores within
  ``soft_window_days`` reach ``soft_threshold`` the address is suppressed;
- a delayed-delivery notice is recorded, never counted.

Pure functions: the history and "now" are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.bounces.config import BouncesConfig
from digest.bounces.events import COMPLAINT, DELAYED, HARD, SOFT

BOUNCED, COMPLAINED = "bounced", "complained"
SOFT_SPACING = timedelta(days=1)


@dataclass(frozen=True)
class Scored:
    """A soft bounce counted earlier: when, and the score it added."""

    at: datetime
    score: float


@dataclass(frozen=True)
class Decision:
    score: float  # what this event adds to the address's soft score (0: not counted)
    new_status: str | None  # bounced | complained | None (status stays)
    reason: str


def decide(kind: str, now: datetime, history: Sequence[Scored], config: BouncesConfig) -> Decision:
    """What one event does to its subscriber, given the soft bounces counted before."""
    if kind == HARD:
        return Decision(1.0, BOUNCED, "hard bounce")
    if kind == COMPLAINT:
        return Decision(0.0, COMPLAINED, "complaint")
    if kind == DELAYED or kind != SOFT:
        return Decision(0.0, None, "delayed delivery: recorded, not counted")
    window_start = now - timedelta(days=config.soft_window_days)
    recent = [h for h in history if h.at > window_start and h.score > 0]
    if any(now - h.at < SOFT_SPACING for h in recent):
        return Decision(0.0, None, "soft bounce: already counted today")
    total = sum(h.score for h in recent) + config.soft_score
    if total >= config.soft_threshold:
        return Decision(
            config.soft_score,
            BOUNCED,
            f"soft bounces scored {total:g} within {config.soft_window_days} days",
        )
    return Decision(config.soft_score, None, f"soft bounce: score {total:g}")


# The note of an issue paused by its bounce or complaint rate starts with this: such an issue
# waits for staff ('digest send DIGEST' resumes it), never for the scheduler's retry.
FEEDBACK_PAUSE = "bounce/complaint limit: "


def paused_for_feedback(note: str | None) -> bool:
    return bool(note and note.startswith(FEEDBACK_PAUSE))


@dataclass(frozen=True)
class IssueFeedback:
    sent: int  # deliveries handed over
    bounced: int  # deliveries that bounced hard (soft bounces are the receiver's trouble)
    complained: int  # deliveries with a complaint


def rate_limit_passed(feedback: IssueFeedback, config: BouncesConfig) -> str | None:
    """Why the issue must pause, or None. Below ``min_sample`` sent messages a rate says
    little (one bounce in ten is 10 %), so it does not count yet."""
    if feedback.sent < config.min_sample or feedback.sent == 0:
        return None
    bounce_rate = feedback.bounced / feedback.sent
    complaint_rate = feedback.complained / feedback.sent
    if complaint_rate > config.max_complaint_rate:
        return (
            f"complaint rate {complaint_rate:.2%} ({feedback.complained} of {feedback.sent}) "
            f"is above {config.max_complaint_rate:.2%}"
        )
    if bounce_rate > config.max_bounce_rate:
        return (
            f"bounce rate {bounce_rate:.2%} ({feedback.bounced} of {feedback.sent}) "
            f"is above {config.max_bounce_rate:.2%}"
        )
    return None
