"""The reporting period: a half-open UTC range [start, end), cut into calendar months when a report
goes month by month."""

from dataclasses import dataclass
from datetime import UTC, datetime

from subscriptions.periods import add_months


@dataclass(frozen=True)
class ReportRange:
    start: datetime
    end: datetime
    # ISO 4217 code, or None for every currency (amounts are never converted: one row per currency).
    currency: str | None = None


def month_start(instant: datetime) -> datetime:
    """The first instant of the UTC calendar month holding `instant`."""
    instant = instant.astimezone(UTC)
    return instant.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_windows(*, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at each UTC month boundary: the first and last windows may be partial months."""
    windows = []
    cursor = start
    while cursor < end:
        boundary = add_months(month_start(cursor), 1)
        windows.append((cursor, min(boundary, end)))
        cursor = boundary
    return windows
