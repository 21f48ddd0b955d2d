"""Arabic-speaking demo customers: businesses in Yemen billed in Yemeni rials (YER) and in Saudi Arabia
billed in Saudi riyals (SAR), with Arabic names beside the Latin ones and Arabic as their preferred
language, so the demo shows right-to-left invoices and emails, Arabic digits and other minor units.

Each currency gets its own monthly plans (a customer is billed in one currency, and a plan has one
price): `basic-yer`, `pro-sar` ... with the Arabic plan names. The customers' histories are the demo's
own stories (payments.seeding.demo), told with that currency's plans. Found by external id, so a second
seed creates nothing.
"""

import random
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from core.audit import Actor
from credits.services import credit_grants_expire
from payments.seeding.activity import usage_bulk
from payments.seeding.catalog import Catalog, major_to_minor
from payments.seeding.data import ARABIC_DEMO_CUSTOMERS, PLANS, REGIONAL_MONTHLY_PRICES, ArabicDemoCustomer
from payments.seeding.demo import DEMO_RANDOM_SEED, demo_story_tell
from payments.seeding.story import Story, plan_tier
from subscriptions.models import BillingInterval, Customer, Plan
from subscriptions.services import customer_create

# Story indexes far above the numbered demo customers (at most 1,000): the stories' fake provider ids and
# references are made from them and must not collide.
_STORY_INDEX_BASE = 10_000


def regional_plans_seed(*, currency: str) -> dict[str, Plan]:
    """The monthly plans priced in `currency` (tier code -> plan), created once."""
    plans = {}
    for spec in PLANS:
        price = REGIONAL_MONTHLY_PRICES[currency].get(spec.code)
        if price is None:
            continue
        plan, _created = Plan.objects.get_or_create(code=f"{spec.code}-{currency.lower()}", defaults=dict(
            name=f"{spec.name} ({currency})", name_ar=spec.name_ar, description=spec.description,
            amount=major_to_minor(amount=price, currency=currency), currency=currency,
            interval=BillingInterval.MONTH, interval_count=1, trial_days=0, credits_per_period=spec.credits_per_month,
            rate_limit_per_minute=spec.rate_limit_per_minute, rate_limit_per_hour=spec.rate_limit_per_hour,
            api_calls_per_day=spec.api_calls_per_day, features=list(spec.features), sort_order=spec.sort_order,
        ))
        plans[spec.code] = plan
    return plans


def arabic_demo_customers_build(*, as_of: datetime, catalog: Catalog, staff: Actor) -> int:
    """Create the Arabic-speaking demo customers that do not exist yet; the number created."""
    created = 0
    plans_by_currency = {code: regional_plans_seed(currency=code) for code in REGIONAL_MONTHLY_PRICES}
    for number, spec in enumerate(ARABIC_DEMO_CUSTOMERS, start=1):
        if Customer.objects.filter(external_id=spec.key).exists():
            continue
        regional = Catalog(plans=plans_by_currency[spec.currency], meters=catalog.meters, plans_created=0,
                           meters_created=0, meter_prices_created=0)
        _customer_build(spec=spec, index=_STORY_INDEX_BASE + number, as_of=as_of, catalog=regional, staff=staff)
        created += 1
    return created


def _customer_build(*, spec: ArabicDemoCustomer, index: int, as_of: datetime, catalog: Catalog,
                    staff: Actor) -> Customer:
    rng = random.Random(f"{DEMO_RANDOM_SEED}:{spec.key}")
    with transaction.atomic():
        user, created = get_user_model().objects.get_or_create(
            username=spec.key, defaults={"email": f"{spec.key}@example.com", "first_name": spec.name[:150]})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        customer = customer_create(name=spec.name, name_ar=spec.name_ar, preferred_language="ar",
                                   email=f"{spec.key}@example.com", user=user, currency=spec.currency,
                                   external_id=spec.key,
                                   metadata={"demo": True, "story": spec.status, "phone": spec.phone,
                                             "city": spec.city})
        Token.objects.get_or_create(user=user)
        story = Story(index=index, rng=rng, customer=customer, as_of=as_of, catalog=catalog, staff=staff,
                      method=spec.method)
        plan = catalog.plans[spec.plan]
        demo_story_tell(story, plan, status=spec.status)
        credit_grants_expire(customer=customer, actor=Actor.system("credit-expiry"), now=as_of)
        usage_bulk(story, tier=plan_tier(plan))
    return customer
