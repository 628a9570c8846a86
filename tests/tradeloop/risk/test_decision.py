"""RiskDecision.merge: priority first, then the tighter level."""

from __future__ import annotations

from tradeloop.risk import RiskDecision


def test_merge_equal_priority_stops_takes_the_tighter_one() -> None:
    plan = RiskDecision.merge(
        [RiskDecision(stop_price=95.0, reason="a"), RiskDecision(stop_price=97.0, reason="b")],
        long=True,
    )
    assert (plan.stop_price, plan.stop_reason) == (97.0, "b")  # closer to price for a long
    short = RiskDecision.merge(
        [RiskDecision(stop_price=105.0, reason="a"), RiskDecision(stop_price=103.0, reason="b")],
        long=False,
    )
    assert (short.stop_price, short.stop_reason) == (103.0, "b")


def test_merge_higher_priority_stop_wins_even_if_looser() -> None:
    plan = RiskDecision.merge(
        [
            RiskDecision(stop_price=95.0, reason="loose", priority=200),
            RiskDecision(stop_price=99.0, reason="tight", priority=100),
        ],
        long=True,
    )
    assert (plan.stop_price, plan.stop_reason) == (95.0, "loose")


def test_merge_targets_take_the_nearer_one_and_exit_now_keeps_its_reason() -> None:
    plan = RiskDecision.merge(
        [
            RiskDecision(take_profit_price=120.0, reason="far"),
            RiskDecision(take_profit_price=110.0, reason="near"),
            RiskDecision(exit_now=True, reason="time_exit", priority=50),
            RiskDecision.hold(),
        ],
        long=True,
    )
    assert (plan.take_profit_price, plan.take_profit_reason) == (110.0, "near")
    assert (plan.exit_reason, plan.exit_priority) == ("time_exit", 50)
    assert plan.stop_price is None


def test_merge_of_nothing_is_a_plan_to_hold() -> None:
    plan = RiskDecision.merge([], long=True)
    assert plan.exit_reason is None
    assert plan.stop_price is None
    assert plan.take_profit_price is None
