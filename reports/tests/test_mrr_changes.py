"""`reports.selectors.mrr_changes.mrr_partial_figures` against a per-customer reference written here: for
each customer with change points in (a, b], its MRR at a is its first row's `before` and at b its last
row's `after`, classified by `mrr_movement_classify`; an instant's figures are the rows' plain sums. The
rows are random chains (several changes per customer inside one window, back and forth through 0, changes
of coverage alone, two currencies), so the selector's sums over d and p stand for the first and last rows
they never look up, and an instant read with its window gives what it gives read apart."""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from reports.selectors.mrr_changes import InstantChange, mrr_partial_figures
from reports.selectors.periods import month_start
from subscriptions.models import CustomerFirstFee, CustomerMrrChange
from subscriptions.mrr_rollups import MOVEMENTS, mrr_movement_classify
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
BASE = datetime(2027, 1, 1, tzinfo=UTC)


def _chains(rng: random.Random, customers: int) -> list[CustomerMrrChange]:
    rows = []
    for _ in range(customers):
        customer = CustomerFactory(user=None)
        for currency in rng.sample(["USD", "EUR"], rng.randrange(1, 3)):
            value, covered, at = 0, False, BASE + timedelta(hours=rng.randrange(48))
            for _ in range(rng.randrange(0, 8)):
                at += timedelta(days=rng.choice([0, 1, 3, 9, 20]), seconds=rng.randrange(1, 86400))
                after = rng.choice([0, 0, 500, 1000, 2500, 2501, value])
                covered_after = after > 0 or rng.random() < 0.4
                if (after, covered_after) != (value, covered):
                    rows.append(CustomerMrrChange(customer=customer, currency=currency, changed_at=at,
                                                  mrr_before=value, mrr_after=after, covered_before=covered,
                                                  covered_after=covered_after))
                    value, covered = after, covered_after
        if rng.random() < 0.7:
            CustomerFirstFee.objects.create(customer=customer,
                                            first_paid_at=BASE + timedelta(days=rng.randrange(-30, 90)))
    return CustomerMrrChange.objects.bulk_create(rows)


def _reference(rows, first_paid, *, start, end, currency):
    inside = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.changed_at):
        if start < row.changed_at <= end and currency in (None, row.currency):
            inside[(row.customer_id, row.currency)].append(row)
    instant: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    moved: dict[str, list[int]] = defaultdict(lambda: [0] * (len(MOVEMENTS) + 1))
    for (customer, code), chain in inside.items():
        for row in chain:
            figures = instant[code]
            figures[0] += row.mrr_after - row.mrr_before
            figures[1] += (row.mrr_after > 0) - (row.mrr_before > 0)
            figures[2] += row.covered_after - row.covered_before
        before, after = chain[0].mrr_before, chain[-1].mrr_after
        paid = first_paid.get(customer)
        kind = mrr_movement_classify(before, after, paid_earlier=paid is not None and paid < start)
        if kind:
            moved[code][MOVEMENTS.index(kind)] += after - before
            moved[code][-1] += kind == "churned"
    return ({code: InstantChange(*f) for code, f in instant.items() if any(f)},
            {code: f for code, f in moved.items() if any(f)})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_partial_figures_are_the_first_and_last_rows_of_each_customer(seed):
    rng = random.Random(seed)
    rows = _chains(rng, 60)
    first_paid = dict(CustomerFirstFee.objects.values_list("customer_id", "first_paid_at"))
    for _ in range(25):
        a = BASE + timedelta(days=rng.randrange(0, 80), seconds=rng.choice([0, rng.randrange(86400)]))
        b = a + timedelta(days=rng.randrange(1, 50), seconds=rng.randrange(86400))
        # A window from b's month start to b comes with the instant b (read once), the others apart.
        windows = sorted({(a, b), (month_start(b), b)} - {(b, b)})
        instants = [(month_start(at), at) for at in (a, b)]
        for currency in (None, "EUR"):
            figures = mrr_partial_figures(instants=instants, windows=windows, currency=currency)
            for month, at in instants:
                expected, _ = _reference(rows, first_paid, start=month, end=at, currency=currency)
                got = {code: change for (instant, code), change in figures.instants.items()
                       if instant == at and change != InstantChange()}
                assert got == expected, (month, at, currency)
            for start, end in windows:
                _, expected = _reference(rows, first_paid, start=start, end=end, currency=currency)
                got = {code: [*moved.movements.values(), moved.customers_churned]
                       for (s, e, code), moved in figures.windows.items() if (s, e) == (start, end)}
                assert {code: f for code, f in got.items() if any(f)} == expected, (start, end, currency)
