"""Rollup increments held to the end of a block (core.increments.increments_deferred, the billing run's batch):
written once per key with the block's summed deltas, only when the block ends, and not at all when it fails;
the same figures as writing them at once. Also the day of the month `add_months` clamps to."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.increments import increments_deferred
from subscriptions.models import MrrMonth
from subscriptions.mrr_rollups import MONTH_FIGURES, mrr_month_add
from subscriptions.periods import add_months

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


def _figures(mrr: int) -> list[int]:
    return [mrr] + [0] * (len(MONTH_FIGURES) - 1)


@pytest.mark.django_db
def test_held_increments_are_summed_per_key_and_written_when_the_block_ends():
    with CaptureQueriesContext(connection) as context, increments_deferred():
        mrr_month_add(deltas={("USD", JAN): _figures(100)})
        with increments_deferred():  # an inner block joins the outer one
            mrr_month_add(deltas={("USD", JAN): _figures(50), ("USD", FEB): _figures(7)})
        assert not MrrMonth.objects.exists()
        held = len(context)
    assert held == 1  # the read above; nothing was written yet
    assert len(context) == held + 1  # one upsert for both keys
    assert dict(MrrMonth.objects.values_list("month", "mrr")) == {JAN: 150, FEB: 7}


@pytest.mark.django_db
def test_a_block_that_fails_writes_nothing_it_held_and_outside_a_block_increments_are_written_at_once():
    with pytest.raises(RuntimeError), increments_deferred():
        mrr_month_add(deltas={("USD", JAN): _figures(100)})
        raise RuntimeError
    assert not MrrMonth.objects.exists()
    mrr_month_add(deltas={("USD", JAN): _figures(30)})
    assert MrrMonth.objects.get().mrr == 30


@pytest.mark.parametrize(("anchor", "months", "expected"), [
    (datetime(2026, 1, 31, 9, tzinfo=UTC), 1, datetime(2026, 2, 28, 9, tzinfo=UTC)),
    (datetime(2028, 1, 31, 9, tzinfo=UTC), 1, datetime(2028, 2, 29, 9, tzinfo=UTC)),
    (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 4, 30, tzinfo=UTC)),
    (datetime(2026, 1, 30, tzinfo=UTC), 11, datetime(2026, 12, 30, tzinfo=UTC)),
    (datetime(2026, 5, 29, tzinfo=UTC), -3, datetime(2026, 2, 28, tzinfo=UTC)),
    (datetime(2026, 1, 28, tzinfo=UTC), 13, datetime(2027, 2, 28, tzinfo=UTC)),
])
def test_add_months_clamps_to_the_last_day_of_the_month(anchor, months, expected):
    assert add_months(anchor, months) == expected
