"""Billing period arithmetic. Periods are [start, end) in UTC, counted from the cycle anchor."""

import calendar
from datetime import datetime

from subscriptions.models import BillingInterval

# The plain string: comparing with the enum member goes through Enum's slower equality, per renewal.
_YEAR = BillingInterval.YEAR.value
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` plus whole months, clamped to the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    month_index = anchor.month - 1 + months
    year = anchor.year + month_index // 12
    month = month_index % 12 + 1
    day = anchor.day
    # calendar.monthrange also works out the weekday: a third of this function's time, and the billing run
    # and the MRR rollups call it several times per subscription.
    if day > 28:
        day = min(day, 29 if month == 2 and calendar.isleap(year) else _MONTH_DAYS[month - 1])
    return anchor.replace(year=year, month=month, day=day)


def months_per_period(*, interval: str, interval_count: int) -> int:
    """How many calendar months one billing period spans: the one place an interval becomes months."""
    months_per_interval = 12 if interval == _YEAR else 1
    return months_per_interval * interval_count


def period_boundary(*, anchor: datetime, interval: str, interval_count: int, periods: int) -> datetime:
    """The instant `periods` billing periods after the anchor."""
    return add_months(anchor, months_per_period(interval=interval, interval_count=interval_count) * periods)


def period_containing(*, anchor: datetime, interval: str, interval_count: int,
                      instant: datetime) -> tuple[datetime, datetime]:
    """The [start, end) period, counted from the anchor, that contains `instant` (>= anchor)."""
    period_months = months_per_period(interval=interval, interval_count=interval_count)
    elapsed_months = (instant.year - anchor.year) * 12 + (instant.month - anchor.month)
    index = max(elapsed_months // period_months - 1, 0)
    while True:
        end = period_boundary(anchor=anchor, interval=interval, interval_count=interval_count, periods=index + 1)
        if end > instant:
            start = period_boundary(anchor=anchor, interval=interval, interval_count=interval_count, periods=index)
            return start, end
        index += 1
