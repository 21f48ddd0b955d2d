"""Writes of metered usage. An event is stored once per (customer, idempotency key); a meter with a
credit price debits the customer's credits in the same transaction, so both happen or neither."""

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing_project.audit import Actor
from billing_project.exceptions import InvalidOperation
from credits.services import credit_debit
from subscriptions.models import Customer
from usage.models import Meter, UsageEvent


@dataclass(frozen=True)
class UsageRecord:
    event: UsageEvent
    # False when the idempotency key was seen before: the stored event is returned, nothing is debited.
    created: bool
    credits_debited: int = 0


def usage_credits_for(*, meter: Meter, quantity: Decimal) -> int:
    """Credits an event costs. Rounded up: a fraction of a metered unit is never free."""
    if not meter.credits_per_unit:
        return 0
    return math.ceil(Decimal(quantity) * meter.credits_per_unit)


@transaction.atomic
def usage_event_record(*, customer: Customer, meter: Meter, idempotency_key: str, quantity: Decimal = Decimal(1),
                       occurred_at: datetime | None = None, properties: dict | None = None,
                       actor: Actor | None = None) -> UsageRecord:
    if not idempotency_key:
        raise InvalidOperation("A usage event needs an idempotency key.", code="idempotency_key_required")
    if Decimal(quantity) < 0:
        raise InvalidOperation("Usage quantity cannot be negative.", code="invalid_quantity")
    if not meter.is_active:
        raise InvalidOperation(f"Meter {meter.code} is not active.", code="meter_inactive")
    event = UsageEvent(customer=customer, meter=meter, quantity=quantity, idempotency_key=idempotency_key,
                       occurred_at=occurred_at or timezone.now(), properties=properties or {})
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        existing = UsageEvent.objects.get(customer=customer, idempotency_key=idempotency_key)
        return UsageRecord(event=existing, created=False)
    credits = usage_credits_for(meter=meter, quantity=event.quantity)
    if credits:
        credit_debit(customer=customer, amount=credits, actor=actor or Actor.system("usage"),
                     reason=f"{meter.code} x {event.quantity}", idempotency_key=f"usage:{idempotency_key}",
                     now=event.occurred_at if event.occurred_at <= timezone.now() else None)
    return UsageRecord(event=event, created=True, credits_debited=credits)
