"""`seed --demo` customers whose subscription a merchant-of-record rail bills (Lemon Squeezy): built through
the rail's own mirror (`mirrored_subscription_seed`), never by calling the provider."""

from datetime import datetime

from django.db import transaction

from core.audit import Actor
from payments.providers import Capability, providers_installed
from payments.seeding.catalog import Catalog
from subscriptions.models import Customer
from subscriptions.periods import add_months
from subscriptions.services import customer_create


def demo_mirrored_username(*, rail_code: str, index: int) -> str:
    return f"demo-{rail_code}-{index:02d}"


def demo_mirrored_customers_build(*, count: int, as_of: datetime, catalog: Catalog, staff: Actor) -> int:
    """Customers 1..`count` of every installed merchant-of-record rail, each on a paid monthly plan started
    `index + 1` months before `as_of`; returns how many were created (existing ones are left alone)."""
    plans = [plan for plan in catalog.plans.values() if plan.amount > 0 and plan.interval == "month"]
    created = 0
    for rail in providers_installed():
        if Capability.MERCHANT_OF_RECORD not in rail.capabilities or not plans:
            continue
        for index in range(1, count + 1):
            username = demo_mirrored_username(rail_code=rail.code, index=index)
            if Customer.objects.filter(external_id=username).exists():
                continue
            plan = plans[index % len(plans)]
            with transaction.atomic():
                customer = customer_create(name=f"{rail.code.title()} customer {index}", currency=plan.currency,
                                           email=f"{username}@example.com", external_id=username,
                                           metadata={"demo": True, "story": "merchant of record"})
                rail.mirrored_subscription_seed(customer=customer, plan=plan, as_of=as_of, actor=staff,
                                                started_at=add_months(as_of, -(index + 1)))
            created += 1
    return created
