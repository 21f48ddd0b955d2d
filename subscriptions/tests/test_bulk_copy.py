"""core.bulk with a real table (core's own tests may not import an app): COPY's timestamps, reserved ids."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from core.bulk import ids_reserve, rows_copy
from subscriptions.models import SubscriptionFeeSpan

pytestmark = pytest.mark.django_db


def test_copied_timestamps_are_the_same_instants_repeated_or_not_whatever_their_offset():
    shared = datetime(2026, 2, 28, 12, 0, 0, 123456, tzinfo=UTC)
    india = datetime(2026, 3, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    rows = [(k, 1, "USD", shared, shared + timedelta(days=k), Decimal("2000"), 1) for k in range(3, 6)]
    rows.append((2, 2, "USD", india, shared, Decimal("1"), 1))
    rows_copy(model=SubscriptionFeeSpan, fields=("subscription", "customer", "currency", "starts_at", "ends_at",
                                                 "unit_amount", "period_months"), rows=iter(rows))

    stored = list(SubscriptionFeeSpan.objects.order_by("id").values_list("starts_at", "ends_at"))
    assert stored == [(row[3], row[4]) for row in rows]
    assert stored[-1][0] == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def test_reserved_ids_are_fresh_ascending_and_never_handed_out_again(django_assert_num_queries):
    with django_assert_num_queries(1):
        reserved = ids_reserve(model=SubscriptionFeeSpan, count=5)
    rows_copy(model=SubscriptionFeeSpan, fields=("subscription", "customer", "currency", "starts_at", "ends_at",
                                                 "unit_amount", "period_months"),
              rows=[(7, 1, "USD", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), 1, 1)])

    assert reserved == list(range(reserved[0], reserved[0] + 5))
    assert SubscriptionFeeSpan.objects.get().pk > reserved[-1]
    assert ids_reserve(model=SubscriptionFeeSpan, count=0) == []
