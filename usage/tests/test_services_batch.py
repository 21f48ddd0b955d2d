from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing_project.tests.threads import race
from core.audit import Actor
from core.exceptions import InsufficientCredits, InvalidOperation
from credits.models import CreditLedgerEntry
from credits.selectors import credit_balance_get
from credits.services import credit_grant
from subscriptions.tests.factories import CustomerFactory
from usage.models import UsageEvent
from usage.services import UsageEventInput, usage_events_record_batch
from usage.tests.factories import MeterFactory

ACTOR = Actor.system("test")


def _events(prefix: str, count: int, meter_code: str, quantity: Decimal = Decimal(1)) -> list[UsageEventInput]:
    return [UsageEventInput(meter_code=meter_code, idempotency_key=f"{prefix}-{i}", quantity=quantity,
                            properties={"i": i}) for i in range(count)]


@pytest.mark.django_db
def test_batch_stores_each_event_once_and_reports_duplicates_within_the_batch():
    customer, meter = CustomerFactory(), MeterFactory()
    events = [UsageEventInput(meter_code=meter.code, idempotency_key="a", quantity=Decimal("2.5")),
              UsageEventInput(meter_code=meter.code, idempotency_key="b"),
              UsageEventInput(meter_code=meter.code, idempotency_key="a", quantity=Decimal(9))]

    result = usage_events_record_batch(customer=customer, events=events)

    assert [(o.idempotency_key, o.status) for o in result.results] == [
        ("a", "created"), ("b", "created"), ("a", "duplicate")]
    assert result.results[0].id == result.results[2].id
    assert (result.created, result.duplicates) == (2, 1)
    stored = UsageEvent.objects.get(customer=customer, idempotency_key="a")
    assert stored.quantity == Decimal("2.5")  # the first occurrence wins
    assert UsageEvent.objects.filter(customer=customer).count() == 2


@pytest.mark.django_db
def test_partial_duplicates_across_batches_are_reported_with_the_stored_id():
    customer, meter = CustomerFactory(), MeterFactory()
    first = usage_events_record_batch(customer=customer, events=_events("k", 3, meter.code))
    again = usage_events_record_batch(customer=customer, events=_events("k", 5, meter.code))

    assert [o.status for o in again.results] == ["duplicate"] * 3 + ["created"] * 2
    assert [o.id for o in again.results[:3]] == [o.id for o in first.results]
    assert UsageEvent.objects.filter(customer=customer).count() == 5


@pytest.mark.django_db
def test_the_same_key_for_two_customers_is_two_events():
    meter = MeterFactory()
    one, two = CustomerFactory(), CustomerFactory()
    usage_events_record_batch(customer=one, events=_events("same", 2, meter.code))
    result = usage_events_record_batch(customer=two, events=_events("same", 2, meter.code))
    assert result.created == 2


@pytest.mark.django_db
def test_credits_are_debited_once_for_the_created_events_only():
    customer = CustomerFactory()
    meter = MeterFactory(credits_per_unit=Decimal("1.5"))
    credit_grant(customer=customer, amount=100, source="purchase", actor=ACTOR)
    usage_events_record_batch(customer=customer, events=_events("c", 2, meter.code, Decimal(3)))  # 2 x ceil(4.5)
    assert credit_balance_get(customer=customer) == 90

    result = usage_events_record_batch(customer=customer, events=_events("c", 3, meter.code, Decimal(3)))

    assert result.credits_debited == 5
    assert credit_balance_get(customer=customer) == 85
    assert CreditLedgerEntry.objects.filter(customer=customer, kind="debit").count() == 2


@pytest.mark.django_db
def test_not_enough_credits_stores_nothing_and_says_the_balance():
    customer = CustomerFactory()
    meter = MeterFactory(credits_per_unit=Decimal(10))
    credit_grant(customer=customer, amount=25, source="purchase", actor=ACTOR)

    with pytest.raises(InsufficientCredits) as raised:
        usage_events_record_batch(customer=customer, events=_events("x", 3, meter.code))

    assert raised.value.extra["balance"] == 25
    assert not UsageEvent.objects.filter(customer=customer).exists()
    assert credit_balance_get(customer=customer) == 25


@pytest.mark.django_db
def test_an_invalid_event_rejects_the_batch_with_errors_per_index():
    customer, meter = CustomerFactory(), MeterFactory()
    inactive = MeterFactory(is_active=False)
    events = [UsageEventInput(meter_code=meter.code, idempotency_key="ok"),
              UsageEventInput(meter_code="nope", idempotency_key="m"),
              UsageEventInput(meter_code=inactive.code, idempotency_key="i"),
              UsageEventInput(meter_code=meter.code, idempotency_key="f",
                              occurred_at=timezone.now() + timedelta(days=1))]

    with pytest.raises(InvalidOperation) as raised:
        usage_events_record_batch(customer=customer, events=events)

    errors = raised.value.extra["fields"]["events"]
    assert set(errors) == {"1", "2", "3"}
    assert "meter" in errors["1"] and "meter" in errors["2"] and "occurred_at" in errors["3"]
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_batches_are_bounded():
    customer, meter = CustomerFactory(), MeterFactory()
    with pytest.raises(InvalidOperation):
        usage_events_record_batch(customer=customer, events=[])
    with pytest.raises(InvalidOperation):
        usage_events_record_batch(customer=customer, events=_events("big", 1001, meter.code))


@pytest.mark.django_db
def test_a_full_batch_runs_a_constant_number_of_queries(django_assert_max_num_queries):
    customer = CustomerFactory()
    meter = MeterFactory(credits_per_unit=Decimal(1))
    credit_grant(customer=customer, amount=10_000, source="purchase", actor=ACTOR)
    usage_events_record_batch(customer=customer, events=_events("warm", 10, meter.code))

    with django_assert_max_num_queries(20) as small:
        usage_events_record_batch(customer=customer, events=_events("s", 10, meter.code))
    with django_assert_max_num_queries(20) as full:
        usage_events_record_batch(customer=customer, events=_events("f", 1000, meter.code))
    with django_assert_max_num_queries(20) as replayed:
        usage_events_record_batch(customer=customer, events=_events("f", 1000, meter.code))

    assert len(full.captured_queries) == len(small.captured_queries)
    inserts = [q for q in full.captured_queries if q["sql"].startswith('INSERT INTO "usage_usageevent"')]
    assert len(inserts) == 1
    assert UsageEvent.objects.filter(customer=customer).count() == 1020
    assert len(replayed.captured_queries) <= len(full.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_batches_store_and_debit_exactly_once():
    customer = CustomerFactory()
    meter = MeterFactory(credits_per_unit=Decimal(1))
    credit_grant(customer=customer, amount=10_000, source="purchase", actor=ACTOR)
    events = _events("race", 200, meter.code)
    outcome = race([lambda: usage_events_record_batch(customer=customer, events=events)] * 6)
    results, errors = outcome.results, outcome.errors

    assert errors == []
    assert sum(r.created for r in results) == 200
    assert sum(r.duplicates for r in results) == 5 * 200
    assert UsageEvent.objects.filter(customer=customer).count() == 200
    assert credit_balance_get(customer=customer) == 10_000 - 200
