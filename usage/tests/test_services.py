from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.audit import Actor
from core.exceptions import InsufficientCredits, InvalidOperation
from credits.models import CreditLedgerEntry, CreditSource, LedgerKind
from credits.selectors import credit_balance_get
from credits.services import credit_grant
from subscriptions.tests.factories import CustomerFactory
from usage.models import UsageEvent
from usage.services import usage_credits_for, usage_event_record
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
PAST = datetime(2025, 3, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(("credits_per_unit", "quantity", "credits"), [
    (None, Decimal(5), 0),
    (Decimal(0), Decimal(5), 0),
    (Decimal(1), Decimal(3), 3),
    (Decimal("0.5"), Decimal(3), 2),       # 1.5 rounds up: a fraction of a unit is never free
    (Decimal("2.5"), Decimal("0.1"), 1),
    (Decimal("0.0001"), Decimal(10000), 1),
])
def test_usage_credits_for_rounds_up(credits_per_unit, quantity, credits):
    assert usage_credits_for(meter=MeterFactory.build(credits_per_unit=credits_per_unit), quantity=quantity) == credits


def test_record_stores_the_event():
    customer, meter = CustomerFactory(), MeterFactory()

    record = usage_event_record(customer=customer, meter=meter, idempotency_key="e1", quantity=Decimal("2.5"),
                                occurred_at=PAST, properties={"user_id": "u1"})

    assert record.created and record.credits_debited == 0
    stored = UsageEvent.objects.get()
    assert (stored.quantity, stored.occurred_at, stored.properties) == (Decimal("2.5"), PAST, {"user_id": "u1"})


def test_record_replay_returns_the_stored_event_and_debits_nothing_more():
    customer, meter = CustomerFactory(), MeterFactory(credits_per_unit=Decimal(2))
    credit_grant(customer=customer, amount=10, source=CreditSource.PURCHASE, actor=ACTOR)
    first = usage_event_record(customer=customer, meter=meter, idempotency_key="e1", quantity=Decimal(3))

    again = usage_event_record(customer=customer, meter=meter, idempotency_key="e1", quantity=Decimal(3))

    assert first.created and first.credits_debited == 6
    assert not again.created and again.credits_debited == 0
    assert again.event.pk == first.event.pk
    assert UsageEvent.objects.count() == 1
    assert credit_balance_get(customer=customer) == 4
    debit = CreditLedgerEntry.objects.get(kind=LedgerKind.DEBIT)
    assert (debit.idempotency_key, debit.amount, debit.actor_label) == ("usage:e1", -6, "system:usage")


def test_an_event_the_customer_cannot_pay_for_is_not_stored():
    customer, meter = CustomerFactory(), MeterFactory(credits_per_unit=Decimal(1))
    credit_grant(customer=customer, amount=2, source=CreditSource.PURCHASE, actor=ACTOR)

    with pytest.raises(InsufficientCredits):
        usage_event_record(customer=customer, meter=meter, idempotency_key="e1", quantity=Decimal(3))

    assert not UsageEvent.objects.exists()
    assert credit_balance_get(customer=customer) == 2
    # The key is still free: the client may retry once it has credits.
    credit_grant(customer=customer, amount=5, source=CreditSource.PURCHASE, actor=ACTOR)
    assert usage_event_record(customer=customer, meter=meter, idempotency_key="e1", quantity=Decimal(3)).created


def test_a_past_event_debits_as_of_when_it_happened():
    customer, meter = CustomerFactory(), MeterFactory(credits_per_unit=Decimal(1))
    # Valid when the event happened, expired by now.
    credit_grant(customer=customer, amount=5, source=CreditSource.PROMOTION, actor=ACTOR,
                 effective_at=PAST - timedelta(days=1), expires_at=PAST + timedelta(days=1))

    record = usage_event_record(customer=customer, meter=meter, idempotency_key="late", quantity=Decimal(2),
                                occurred_at=PAST)

    assert record.credits_debited == 2
    assert credit_balance_get(customer=customer) == 3


def test_a_future_timestamp_debits_as_of_now():
    customer, meter = CustomerFactory(), MeterFactory(credits_per_unit=Decimal(1))
    credit_grant(customer=customer, amount=5, source=CreditSource.PURCHASE, actor=ACTOR)

    record = usage_event_record(customer=customer, meter=meter, idempotency_key="skewed", quantity=Decimal(1),
                                occurred_at=timezone.now() + timedelta(minutes=2))

    assert record.created and record.credits_debited == 1


@pytest.mark.parametrize(("fields", "code"), [
    ({"idempotency_key": ""}, "idempotency_key_required"),
    ({"quantity": Decimal("-1")}, "invalid_quantity"),
])
def test_record_refuses_bad_input(fields, code):
    values = dict(customer=CustomerFactory(), meter=MeterFactory(), idempotency_key="e1", quantity=Decimal(1))
    values.update(fields)

    with pytest.raises(InvalidOperation) as refused:
        usage_event_record(**values)

    assert refused.value.code == code
    assert not UsageEvent.objects.exists()


def test_record_refuses_an_inactive_meter():
    with pytest.raises(InvalidOperation) as refused:
        usage_event_record(customer=CustomerFactory(), meter=MeterFactory(is_active=False), idempotency_key="e1")

    assert refused.value.code == "meter_inactive"
