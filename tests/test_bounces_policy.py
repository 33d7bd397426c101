"""The suppression policy: hard suppresses, complaint unsubscribes, soft scores at most once a
day within a window, delayed never counts; issue rates pause above their limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from digest.bounces.config import BouncesConfig
from digest.bounces.events import COMPLAINT, DELAYED, HARD, SOFT
from digest.bounces.policy import (
    BOUNCED,
    COMPLAINED,
    IssueFeedback,
    Scored,
    decide,
    rate_limit_passed,
)

NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
CONFIG = BouncesConfig(soft_threshold=1.5, soft_window_days=30)


def test_hard_bounce_suppresses_and_complaint_unsubscribes() -> None:
    assert decide(HARD, NOW, [], CONFIG).new_status == BOUNCED
    assert decide(COMPLAINT, NOW, [], CONFIG).new_status == COMPLAINED


def test_delayed_is_never_counted() -> None:
    decision = decide(DELAYED, NOW, [Scored(NOW - timedelta(days=2), 0.5)] * 10, CONFIG)
    assert decision.score == 0 and decision.new_status is None


def test_soft_bounces_suppress_at_the_threshold_counting_once_a_day() -> None:
    history: list[Scored] = []
    at = NOW
    for day in range(3):
        same_day = decide(SOFT, at + timedelta(hours=2), [*history, Scored(at, 0.5)], CONFIG)
        assert same_day.score == 0 and same_day.new_status is None  # second one that day
        decision = decide(SOFT, at, history, CONFIG)
        assert decision.score == 0.5
        if day < 2:
            assert decision.new_status is None
        else:
            assert decision.new_status == BOUNCED  # 3 x 0.5 reaches 1.5
        history.append(Scored(at, decision.score))
        at += timedelta(days=1)


def test_soft_bounces_outside_the_window_are_forgotten() -> None:
    old = [Scored(NOW - timedelta(days=40 + i), 0.5) for i in range(5)]
    assert decide(SOFT, NOW, old, CONFIG).new_status is None


@given(st.lists(st.integers(min_value=0, max_value=24 * 60), max_size=40))
def test_soft_score_per_day_never_exceeds_one_bounce(minutes: list[int]) -> None:
    """Whatever arrives within one day adds at most one soft score."""
    history: list[Scored] = []
    for offset in sorted(minutes):
        at = NOW + timedelta(minutes=offset)
        decision = decide(SOFT, at, history, CONFIG)
        if decision.score:
            history.append(Scored(at, decision.score))
    assert sum(h.score for h in history) <= 2 * CONFIG.soft_score  # the day may span two starts


def test_rates_pause_above_the_limits_only_with_a_sample() -> None:
    config = BouncesConfig(min_sample=100)
    assert rate_limit_passed(IssueFeedback(sent=10, bounced=5, complained=0), config) is None
    assert rate_limit_passed(IssueFeedback(sent=1000, bounced=50, complained=3), config) is None
    reason = rate_limit_passed(IssueFeedback(sent=1000, bounced=51, complained=0), config)
    assert reason and reason.startswith("bounce rate 5.10%")
    reason = rate_limit_passed(IssueFeedback(sent=1000, bounced=0, complained=4), config)
    assert reason and reason.startswith("complaint rate 0.40%")
