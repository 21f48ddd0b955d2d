from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.models import BillingInterval
from subscriptions.periods import add_months, months_per_period, period_boundary, period_containing


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("anchor", "months", "expected"), [
    (utc(2025, 1, 31, 9, 30), 1, utc(2025, 2, 28, 9, 30)),
    (utc(2024, 1, 31, 9, 30), 1, utc(2024, 2, 29, 9, 30)),   # leap year
    (utc(2025, 1, 31), 2, utc(2025, 3, 31)),                  # counted from the anchor, not from Feb 28
    (utc(2025, 1, 31), 3, utc(2025, 4, 30)),
    (utc(2025, 12, 15), 1, utc(2026, 1, 15)),                 # across the year
    (utc(2025, 11, 30), 3, utc(2026, 2, 28)),
    (utc(2025, 3, 31), -1, utc(2025, 2, 28)),                 # backwards, as the demo history uses it
    (utc(2025, 5, 10), 0, utc(2025, 5, 10)),
])
def test_add_months_clamps_to_the_last_day_of_the_month(anchor, months, expected):
    assert add_months(anchor, months) == expected


@pytest.mark.parametrize(("interval", "interval_count", "months"), [
    (BillingInterval.MONTH, 1, 1),
    (BillingInterval.MONTH, 3, 3),
    (BillingInterval.MONTH, 120, 120),
    (BillingInterval.YEAR, 1, 12),
    (BillingInterval.YEAR, 2, 24),
    (BillingInterval.YEAR, 10, 120),
])
def test_months_per_period_turns_an_interval_into_calendar_months(interval, interval_count, months):
    assert months_per_period(interval=interval, interval_count=interval_count) == months


@pytest.mark.parametrize(("interval", "interval_count"), [
    (BillingInterval.MONTH, 1), (BillingInterval.MONTH, 7), (BillingInterval.YEAR, 1), (BillingInterval.YEAR, 3),
])
def test_a_period_boundary_is_months_per_period_months_after_the_last(interval, interval_count):
    anchor = utc(2024, 1, 31, 8)
    months = months_per_period(interval=interval, interval_count=interval_count)

    for n in range(4):
        assert period_boundary(anchor=anchor, interval=interval, interval_count=interval_count,
                               periods=n) == add_months(anchor, months * n)


def test_monthly_boundaries_of_a_jan_31_anchor_return_to_the_31st():
    anchor = utc(2025, 1, 31, 12)
    boundaries = [period_boundary(anchor=anchor, interval=BillingInterval.MONTH, interval_count=1, periods=n)
                  for n in range(1, 5)]

    assert [b.date().isoformat() for b in boundaries] == ["2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31"]


def test_yearly_boundaries_of_a_leap_day_anchor():
    yearly = dict(anchor=utc(2024, 2, 29), interval=BillingInterval.YEAR, interval_count=1)

    assert period_boundary(**yearly, periods=1) == utc(2025, 2, 28)
    assert period_boundary(**yearly, periods=4) == utc(2028, 2, 29)


def test_interval_count_multiplies_the_interval():
    quarterly = dict(anchor=utc(2025, 1, 15), interval=BillingInterval.MONTH, interval_count=3)
    biennial = dict(anchor=utc(2025, 1, 15), interval=BillingInterval.YEAR, interval_count=2)

    assert period_boundary(**quarterly, periods=1) == utc(2025, 4, 15)
    assert period_boundary(**quarterly, periods=2) == utc(2025, 7, 15)
    assert period_boundary(**biennial, periods=1) == utc(2027, 1, 15)


def test_period_containing_is_half_open():
    anchor = utc(2025, 1, 31, 12)
    month = dict(anchor=anchor, interval=BillingInterval.MONTH, interval_count=1)

    assert period_containing(**month, instant=anchor) == (anchor, utc(2025, 2, 28, 12))
    # The end instant belongs to the next period: [start, end).
    assert period_containing(**month, instant=utc(2025, 2, 28, 12)) == (utc(2025, 2, 28, 12), utc(2025, 3, 31, 12))
    assert period_containing(**month, instant=utc(2025, 2, 28, 11, 59, 59)) == (anchor, utc(2025, 2, 28, 12))
    assert period_containing(**month, instant=utc(2025, 3, 15)) == (utc(2025, 2, 28, 12), utc(2025, 3, 31, 12))


def test_period_containing_a_time_of_day_before_the_anchor_time():
    anchor = utc(2025, 1, 15, 12)
    month = dict(anchor=anchor, interval=BillingInterval.MONTH, interval_count=1)

    assert period_containing(**month, instant=utc(2025, 2, 15, 11)) == (anchor, utc(2025, 2, 15, 12))


def test_period_containing_far_from_the_anchor():
    anchor = utc(2020, 2, 29)
    year = dict(anchor=anchor, interval=BillingInterval.YEAR, interval_count=1)

    assert period_containing(**year, instant=utc(2023, 6, 1)) == (utc(2023, 2, 28), utc(2024, 2, 29))
    assert period_containing(**year, instant=utc(2024, 2, 29)) == (utc(2024, 2, 29), utc(2025, 2, 28))


@settings(deadline=None)  # a loaded CI machine must not turn a slow example into a failure
@given(
    anchor=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)),
    offset=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)),
    interval=st.sampled_from([BillingInterval.MONTH, BillingInterval.YEAR]),
    interval_count=st.integers(min_value=1, max_value=3),
)
def test_period_containing_always_contains_the_instant_and_starts_on_a_boundary(anchor, offset, interval,
                                                                                 interval_count):
    instant = anchor + offset

    start, end = period_containing(anchor=anchor, interval=interval, interval_count=interval_count, instant=instant)

    assert start <= instant < end
    boundaries = {period_boundary(anchor=anchor, interval=interval, interval_count=interval_count, periods=n)
                  for n in range(125)}
    assert start in boundaries
    assert end in boundaries
    # Consecutive: nothing else fits between start and end.
    assert not any(start < b < end for b in boundaries)
